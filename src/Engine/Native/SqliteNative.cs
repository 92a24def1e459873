using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace SqliteReplica.Engine.Native;

/// <summary>
/// The one SQLite call Microsoft.Data.Sqlite does not expose: <c>sqlite3_file_control</c>, used to
/// set SQLITE_FCNTL_PERSIST_WAL so that closing the replicator's connection never checkpoints
/// and deletes the WAL (which would break continuity). The library name resolves through the
/// module's load context to the bundled e_sqlite3.
/// </summary>
internal static partial class SqliteNative
{
    private const int SqliteFcntlPersistWal = 10;

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

    public static string Version() => Marshal.PtrToStringUTF8(LibVersion()) ?? "unknown";
}
