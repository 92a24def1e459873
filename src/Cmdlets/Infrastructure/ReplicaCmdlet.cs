using System.Management.Automation;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Infrastructure;

/// <summary>Base of cmdlets that read one replica given as -ReplicaUrl or -ReplicaPath.</summary>
public abstract class ReplicaCmdlet : EngineCmdlet
{
    protected const string UrlSet = "Url";
    protected const string PathSet = "Path";

    /// <summary>The replica, e.g. file:///var/backups/app.db.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = UrlSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string ReplicaUrl { get; set; } = null!;

    /// <summary>The replica as a plain directory.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string ReplicaPath { get; set; } = null!;

    /// <summary>What the user named the replica (for error targets).</summary>
    protected string ReplicaTarget => ParameterSetName == PathSet ? ReplicaPath : ReplicaUrl;

    protected IReplicaClient CreateClient() => ParameterSetName == PathSet
        ? ReplicaClientFactory.FromDirectory(ResolvePath(ReplicaPath))
        : ReplicaClientFactory.FromUrl(ReplicaUrl);
}
