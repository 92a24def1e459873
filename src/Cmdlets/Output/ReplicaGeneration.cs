namespace SqliteReplica.Output;

/// <summary>One generation in a replica: an unbroken history of the database.</summary>
public sealed class ReplicaGeneration
{
    internal ReplicaGeneration(string replicaUrl, string generation, DateTimeOffset createdAt, DateTimeOffset updatedAt, int snapshotCount, int segmentCount, long size)
    {
        ReplicaUrl = replicaUrl;
        Generation = generation;
        CreatedAt = createdAt;
        UpdatedAt = updatedAt;
        SnapshotCount = snapshotCount;
        SegmentCount = segmentCount;
        Size = size;
    }

    public string ReplicaUrl { get; }

    public string Generation { get; }

    /// <summary>Creation time of the generation's oldest object.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>Creation time of the generation's newest object.</summary>
    public DateTimeOffset UpdatedAt { get; }

    public int SnapshotCount { get; }

    public int SegmentCount { get; }

    /// <summary>Stored bytes of all its objects.</summary>
    public long Size { get; }

    public override string ToString() => $"{Generation} {CreatedAt:u} .. {UpdatedAt:u} ({SnapshotCount} snapshots, {SegmentCount} segments)";
}
