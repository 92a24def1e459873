using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Capture;

/// <summary>
/// The local meta directory of one database, laid out exactly as Litestream v0.3 lays it out
/// (<c>.&lt;db&gt;-litestream/generation</c> and <c>generations/&lt;gen&gt;/wal/&lt;%08x&gt;.wal</c>), so
/// either tool can take over the other's shadow WAL. It also holds our lock file.
/// </summary>
public sealed class MetaDirectory
{
    public const string LockFileName = "sqlitereplica.lock";

    public MetaDirectory(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>Litestream's default: a hidden directory beside the database.</summary>
    public static string DefaultFor(string dbPath)
    {
        // Beside the file SQLite really opens (a symbolic link is followed): every spelling of one
        // database finds one meta directory.
        var full = DatabasePath.Resolve(dbPath);
        return Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + "-litestream");
    }

    public string GenerationFile => Path.Combine(Root, "generation");

    public string GenerationsDir => Path.Combine(Root, "generations");

    public string ShadowDir(string generation) => Path.Combine(GenerationsDir, generation, "wal");

    public string ShadowPath(string generation, long index) => Path.Combine(ShadowDir(generation), ReplicaNames.Hex8(index) + ".wal");

    public void Create()
    {
        Guard(() => IO.PrivateFiles.CreateDirectory(Root));
    }

    /// <summary>The current generation, or null when none is recorded (or the file is not 16 hex digits).</summary>
    public string? ReadGeneration()
    {
        try
        {
            var text = File.ReadAllText(GenerationFile).Trim();
            return ReplicaNames.IsGeneration(text) ? text : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public void WriteGeneration(string generation)
    {
        Guard(() =>
        {
            var tmp = GenerationFile + ".tmp";
            using (var fs = IO.PrivateFiles.Open(tmp, FileMode.Create, FileAccess.Write))
            {
                fs.Write(System.Text.Encoding.ASCII.GetBytes(generation + "\n"));
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, GenerationFile, overwrite: true);
            Native.Libc.FsyncDirectory(Root);
        });
    }

    public void ClearGeneration()
    {
        Guard(() => File.Delete(GenerationFile));
    }

    /// <summary>Shadow WAL indexes present for a generation, ascending.</summary>
    public List<long> ShadowIndexes(string generation)
    {
        var dir = ShadowDir(generation);
        var list = new List<long>();
        if (!Directory.Exists(dir))
        {
            return list;
        }

        foreach (var f in Directory.EnumerateFiles(dir, "*.wal"))
        {
            var name = Path.GetFileNameWithoutExtension(f);
            if (name.Length == 8 && long.TryParse(name, System.Globalization.NumberStyles.HexNumber, null, out var idx))
            {
                list.Add(idx);
            }
        }

        list.Sort();
        return list;
    }

    /// <summary>Deletes every generation directory but <paramref name="keep"/>.</summary>
    public void RemoveOtherGenerations(string? keep)
    {
        if (!Directory.Exists(GenerationsDir))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(GenerationsDir))
        {
            if (!string.Equals(Path.GetFileName(dir), keep, StringComparison.Ordinal))
            {
                Guard(() => Directory.Delete(dir, recursive: true));
            }
        }
    }

    /// <summary>Deletes shadow files of <paramref name="generation"/> with an index below <paramref name="belowIndex"/>.</summary>
    public int RemoveShadowsBelow(string generation, long belowIndex)
    {
        int n = 0;
        foreach (var idx in ShadowIndexes(generation))
        {
            if (idx < belowIndex)
            {
                Guard(() => File.Delete(ShadowPath(generation, idx)));
                n++;
            }
        }

        return n;
    }

    /// <summary>Deletes leftover <c>*.tmp</c> files from an interrupted run.</summary>
    public void RemoveTempFiles()
    {
        if (!Directory.Exists(Root))
        {
            return;
        }

        foreach (var f in Directory.EnumerateFiles(Root, "*.tmp", SearchOption.AllDirectories))
        {
            Guard(() => File.Delete(f));
        }
    }

    /// <summary>Total bytes of the shadow WAL files of a generation with an index below <paramref name="belowIndex"/>.</summary>
    public long ShadowBytes(string generation, long belowIndex = long.MaxValue)
    {
        long bytes = 0;
        foreach (var idx in ShadowIndexes(generation))
        {
            if (idx < belowIndex)
            {
                var fi = new FileInfo(ShadowPath(generation, idx));
                bytes += fi.Exists ? fi.Length : 0;
            }
        }

        return bytes;
    }

    /// <summary>
    /// Takes the locks that make this process the only replicator of the database: first the
    /// database's own lock (<see cref="DatabaseLock"/>, beside the database, whatever the meta
    /// path), then the lock of this meta directory (two databases configured with one meta path
    /// would mix their shadow WALs). The kernel releases both when the process dies, so a restart
    /// after a crash is never blocked. Disposing the returned stream releases both.
    /// </summary>
    public FileStream AcquireLock(string dbPath)
    {
        var databaseLock = DatabaseLock.Acquire(dbPath);
        try
        {
            return AcquireMetaLock(dbPath, databaseLock);
        }
        catch
        {
            databaseLock.Dispose();
            throw;
        }
    }

    private ReplicatorLock AcquireMetaLock(string dbPath, FileStream databaseLock)
    {
        Create();
        var path = Path.Combine(Root, LockFileName);
        if (Directory.Exists(path))
        {
            throw new ReplicaException(ReplicaErrorCode.MetaNotWritable,
                $"The lock file '{path}' in the meta directory is a directory. Remove that directory (rm -r '{path}'; it holds nothing of the replicator) and start again.", path);
        }

        ReplicatorLock? fs = null;
        try
        {
            // FileShare.None: .NET asks for flock(LOCK_EX | LOCK_NB) on Unix; taken explicitly
            // too, in case .NET file locking is disabled by configuration.
            fs = new ReplicatorLock(path, databaseLock);
            if (!Native.Libc.TryLockExclusive(fs.SafeFileHandle))
            {
                throw new IOException("locked", 11);
            }

            fs.SetLength(0);
            fs.Write(System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n"));
            fs.Flush();
            var result = fs;
            fs = null;
            return result;
        }
        catch (IOException e) when (DatabaseLock.IsWouldBlock(e))
        {
            throw new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
                $"The meta directory '{Root}' of database '{dbPath}' is already used by another replicator (lock '{path}'), most likely for another database configured with the same meta path. Stop that replicator first, or give each database its own meta path.", dbPath, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReplicaException(ReplicaErrorCode.MetaNotWritable,
                $"Cannot create the lock file '{path}' in the meta directory: {e.Message}. Make sure the meta directory is writable by this user and that '{path}' is a regular file (remove it if it is not), or set another meta path.", path, e);
        }
        finally
        {
            fs?.DisposeMetaLockOnly();
        }
    }

    /// <summary>
    /// The meta directory's lock file, opened, which also owns the database's lock: one stream to
    /// dispose releases both (the capture holds its lock as one <see cref="FileStream"/>).
    /// </summary>
    private sealed class ReplicatorLock : FileStream
    {
        private FileStream? _databaseLock;

        public ReplicatorLock(string metaLockPath, FileStream databaseLock)
            : base(metaLockPath, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                BufferSize = 0,
                UnixCreateMode = OperatingSystem.IsWindows() ? null : IO.PrivateFiles.FileMode,
            })
        {
            _databaseLock = databaseLock;
        }

        /// <summary>On a failed acquisition: the caller still owns (and disposes) the database lock.</summary>
        public void DisposeMetaLockOnly()
        {
            _databaseLock = null;
            Dispose();
        }

        protected override void Dispose(bool disposing)
        {
            try
            {
                base.Dispose(disposing);
            }
            finally
            {
                if (disposing)
                {
                    _databaseLock?.Dispose();
                    _databaseLock = null;
                }
            }
        }
    }

    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is DirectoryNotFoundException && !Directory.Exists(Root))
        {
            throw new ReplicaException(ReplicaErrorCode.MetaNotWritable,
                $"The meta directory '{Root}' disappeared while in use: {e.Message}. Do not delete it while replicating.", Root, e);
        }
        catch (DirectoryNotFoundException)
        {
            // Removing something that is already gone.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReplicaException(ReplicaErrorCode.MetaNotWritable,
                $"Cannot write the meta directory '{Root}': {e.Message}. It holds the shadow WAL; make sure it is on a writable filesystem with free space, or set another meta path.", Root, e);
        }
    }
}
