using System.Management.Automation;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>Lists the snapshots really present in a replica, oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "ReplicaSnapshot", DefaultParameterSetName = UrlSet)]
[OutputType(typeof(ReplicaSnapshot))]
public sealed class GetReplicaSnapshotCommand : ReplicaCmdlet
{
    /// <summary>With -ConfigPath: the database, as its path appears in the config.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ConfiguredDatabaseCompleter))]
    public override string DatabasePath { get; set; } = null!;

    /// <summary>Only this generation.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-f]{16}$")]
    [ArgumentCompleter(typeof(GenerationCompleter))]
    public string? Generation { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var client = CreateClient();
            var list = Run(ct => ReplicaCatalog.ListSnapshotsAsync(client, Generation, ct));
            foreach (var s in list)
            {
                WriteObject(new ReplicaSnapshot(client.Url, s.Generation, s.Index, s.Size, s.CreatedAt));
            }
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteEngineError(e, ReplicaTarget);
        }
    }
}
