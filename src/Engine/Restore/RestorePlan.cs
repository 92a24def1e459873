using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Restore;

/// <summary>Which snapshot and which segments a restore applies, in order.</summary>
public sealed record RestorePlan(
    string Generation,
    SnapshotInfo Snapshot,
    IReadOnlyList<SegmentInfo> Segments,
    long? TargetIndex,
    DateTimeOffset? TargetTimestamp)
{
    /// <summary>The WAL indexes the plan applies, ascending.</summary>
    public IEnumerable<long> Indexes => Segments.Select(s => s.Index).Distinct();

    /// <summary>Stored bytes the plan will read.</summary>
    public long TotalStoredBytes => Snapshot.Size + Segments.Sum(s => s.Size);
}
