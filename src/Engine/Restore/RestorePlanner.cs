using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Restore;

/// <summary>
/// Chooses what a restore applies, with Litestream v0.3's rules: the generation whose newest
/// object is newest (among those that had begun by the timestamp; on a tie, the one begun
/// later), then the snapshot (newest, or
/// the highest index at or below -Index, or the newest created by -Timestamp), then every
/// segment from the snapshot's index on, in (index, offset) order, up to the target.
/// Unlike Litestream it proves the chain has no missing index before anything is downloaded.
/// </summary>
public static class RestorePlanner
{
    public static async Task<(RestorePlan Plan, string? Damage)> PlanAsync(
        IReplicaClient client, string? generation, long? index, DateTimeOffset? timestamp, bool allowPartial, CancellationToken ct, long? offset = null)
    {
        if (index is not null && timestamp is not null)
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument, "Give either -Index or -Timestamp, not both.");
        }

        if (generation is not null && !ReplicaNames.IsGeneration(generation))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument, $"'{generation}' is not a generation id (16 lowercase hex digits). List them with Get-ReplicaGeneration.", generation);
        }

        var generations = await client.ListGenerationsAsync(ct).ConfigureAwait(false);
        if (generation is not null)
        {
            generations = generations.Where(g => g == generation).ToList();
        }

        // Ranked as Get-ReplicaGeneration lists them (GenerationInfo.RestoreOrder): the newest
        // object, then on a tie (whole-second S3 times) the generation begun later.
        (GenerationInfo Info, IReadOnlyList<SnapshotInfo> Snaps, IReadOnlyList<SegmentInfo> Segs)? best = null;
        foreach (var g in generations)
        {
            var snaps = await client.ListSnapshotsAsync(g, ct).ConfigureAwait(false);
            var segs = await client.ListSegmentsAsync(g, ct).ConfigureAwait(false);
            if (GenerationInfo.FromObjects(g, snaps, segs) is not { } info || (timestamp is { } t && info.CreatedAt > t))
            {
                continue;
            }

            if (best is null || GenerationInfo.RestoreOrder.Compare(info, best.Value.Info) > 0)
            {
                best = (info, snaps, segs);
            }
        }

        if (best is null)
        {
            var what = generation is not null ? $" in generation {generation}" : "";
            var when = timestamp is not null ? $" at or before {timestamp:O}" : "";
            throw new ReplicaException(ReplicaErrorCode.NoMatchingBackup,
                $"No backup found{what}{when} in '{client.Url}'. Check the replica URL, or list what is there with Get-ReplicaGeneration.", client.Url);
        }

        var (bestInfo, snapshots, segments) = best.Value;
        var gen = bestInfo.Generation;
        if (index is { } maxIndex)
        {
            long highest = snapshots.Select(s => s.Index).Concat(segments.Select(s => s.Index)).DefaultIfEmpty(-1).Max();
            if (maxIndex > highest || maxIndex < 0)
            {
                throw new ReplicaException(ReplicaErrorCode.NoMatchingBackup,
                    $"Generation {gen} has no WAL index {maxIndex} (0x{maxIndex:x}); its highest is {highest} (0x{highest:x}). List them with Get-ReplicaWalSegment.", gen);
            }
        }

        var snapshot = ChooseSnapshot(snapshots, index, timestamp) ?? throw new ReplicaException(ReplicaErrorCode.SnapshotMissing,
            $"Generation {gen} in '{client.Url}' has no snapshot{(index is not null ? $" at or below index {index}" : timestamp is not null ? $" created at or before {timestamp:O}" : "")}; nothing can be restored from it. Choose another generation or point in time.",
            $"generations/{gen}/snapshots");

        var ordered = segments.Where(s => s.Index >= snapshot.Index).OrderBy(s => s.Index).ThenBy(s => s.Offset).ToList();
        bool snapshotPredatesItsSegments = !ordered.Any(s => s.CreatedAt <= snapshot.CreatedAt);
        var chosen = new List<SegmentInfo>();
        foreach (var s in ordered)
        {
            if (index is { } i && (s.Index > i || (s.Index == i && offset is { } o && s.Offset >= o)))
            {
                break;
            }

            // A generation's first snapshot is uploaded just before its first segment; the
            // snapshot is only consistent together with that segment.
            bool required = snapshotPredatesItsSegments && s.Index == snapshot.Index && s.Offset == 0;
            if (timestamp is { } t && s.CreatedAt > t && !required)
            {
                break;
            }

            chosen.Add(s);
        }

        string? damage = null;
        if (chosen.Count > 0)
        {
            long last = chosen[^1].Index;
            for (long k = snapshot.Index; k <= last; k++)
            {
                var first = chosen.FirstOrDefault(s => s.Index == k);
                if (first is null || first.Offset != 0)
                {
                    var missing = $"generations/{gen}/wal/{ReplicaNames.SegmentName(k, 0)}";
                    damage = first is null
                        ? $"WAL index {k:x8} has no segments at all (expected '{missing}')"
                        : $"WAL index {k:x8} does not start at offset 0 (missing '{missing}')";
                    if (!allowPartial)
                    {
                        throw new ReplicaException(ReplicaErrorCode.SegmentMissing,
                            $"The chain of generation {gen} in '{client.Url}' is broken: {damage}. Restore an earlier point with -Index/-Timestamp, or use -AllowPartial to restore up to the break.", missing);
                    }

                    chosen = chosen.Where(s => s.Index < k).ToList();
                    break;
                }
            }
        }

        return (new RestorePlan(gen, snapshot, chosen, index, timestamp), damage);
    }

    private static SnapshotInfo? ChooseSnapshot(IReadOnlyList<SnapshotInfo> snapshots, long? index, DateTimeOffset? timestamp)
    {
        if (index is { } i)
        {
            return snapshots.Where(s => s.Index <= i).OrderBy(s => s.Index).LastOrDefault();
        }

        var candidates = timestamp is { } t ? snapshots.Where(s => s.CreatedAt <= t) : snapshots;
        return candidates.OrderBy(s => s.CreatedAt).ThenBy(s => s.Index).LastOrDefault();
    }
}
