using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// A store that passes every call to <paramref name="inner"/>: tests derive from it and override
/// only the calls they change (a store that goes down, one that hands out other bytes).
/// </summary>
internal abstract class DelegatingReplicaClient(IReplicaClient inner) : IReplicaClient
{
    public virtual string Type => inner.Type;

    public virtual string Url => inner.Url;

    public virtual bool LocalReads => inner.LocalReads;

    public virtual Task<IReplicaLease> AcquireLeaseAsync(LeaseOwner owner, CancellationToken ct) => inner.AcquireLeaseAsync(owner, ct);

    public virtual Task CheckWritableAsync(CancellationToken ct) => inner.CheckWritableAsync(ct);

    public virtual Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct) => inner.ListGenerationsAsync(ct);

    public virtual Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct) => inner.ListSnapshotsAsync(generation, ct);

    public virtual Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct) => inner.ListSegmentsAsync(generation, ct);

    public virtual Task<Stream> OpenSnapshotAsync(string generation, long index, CancellationToken ct) => inner.OpenSnapshotAsync(generation, index, ct);

    public virtual Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct) => inner.OpenSegmentAsync(generation, index, offset, ct);

    public virtual Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) => inner.WriteSnapshotAsync(generation, index, writeFramed, ct);

    public virtual Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) => inner.WriteSegmentAsync(generation, index, offset, writeFramed, ct);

    public virtual Task DeleteSnapshotAsync(string generation, long index, CancellationToken ct) => inner.DeleteSnapshotAsync(generation, index, ct);

    public virtual Task DeleteSegmentsAsync(IReadOnlyList<SegmentInfo> segments, CancellationToken ct) => inner.DeleteSegmentsAsync(segments, ct);

    public virtual Task DeleteGenerationAsync(string generation, CancellationToken ct) => inner.DeleteGenerationAsync(generation, ct);
}
