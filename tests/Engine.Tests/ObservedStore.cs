using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// A store as a restore sees it, watched: local reads or not (not: WAL indexes are spooled), how
/// often each segment was opened, how many openings were in flight at once, and how many of the
/// streams handed out are still open. Optionally every opening waits (a store far away), one
/// offset is missing, or the n-th opening of a segment hands out other bytes.
/// </summary>
internal sealed class ObservedStore(IReplicaClient inner, bool localReads) : DelegatingReplicaClient(inner)
{
    private readonly Dictionary<(long Index, long Offset), int> _opens = new();
    private int _inFlight;
    private int _open;

    public override bool LocalReads => localReads;

    /// <summary>How long every segment opening waits first.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>A segment offset whose opening fails with SegmentMissing.</summary>
    public long? FailAt { get; set; }

    /// <summary>Other bytes for the n-th opening of (index, offset); null keeps the segment's own.</summary>
    public Func<long, long, int, Stream?>? Replace { get; set; }

    public int MostInFlight { get; private set; }

    public int StillOpen => Volatile.Read(ref _open);

    public int Opens(long index, long offset)
    {
        lock (_opens)
        {
            return _opens.GetValueOrDefault((index, offset));
        }
    }

    public override async Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct)
    {
        int n;
        lock (_opens)
        {
            _opens[(index, offset)] = n = _opens.GetValueOrDefault((index, offset)) + 1;
            MostInFlight = Math.Max(MostInFlight, ++_inFlight);
        }

        try
        {
            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, ct);
            }

            if (offset == FailAt)
            {
                throw new ReplicaException(ReplicaErrorCode.SegmentMissing, "gone", offset.ToString());
            }

            var stream = Replace?.Invoke(index, offset, n) ?? await base.OpenSegmentAsync(generation, index, offset, ct);
            Interlocked.Increment(ref _open);
            return new ClosingStream(stream, () => Interlocked.Decrement(ref _open));
        }
        finally
        {
            lock (_opens)
            {
                _inFlight--;
            }
        }
    }

    private sealed class ClosingStream(Stream inner, Action closed) : Stream
    {
        private int _closed;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => inner.ReadAsync(buffer, ct);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _closed, 1) == 0)
            {
                inner.Dispose();
                closed();
            }

            base.Dispose(disposing);
        }
    }
}
