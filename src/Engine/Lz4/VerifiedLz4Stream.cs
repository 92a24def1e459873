using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Lz4;

/// <summary>
/// Decodes one LZ4 frame and proves it whole: the object must start with the LZ4 frame magic,
/// end exactly where the frame ends (a second frame, which Litestream's reader would silently
/// drop, is an error) and, when the frame carries a content checksum, the xxh32 of the decoded
/// bytes must match it (the decoder computes and checks it as it reads: a mismatch, a missing end
/// mark or a truncated checksum is an exception from it, see Lz4Tests). Any failure is a
/// <see cref="ReplicaErrorCode.SegmentCorrupt"/> naming the object.
/// </summary>
public sealed class VerifiedLz4Stream : IO.ReadOnlyStream
{
    private const int MaxTrailer = 64;
    private readonly CountingStream _raw;
    private readonly Stream _decoder;
    private readonly string _objectName;
    private bool _finished;

    public VerifiedLz4Stream(Stream raw, string objectName)
    {
        _raw = new CountingStream(raw);
        _objectName = objectName;
        _decoder = Lz4Frame.Decode(_raw, leaveOpen: true);
    }

    /// <summary>Decoded bytes delivered so far.</summary>
    public long DecodedLength { get; private set; }

    /// <summary>Stored (compressed) bytes consumed so far.</summary>
    public long RawLength => _raw.Count;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;


    public override int Read(Span<byte> buffer)
    {
        if (_finished || buffer.Length == 0)
        {
            return 0;
        }

        int n;
        try
        {
            n = _decoder.Read(buffer);
        }
        catch (Exception e) when (e is not ReplicaException and not OperationCanceledException)
        {
            throw Undecodable(e);
        }

        if (n > 0)
        {
            DecodedLength += n;
            return n;
        }

        Finish();
        return 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_finished || buffer.Length == 0)
        {
            return 0;
        }

        int n;
        try
        {
            n = await _decoder.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not ReplicaException and not OperationCanceledException)
        {
            throw Undecodable(e);
        }

        if (n > 0)
        {
            DecodedLength += n;
            return n;
        }

        Finish();
        return 0;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Finish()
    {
        _finished = true;
        var head = _raw.Head;
        if (head.Length < 7 || head[0] != 0x04 || head[1] != 0x22 || head[2] != 0x4D || head[3] != 0x18)
        {
            throw Corrupt("it does not start with an LZ4 frame header");
        }

        // The decoder reads through the end mark and the content checksum: nothing may follow.
        var rest = new byte[MaxTrailer + 1];
        int extra = 0, r;
        while (extra < rest.Length && (r = _raw.Read(rest, extra, rest.Length - extra)) > 0)
        {
            extra += r;
        }

        if (extra > 0)
        {
            throw Corrupt($"it has {extra} byte(s) after its LZ4 frame (a second frame or garbage)");
        }
    }

    private ReplicaException Undecodable(Exception e) => e is Lz4Frame.SecondFrameException
        ? Corrupt("it has bytes after its LZ4 frame (a second frame)", e)
        : Corrupt($"it is not a valid LZ4 frame ({e.Message})", e);

    private ReplicaException Corrupt(string why, Exception? inner = null) =>
        new(ReplicaErrorCode.SegmentCorrupt, $"Replica object '{_objectName}' is corrupt: {why}. Restore an earlier point (-Index/-Timestamp) or use -AllowPartial to stop before it.", _objectName, inner);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _decoder.Dispose();
            _raw.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Counts raw bytes and keeps the first 7 of them.</summary>
    private sealed class CountingStream(Stream inner) : IO.ReadOnlyStream
    {
        private readonly byte[] _head = new byte[7];
        private int _headLen;

        public long Count { get; private set; }

        public ReadOnlySpan<byte> Head => _head.AsSpan(0, _headLen);

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            Observe(buffer[..n]);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Observe(buffer.Span[..n]);
            return n;
        }

        private void Observe(ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length && _headLen < _head.Length; i++)
            {
                _head[_headLen++] = data[i];
            }

            Count += data.Length;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
