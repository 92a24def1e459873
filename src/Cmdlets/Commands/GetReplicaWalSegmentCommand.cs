using System.Management.Automation;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>Lists the WAL segments in a replica, by generation then index and offset.</summary>
[Cmdlet(VerbsCommon.Get, "ReplicaWalSegment", DefaultParameterSetName = UrlSet)]
[OutputType(typeof(ReplicaWalSegment))]
public sealed class GetReplicaWalSegmentCommand : ReplicaListingCmdlet
{
    protected override async Task<IEnumerable<object>> ListAsync(IReplicaClient client, CancellationToken ct)
    {
        var list = await ReplicaCatalog.ListSegmentsAsync(client, Generation, ct).ConfigureAwait(false);
        return list.Select(s => (object)new ReplicaWalSegment(client.Url, s.Generation, s.Index, s.Offset, s.Size, s.CreatedAt)).ToList();
    }
}
