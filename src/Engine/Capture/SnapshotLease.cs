using Microsoft.Win32.SafeHandles;

namespace SqliteReplica.Engine.Capture;

/// <summary>
/// Permission to copy the database file for a snapshot. While it is held the capture runs no
/// checkpoint of its own and keeps its read transaction, so the file holds no page that the
/// shadow WAL of <see cref="Position"/>'s index does not also hold. Reads go through the
/// capture's long-lived handle: opening and closing another descriptor on the database would
/// drop SQLite's POSIX locks.
/// </summary>
public sealed class SnapshotLease : IDisposable
{
    private readonly DatabaseCapture _owner;
    private readonly SafeFileHandle _db;
    private int _disposed;

    internal SnapshotLease(DatabaseCapture owner, Replicas.Position position, SafeFileHandle db, int pageSize)
    {
        _owner = owner;
        _db = db;
        Position = position;
        PageSize = pageSize;
    }

    public Replicas.Position Position { get; }

    public int PageSize { get; }

    /// <summary>Copies the database file from byte 0 to its end, in whole pages, into <paramref name="destination"/>.</summary>
    public async Task<long> CopyToAsync(Stream destination, CancellationToken ct)
    {
        var buffer = new byte[Math.Max(PageSize, 1 << 20) / PageSize * PageSize];
        long offset = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            int n = RandomAccess.Read(_db, buffer, offset);
            if (n <= 0)
            {
                break;
            }

            // A short read at the end can only be a partial page being extended: keep whole pages.
            int whole = n / PageSize * PageSize;
            if (whole == 0)
            {
                break;
            }

            await destination.WriteAsync(buffer.AsMemory(0, whole), ct).ConfigureAwait(false);
            offset += whole;
            Diagnostics.CrashPoints.Hit(Diagnostics.CrashPoints.SnapshotUpload);
            if (whole < n)
            {
                break;
            }
        }

        return offset;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _owner.EndSnapshot();
        }
    }
}
