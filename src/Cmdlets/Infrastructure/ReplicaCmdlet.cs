using System.Management.Automation;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// Base of cmdlets that read one replica, given as -ReplicaUrl (with S3 settings), -ReplicaPath,
/// or -ConfigPath with -DatabasePath (the database's replica in a litestream.yml).
/// </summary>
public abstract class ReplicaCmdlet : S3ParametersCmdlet
{
    protected const string PathSet = "Path";
    protected const string ConfigSet = "Config";

    /// <summary>The replica, e.g. file:///var/backups/app.db or s3://bucket/app.db.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = UrlSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string ReplicaUrl { get; set; } = null!;

    /// <summary>The replica as a plain directory.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string ReplicaPath { get; set; } = null!;

    /// <summary>A litestream.yml; the replica is the one configured for -DatabasePath.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet)]
    [ValidateNotNullOrEmpty]
    public string ConfigPath { get; set; } = null!;

    /// <summary>With -ConfigPath: the database (as its path appears in the config). Each cmdlet declares its parameter sets.</summary>
    public abstract string DatabasePath { get; set; }

    /// <summary>With -ConfigPath: which replica of the database (default: the first).</summary>
    [Parameter(ParameterSetName = ConfigSet)]
    public string? ReplicaName { get; set; }

    /// <summary>What the user named the replica (for error targets).</summary>
    protected string ReplicaTarget => ParameterSetName switch
    {
        PathSet => ReplicaPath,
        ConfigSet => $"{ConfigPath}:{DatabasePath}",
        _ => ReplicaUrl,
    };

    protected IReplicaClient CreateClient()
    {
        switch (ParameterSetName)
        {
            case PathSet:
                return ReplicaClientFactory.FromDirectory(ResolvePath(ReplicaPath));
            case ConfigSet:
                var config = new ConfigLoader().Load(ResolvePath(ConfigPath));
                var db = config.Find(ResolvePath(DatabasePath)) ?? throw new ReplicaException(ReplicaErrorCode.DatabaseNotConfigured,
                    $"'{ResolvePath(DatabasePath)}' is not a database in '{config.SourcePath}' (it lists: {string.Join(", ", config.Databases.Select(d => d.Path))}). Use the path exactly as configured.", DatabasePath);
                var replica = ReplicaName is null ? db.Replicas.FirstOrDefault() : db.Replicas.FirstOrDefault(r => r.Name == ReplicaName);
                if (replica is null)
                {
                    throw new ReplicaException(ReplicaErrorCode.DatabaseNotConfigured,
                        ReplicaName is null ? $"Database '{db.Path}' has no replica in '{config.SourcePath}'." : $"Database '{db.Path}' has no replica named '{ReplicaName}' (it has: {string.Join(", ", db.Replicas.Select(r => r.Name))}).", DatabasePath);
                }

                return ReplicaClientFactory.FromConfig(replica, Messages);
            default:
                return ReplicaClientFactory.FromUrl(ReplicaUrl, S3Settings(), Messages);
        }
    }
}
