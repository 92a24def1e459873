namespace SqliteReplica.Engine.Replicas.S3;

/// <summary>
/// A write-then-read buffer for one object: memory up to a limit, then a temporary file, so an
/// upload can be retried and sized without ever holding a large object in memory.
/// </summary>
internal sealed class SpoolStream : Stream
{
    private readonly int _memoryLimit;
    private readonly string _directory;
    private MemoryStream? _memory = new();
    private FileStream? _file;

    public SpoolStream(int memoryLimit, string directory)
    {
        _memoryLimit = memoryLimit;
        _directory = directory;
    }

    private Stream Inner => (Stream?)_file ?? _memory!;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => true;

    public override long Length => Inner.Length;

    public override long Position { get => Inner.Position; set => Inner.Position = value; }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_file is null && _memory!.Length + buffer.Length > _memoryLimit)
        {
            IO.PrivateFiles.CreateDirectory(_directory);
            var path = System.IO.Path.Combine(_directory, $".sqlitereplica-upload-{Guid.NewGuid():N}.tmp");
            _file = IO.PrivateFiles.Open(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            _memory.Position = 0;
            _memory.CopyTo(_file);
            _memory.Dispose();
            _memory = null;
        }

        Inner.Write(buffer);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override int Read(byte[] buffer, int offset, int count) => Inner.Read(buffer, offset, count);

    public override long Seek(long offset, SeekOrigin origin) => Inner.Seek(offset, origin);

    public override void SetLength(long value) => Inner.SetLength(value);

    public override void Flush() => Inner.Flush();

    /// <summary>A read-only view of [offset, offset+length) for one part.</summary>
    public Stream Slice(long offset, long length)
    {
        if (_memory is not null)
        {
            return new MemoryStream(_memory.GetBuffer(), (int)offset, (int)length, writable: false);
        }

        return new SliceStream(_file!.SafeFileHandle, offset, length);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _memory?.Dispose();
            _file?.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Reads a range of a file through positional reads (safe for parallel parts).</summary>
    private sealed class SliceStream(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long start, long length) : Stream
    {
        private long _pos;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _pos; set => _pos = value; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int want = (int)Math.Min(count, length - _pos);
            if (want <= 0)
            {
                return 0;
            }

            int n = RandomAccess.Read(handle, buffer.AsSpan(offset, want), start + _pos);
            _pos += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            _pos = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _pos + offset,
                _ => length + offset,
            };
            return _pos;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
