namespace SqliteReplica.Output;

/// <summary>A snapshot object in a replica. Binds by property name into Restore-SqliteReplica (ReplicaUrl, Generation, Index).</summary>
public sealed class ReplicaSnapshot
{
    internal ReplicaSnapshot(string replicaUrl, string generation, long index, long size, DateTimeOffset createdAt)
    {
        ReplicaUrl = replicaUrl;
        Generation = generation;
        Index = index;
        Size = size;
        CreatedAt = createdAt;
    }

    public string ReplicaUrl { get; }

    public string Generation { get; }

    /// <summary>The WAL index the snapshot was taken at.</summary>
    public long Index { get; }

    /// <summary>Stored (compressed) size in bytes.</summary>
    public long Size { get; }

    public DateTimeOffset CreatedAt { get; }

    public override string ToString() => $"{Generation}/{Index:x8} snapshot, {Infrastructure.EngineCmdlet.FormatBytes(Size)}, {CreatedAt:u}";
}
