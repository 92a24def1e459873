namespace SqliteReplica.Engine.Replicas;

/// <summary>What is really in a replica, read from the store (nothing cached).</summary>
public static class ReplicaCatalog
{
    public static async Task<IReadOnlyList<GenerationInfo>> ListGenerationsAsync(IReplicaClient client, CancellationToken ct)
    {
        var list = new List<GenerationInfo>();
        foreach (var g in await client.ListGenerationsAsync(ct).ConfigureAwait(false))
        {
            var snaps = await client.ListSnapshotsAsync(g, ct).ConfigureAwait(false);
            var segs = await client.ListSegmentsAsync(g, ct).ConfigureAwait(false);
            if (GenerationInfo.FromObjects(g, snaps, segs) is { } info)
            {
                list.Add(info);
            }
        }

        // The order a restore ranks them in: the last one is what a latest restore picks.
        list.Sort(GenerationInfo.RestoreOrder);
        return list;
    }

    /// <summary>Snapshots of one or all generations, oldest first.</summary>
    public static async Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(IReplicaClient client, string? generation, CancellationToken ct)
    {
        var list = new List<SnapshotInfo>();
        foreach (var g in await GenerationsAsync(client, generation, ct).ConfigureAwait(false))
        {
            list.AddRange(await client.ListSnapshotsAsync(g, ct).ConfigureAwait(false));
        }

        return list.OrderBy(s => s.CreatedAt).ThenBy(s => s.Index).ToList();
    }

    /// <summary>WAL segments of one or all generations, by generation age then (index, offset).</summary>
    public static async Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(IReplicaClient client, string? generation, CancellationToken ct)
    {
        var list = new List<SegmentInfo>();
        foreach (var g in await GenerationsAsync(client, generation, ct).ConfigureAwait(false))
        {
            list.AddRange(await client.ListSegmentsAsync(g, ct).ConfigureAwait(false));
        }

        return list;
    }

    private static async Task<IEnumerable<string>> GenerationsAsync(IReplicaClient client, string? generation, CancellationToken ct)
    {
        if (generation is not null)
        {
            return [generation];
        }

        var gens = await ListGenerationsAsync(client, ct).ConfigureAwait(false);
        return gens.Select(g => g.Generation);
    }
}
