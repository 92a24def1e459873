using System.Management.Automation;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>Lists the generations in a replica with the time span each covers, oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "ReplicaGeneration", DefaultParameterSetName = UrlSet)]
[OutputType(typeof(ReplicaGeneration))]
public sealed class GetReplicaGenerationCommand : ReplicaCmdlet
{
    /// <summary>With -ConfigPath: the database, as its path appears in the config.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ConfiguredDatabaseCompleter))]
    public override string DatabasePath { get; set; } = null!;

    protected override void ProcessRecord()
    {
        try
        {
            var client = CreateClient();
            var list = Run(ct => ReplicaCatalog.ListGenerationsAsync(client, ct));
            foreach (var g in list)
            {
                WriteObject(new ReplicaGeneration(client.Url, g.Generation, g.CreatedAt, g.UpdatedAt, g.SnapshotCount, g.SegmentCount, g.TotalSize));
            }
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteEngineError(e, ReplicaTarget);
        }
    }
}
