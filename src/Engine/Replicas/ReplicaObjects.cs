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
    long TotalSize);
