using Microsoft.Win32.SafeHandles;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Capture;

/// <summary>
/// The one-replicator-per-database lock, keyed on the database itself rather than on a meta
/// directory (which a second replicator can simply choose differently with -MetaPath).
/// </summary>
/// <remarks>
/// <para>It is an exclusive BSD advisory lock (<c>flock</c>, taken without waiting) on a small
/// lock file beside the database's resolved path (<see cref="DatabasePath"/>):
/// <c>.&lt;db&gt;-sqlitereplica.lock</c>. Every spelling of the database (relative, through a
/// symbolic link to the file or to a directory on the way) reaches the same inode, so any
/// second replicator is refused whatever its meta path. The kernel drops a flock when the last
/// descriptor of its open file goes away, so a replicator killed with SIGKILL never blocks the
/// next start.</para>
/// <para>Why a separate file and not a lock on the database file itself:</para>
/// <list type="bullet">
/// <item>SQLite locks the database with POSIX record locks (fcntl). On local Linux filesystems
/// flock and fcntl locks are independent, but on NFS the kernel emulates flock with a whole-file
/// fcntl lock: an exclusive flock on the database would then block SQLite itself, in the
/// application too.</item>
/// <item>.NET takes a shared flock whenever it opens a file with a sharing mode other than None
/// (our own read handle on the database, the restore drill, any .NET application reading the
/// file); an exclusive flock on the database would make those opens fail.</item>
/// <item>Closing any descriptor of a file drops every fcntl lock the process holds on it. A lock
/// file is a different inode, so nothing we open or close there can ever release SQLite's locks.</item>
/// </list>
/// <para>The file is never deleted (unlinking a lock file while another process opens it would
/// let two processes lock two different inodes). SQLite needs the database's directory to be
/// writable anyway, for -wal and -shm.</para>
/// </remarks>
public static class DatabaseLock
{
    /// <summary>The lock file of a database (give the resolved path).</summary>
    public static string LockPathFor(string resolvedDbPath)
    {
        var full = Path.GetFullPath(resolvedDbPath);
        return Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + "-sqlitereplica.lock");
    }

    /// <summary>
    /// Takes the lock of <paramref name="dbPath"/> (resolved here), or throws
    /// <see cref="ReplicaErrorCode.AlreadyReplicating"/> when another process holds it. Also refuses
    /// a path that is a directory. Dispose the returned stream to release the lock.
    /// </summary>
    public static FileStream Acquire(string dbPath)
    {
        var resolved = DatabasePath.Resolve(dbPath);
        if (Directory.Exists(resolved))
        {
            throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
                $"'{dbPath}' is a directory, not a database file. Give the path of the SQLite database file (for example '{Path.Combine(dbPath, "app.db")}').", dbPath);
        }

        var path = LockPathFor(resolved);
        if (Directory.Exists(path))
        {
            throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
                $"The replicator lock file '{path}' of database '{dbPath}' is a directory. Remove that directory (it is not SQLite's and holds no data of the replicator) and start again.", path);
        }

        FileStream fs;
        try
        {
            var dir = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(dir))
            {
                // The database is waited for; its directory is created as the meta directory is.
                IO.PrivateFiles.CreateDirectory(dir);
            }

            // FileShare.None: .NET itself asks for flock(LOCK_EX | LOCK_NB) on Unix.
            fs = IO.PrivateFiles.Open(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (IsWouldBlock(e))
        {
            throw Busy(dbPath, path, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
                $"Cannot open the replicator lock file '{path}' beside database '{dbPath}': {e.Message}. This user must be able to write the database's directory (SQLite needs it for -wal and -shm too) and that file; if a replicator once ran as another user, remove the file while no replicator runs.", path, e);
        }

        // Take the flock explicitly too: .NET skips its own when file locking is disabled by
        // configuration (DOTNET_SYSTEM_IO_DISABLEFILELOCKING), and this lock must hold regardless.
        if (!Native.Libc.TryLockExclusive(fs.SafeFileHandle))
        {
            fs.Dispose();
            throw Busy(dbPath, path, null);
        }

        try
        {
            fs.SetLength(0);
            fs.Write(System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n"));
            fs.Flush();
        }
        catch (IOException)
        {
            // The pid is a courtesy for the message of a refused replicator; the lock is what counts.
        }

        return fs;
    }

    /// <summary>
    /// The lock is held elsewhere: .NET reports a failed flock as a sharing violation carrying
    /// errno EWOULDBLOCK (11 on Linux, 35 on macOS). Not judged by the message alone: the lock
    /// file's own name contains "lock", so any other I/O error on it would look like one.
    /// </summary>
    internal static bool IsWouldBlock(IOException e) =>
        e.HResult is 11 or 35 || e.Message.Contains("being used by another process", StringComparison.OrdinalIgnoreCase);

    private static ReplicaException Busy(string dbPath, string lockPath, Exception? inner)
    {
        string holder = "another process";
        try
        {
            var text = File.ReadAllText(lockPath).Trim();
            if (int.TryParse(text, out var pid))
            {
                holder = "process " + pid;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
            $"Database '{dbPath}' is already being replicated by {holder} (lock '{lockPath}'), possibly with another meta path or through another path to the same file. Stop that replicator first; two replicators on one database would interleave histories.", dbPath, inner);
    }
}
