namespace SqliteReplica.Engine.Replicas;

/// <summary>A snapshot object as listed from a replica.</summary>
public sealed record SnapshotInfo(string Generation, long Index, long Size, DateTimeOffset CreatedAt);

/// <summary>A WAL segment object as listed from a replica.</summary>
public sealed record SegmentInfo(string Generation, long Index, long Offset, long Size, DateTimeOffset CreatedAt)
{
    public Position Position => new(Generation, Index, Offset);
}

/// <summary>A generation with the time span its objects cover.</summary>
public sealed record GenerationInfo(
    string Generation,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    int SnapshotCount,
    int SegmentCount,
    long TotalSize)
{
    /// <summary>
    /// How a latest restore ranks generations; the greatest is the one it restores, and
    /// Get-ReplicaGeneration lists them in this order (so its last is that one). Newest object
    /// first. Object times are whole seconds in S3 listings, so a generation started right after
    /// the previous one's last upload can end in the same second: then the one begun later is
    /// the newer (Litestream v0.3 keeps the first listed, by id, which can restore the older).
    /// On a full tie, the first by id, as Litestream picks.
    /// </summary>
    public static IComparer<GenerationInfo> RestoreOrder { get; } = Comparer<GenerationInfo>.Create((a, b) =>
    {
        int c = a.UpdatedAt.CompareTo(b.UpdatedAt);
        if (c == 0)
        {
            c = a.CreatedAt.CompareTo(b.CreatedAt);
        }

        return c != 0 ? c : string.CompareOrdinal(b.Generation, a.Generation);
    });

    /// <summary>Describes a generation from its listed objects; null when it has none.</summary>
    public static GenerationInfo? FromObjects(string generation, IReadOnlyList<SnapshotInfo> snapshots, IReadOnlyList<SegmentInfo> segments)
    {
        if (snapshots.Count == 0 && segments.Count == 0)
        {
            return null;
        }

        var times = snapshots.Select(s => s.CreatedAt).Concat(segments.Select(s => s.CreatedAt)).ToList();
        return new GenerationInfo(generation, times.Min(), times.Max(), snapshots.Count, segments.Count, snapshots.Sum(s => s.Size) + segments.Sum(s => s.Size));
    }
}
