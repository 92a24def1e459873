using System.Management.Automation;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>Lists the snapshots really present in a replica, oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "ReplicaSnapshot", DefaultParameterSetName = UrlSet)]
[OutputType(typeof(ReplicaSnapshot))]
public sealed class GetReplicaSnapshotCommand : ReplicaListingCmdlet
{
    protected override async Task<IEnumerable<object>> ListAsync(IReplicaClient client, CancellationToken ct)
    {
        var list = await ReplicaCatalog.ListSnapshotsAsync(client, Generation, ct).ConfigureAwait(false);
        return list.Select(s => (object)new ReplicaSnapshot(client.Url, s.Generation, s.Index, s.Size, s.CreatedAt)).ToList();
    }
}
