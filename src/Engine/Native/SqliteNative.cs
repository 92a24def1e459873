using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace SqliteReplica.Engine.Native;

/// <summary>
/// The SQLite calls Microsoft.Data.Sqlite does not expose: <c>sqlite3_file_control</c>, used to
/// set SQLITE_FCNTL_PERSIST_WAL so that closing the replicator's connection never checkpoints
/// and deletes the WAL (which would break continuity), and to read the wal-index header through
/// the connection's own shared-memory mapping. The library name resolves through the module's
/// load context to the bundled e_sqlite3.
/// </summary>
internal static unsafe partial class SqliteNative
{
    private const int SqliteFcntlFilePointer = 7;
    private const int SqliteFcntlPersistWal = 10;
    private const int WalIndexPageSize = 32768;

    // Offsets in sqlite3_io_methods (int iVersion, then function pointers): xShmMap is the
    // 13th pointer and xShmBarrier the 15th; both exist from iVersion 2.
    private const int ShmMapSlot = 13;
    private const int ShmBarrierSlot = 15;

    [LibraryImport("e_sqlite3", EntryPoint = "sqlite3_file_control", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FileControlPointer(IntPtr db, string dbName, int op, ref IntPtr arg);

    [LibraryImport("e_sqlite3", EntryPoint = "sqlite3_file_control", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FileControl(IntPtr db, string dbName, int op, ref int arg);

    [LibraryImport("e_sqlite3", EntryPoint = "sqlite3_libversion")]
    private static partial IntPtr LibVersion();

    public static void SetPersistWal(SqliteConnection connection)
    {
        int on = 1;
        var handle = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");
        int rc = FileControl(handle.DangerousGetHandle(), "main", SqliteFcntlPersistWal, ref on);
        if (rc != 0)
        {
            throw new InvalidOperationException($"sqlite3_file_control(PERSIST_WAL) failed with code {rc}.");
        }
    }

    /// <summary>
    /// Copies the first <paramref name="destination"/>.Length bytes of the connection's wal-index
    /// (the <c>-shm</c> region SQLite itself has mapped) after a memory barrier. Returns false when
    /// the connection has no wal-index mapped. Reading through SQLite's own mapping matters: on
    /// POSIX, closing any descriptor of a file drops every lock the process holds on it, so
    /// opening and closing the <c>-shm</c> file would silently release SQLite's read locks.
    /// </summary>
    public static bool TryReadWalIndex(SqliteConnection connection, Span<byte> destination)
    {
        var handle = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");
        IntPtr file = IntPtr.Zero;
        if (FileControlPointer(handle.DangerousGetHandle(), "main", SqliteFcntlFilePointer, ref file) != 0 || file == IntPtr.Zero)
        {
            return false;
        }

        IntPtr methods = *(IntPtr*)file;
        if (methods == IntPtr.Zero || *(int*)methods < 2)
        {
            return false;
        }

        var slots = (IntPtr*)methods;
        var shmMap = (delegate* unmanaged[Cdecl]<IntPtr, int, int, int, IntPtr*, int>)slots[ShmMapSlot];
        var barrier = (delegate* unmanaged[Cdecl]<IntPtr, void>)slots[ShmBarrierSlot];
        if (shmMap is null || barrier is null)
        {
            return false;
        }

        IntPtr region = IntPtr.Zero;
        if (shmMap(file, 0, WalIndexPageSize, 0, &region) != 0 || region == IntPtr.Zero)
        {
            return false;
        }

        barrier(file);
        new ReadOnlySpan<byte>((void*)region, destination.Length).CopyTo(destination);
        return true;
    }

    public static string Version() => Marshal.PtrToStringUTF8(LibVersion()) ?? "unknown";
}
