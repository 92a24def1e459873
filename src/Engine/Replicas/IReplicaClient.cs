namespace SqliteReplica.Engine.Replicas;

/// <summary>
/// One storage backend for replica objects in the Litestream v0.3 layout. Every call is
/// cancellable. Writers stream: the payload is LZ4-framed by the caller, the client only stores
/// bytes. A write is complete only when the method returns: that is the acknowledgement the
/// confirmed position depends on.
/// </summary>
public interface IReplicaClient
{
    /// <summary>Kind of store, e.g. <c>file</c> or <c>s3</c>.</summary>
    string Type { get; }

    /// <summary>Where the replica lives, as a URL with no secrets in it.</summary>
    string Url { get; }

    /// <summary>
    /// Takes the one-writer lease on this replica location, or fails with AlreadyReplicating
    /// naming the holder. The same replicator restarting on the same host gets its lease back.
    /// </summary>
    Task<IReplicaLease> AcquireLeaseAsync(LeaseOwner owner, CancellationToken ct);

    /// <summary>Fails with a clear error when the replica location cannot be written.</summary>
    Task CheckWritableAsync(CancellationToken ct);

    Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct);

    /// <summary>Snapshots of one generation, sorted by index.</summary>
    Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct);

    /// <summary>WAL segments of one generation, sorted by index then offset.</summary>
    Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct);

    /// <summary>Opens the stored (LZ4-framed) bytes of a snapshot.</summary>
    Task<Stream> OpenSnapshotAsync(string generation, long index, CancellationToken ct);

    /// <summary>Opens the stored (LZ4-framed) bytes of a segment.</summary>
    Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct);

    /// <summary>
    /// True when reading an object again costs no more than a local file read: a restore then
    /// reads each WAL index twice (verify, then apply) instead of spooling its decoded frames.
    /// </summary>
    bool LocalReads => false;

    /// <summary>Stores a snapshot; <paramref name="writeFramed"/> writes the LZ4-framed bytes into the given stream.</summary>
    Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct);

    /// <summary>Stores a segment; <paramref name="writeFramed"/> writes the LZ4-framed bytes into the given stream.</summary>
    Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct);

    Task DeleteSnapshotAsync(string generation, long index, CancellationToken ct);

    Task DeleteSegmentsAsync(IReadOnlyList<SegmentInfo> segments, CancellationToken ct);

    Task DeleteGenerationAsync(string generation, CancellationToken ct);
}
