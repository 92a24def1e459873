namespace SqliteReplica.Output;

/// <summary>A WAL segment object in a replica.</summary>
public sealed class ReplicaWalSegment
{
    internal ReplicaWalSegment(string replicaUrl, string generation, long index, long offset, long size, DateTimeOffset createdAt)
    {
        ReplicaUrl = replicaUrl;
        Generation = generation;
        Index = index;
        Offset = offset;
        Size = size;
        CreatedAt = createdAt;
    }

    public string ReplicaUrl { get; }

    public string Generation { get; }

    public long Index { get; }

    /// <summary>Byte offset of the segment within its WAL index.</summary>
    public long Offset { get; }

    /// <summary>Stored (compressed) size in bytes.</summary>
    public long Size { get; }

    public DateTimeOffset CreatedAt { get; }

    public override string ToString() => $"{Generation}/{Index:x8}:{Offset} segment, {Infrastructure.EngineCmdlet.FormatBytes(Size)}, {CreatedAt:u}";
}
