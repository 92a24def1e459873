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
