namespace SqliteReplica.Engine.Replicas.S3;

/// <summary>
/// Requests sent to the store, by operation. Class A (writes, lists, multipart calls) and class B
/// (reads, heads) follow Cloudflare R2's billing.
/// </summary>
public sealed class RequestCounters
{
    private long _put, _get, _list, _delete, _head, _multipart;

    public long Put => Interlocked.Read(ref _put);

    public long Get => Interlocked.Read(ref _get);

    public long List => Interlocked.Read(ref _list);

    public long Delete => Interlocked.Read(ref _delete);

    public long Head => Interlocked.Read(ref _head);

    /// <summary>Create, upload-part, complete and abort calls of multipart uploads.</summary>
    public long Multipart => Interlocked.Read(ref _multipart);

    public long ClassA => Put + List + Delete + Multipart;

    public long ClassB => Get + Head;

    internal void CountPut() => Interlocked.Increment(ref _put);

    internal void CountGet() => Interlocked.Increment(ref _get);

    internal void CountList() => Interlocked.Increment(ref _list);

    internal void CountDelete() => Interlocked.Increment(ref _delete);

    internal void CountHead() => Interlocked.Increment(ref _head);

    internal void CountMultipart() => Interlocked.Increment(ref _multipart);

    public override string ToString() => $"PUT {Put}, GET {Get}, LIST {List}, DELETE {Delete}, HEAD {Head}, multipart {Multipart} (class A {ClassA}, class B {ClassB})";
}
