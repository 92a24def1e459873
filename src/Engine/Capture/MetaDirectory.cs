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
        var full = Path.GetFullPath(dbPath);
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

    /// <summary>Total bytes of the shadow WAL files of a generation.</summary>
    public long ShadowBytes(string generation)
    {
        var dir = ShadowDir(generation);
        return Directory.Exists(dir) ? new DirectoryInfo(dir).EnumerateFiles("*.wal").Sum(f => f.Length) : 0;
    }

    /// <summary>
    /// Takes the exclusive lock that makes this process the only replicator of the database. The
    /// kernel releases it when the process dies, so a restart after a crash is never blocked.
    /// </summary>
    public FileStream AcquireLock(string dbPath)
    {
        Create();
        var path = Path.Combine(Root, LockFileName);
        try
        {
            var fs = IO.PrivateFiles.Open(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            fs.SetLength(0);
            fs.Write(System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n"));
            fs.Flush();
            return fs;
        }
        catch (IOException e) when (e.HResult == 11 || e.Message.Contains("lock", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("being used", StringComparison.OrdinalIgnoreCase))
        {
            string holder = "another process";
            try
            {
                holder = "process " + File.ReadAllText(path).Trim();
            }
            catch (IOException)
            {
            }

            throw new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
                $"Database '{dbPath}' is already being replicated by {holder} (lock '{path}'). Stop that replicator first; two replicators on one database would interleave histories.", dbPath, e);
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
