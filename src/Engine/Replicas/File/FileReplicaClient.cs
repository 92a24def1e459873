using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Replicas.File;

/// <summary>
/// A replica in a local directory. Every object is written to <c>&lt;name&gt;.tmp</c>, fsynced,
/// renamed into place and the directory fsynced, so a reader never sees half an object and an
/// object's mtime is its creation time (the timestamp restore and retention rely on).
/// </summary>
public sealed class FileReplicaClient : IReplicaClient
{

    public FileReplicaClient(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    public string Type => "file";

    /// <inheritdoc/>
    public bool LocalReads => true;

    public string Url => new Uri(Root).AbsoluteUri;

    private string GenerationsDir => Path.Combine(Root, "generations");

    private string SnapshotsDir(string generation) => Path.Combine(GenerationsDir, generation, "snapshots");

    private string WalDir(string generation) => Path.Combine(GenerationsDir, generation, "wal");

    public string SnapshotPath(string generation, long index) => Path.Combine(SnapshotsDir(generation), ReplicaNames.SnapshotName(index));

    public string SegmentPath(string generation, long index, long offset) => Path.Combine(WalDir(generation), ReplicaNames.SegmentName(index, offset));

    public Task<IReplicaLease> AcquireLeaseAsync(LeaseOwner owner, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var path = Path.Combine(Root, ".sqlitereplica-lease");
        try
        {
            IO.PrivateFiles.CreateDirectory(Root);
            var fs = IO.PrivateFiles.Open(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            fs.SetLength(0);
            fs.Write(System.Text.Encoding.UTF8.GetBytes(owner + "\n"));
            fs.Flush();
            return Task.FromResult<IReplicaLease>(new FileLease(fs));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && !IsLockContention(e, path))
        {
            throw new ReplicaException(ReplicaErrorCode.ReplicaNotWritable,
                $"Cannot write replica location '{Root}': {e.Message}. Check that the replica directory is on a writable filesystem with free space.", Root, e);
        }
        catch (IOException e)
        {
            string holder = "another replicator";
            try
            {
                holder = System.IO.File.ReadAllText(path).Trim();
            }
            catch (IOException)
            {
            }

            throw new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
                $"Replica location '{Root}' is already written by {holder}. Two replicators on one location would interleave histories; stop the other one or use another replica path.", Root, e);
        }
    }

    private static bool IsLockContention(Exception e, string path) =>
        e is IOException && System.IO.File.Exists(path) && (e.HResult == 11 || e.Message.Contains("being used", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("lock", StringComparison.OrdinalIgnoreCase));

    /// <summary>An OS lock on a file in the replica directory: released by the kernel if the process dies.</summary>
    private sealed class FileLease(FileStream lockFile) : IReplicaLease
    {
        public Task RenewIfDueAsync(CancellationToken ct) => Task.CompletedTask;

        public ValueTask DisposeAsync() => lockFile.DisposeAsync();
    }

    public async Task CheckWritableAsync(CancellationToken ct)
    {
        var probe = Path.Combine(Root, $".sqlitereplica-probe-{Environment.ProcessId}");
        await WriteAtomicAsync(probe, (s, _) => s.WriteAsync(new byte[] { 0 }).AsTask(), ct).ConfigureAwait(false);
        TryDelete(probe);
    }

    public Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<IReadOnlyList<string>>(Guard(GenerationsDir, () =>
        {
            if (!Directory.Exists(GenerationsDir))
            {
                return new List<string>();
            }

            return Directory.EnumerateDirectories(GenerationsDir)
                .Select(Path.GetFileName)
                .Where(n => n is not null && ReplicaNames.IsGeneration(n))
                .Select(n => n!)
                .Order(StringComparer.Ordinal)
                .ToList();
        }, read: true));
    }

    public Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var dir = SnapshotsDir(generation);
        return Task.FromResult<IReadOnlyList<SnapshotInfo>>(Guard(dir, () =>
        {
            var list = new List<SnapshotInfo>();
            if (!Directory.Exists(dir))
            {
                return list;
            }

            foreach (var fi in new DirectoryInfo(dir).EnumerateFiles())
            {
                if (ReplicaNames.TryParseSnapshot(fi.Name, out var index))
                {
                    list.Add(new SnapshotInfo(generation, index, fi.Length, new DateTimeOffset(fi.LastWriteTimeUtc)));
                }
            }

            list.Sort((a, b) => a.Index.CompareTo(b.Index));
            return list;
        }, read: true));
    }

    public Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var dir = WalDir(generation);
        return Task.FromResult<IReadOnlyList<SegmentInfo>>(Guard(dir, () =>
        {
            var list = new List<SegmentInfo>();
            if (!Directory.Exists(dir))
            {
                return list;
            }

            foreach (var fi in new DirectoryInfo(dir).EnumerateFiles())
            {
                if (ReplicaNames.TryParseSegment(fi.Name, out var index, out var offset))
                {
                    list.Add(new SegmentInfo(generation, index, offset, fi.Length, new DateTimeOffset(fi.LastWriteTimeUtc)));
                }
            }

            list.Sort((a, b) => a.Index != b.Index ? a.Index.CompareTo(b.Index) : a.Offset.CompareTo(b.Offset));
            return list;
        }, read: true));
    }

    public Task<Stream> OpenSnapshotAsync(string generation, long index, CancellationToken ct) =>
        OpenRead(SnapshotPath(generation, index), ct);

    public Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct) =>
        OpenRead(SegmentPath(generation, index, offset), ct);

    public Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) =>
        WriteAtomicAsync(SnapshotPath(generation, index), writeFramed, ct);

    public Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) =>
        WriteAtomicAsync(SegmentPath(generation, index, offset), writeFramed, ct);

    public Task DeleteSnapshotAsync(string generation, long index, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var path = SnapshotPath(generation, index);
        Guard(path, () => { System.IO.File.Delete(path); return 0; }, read: false);
        return Task.CompletedTask;
    }

    public Task DeleteSegmentsAsync(IReadOnlyList<SegmentInfo> segments, CancellationToken ct)
    {
        foreach (var s in segments)
        {
            ct.ThrowIfCancellationRequested();
            var path = SegmentPath(s.Generation, s.Index, s.Offset);
            Guard(path, () => { System.IO.File.Delete(path); return 0; }, read: false);
        }

        return Task.CompletedTask;
    }

    public Task DeleteGenerationAsync(string generation, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var dir = Path.Combine(GenerationsDir, generation);
        Guard(dir, () =>
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            return 0;
        }, read: false);
        return Task.CompletedTask;
    }

    private Task<Stream> OpenRead(string path, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<Stream>(Guard(path, () =>
        {
            try
            {
                return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.SequentialScan);
            }
            catch (FileNotFoundException e)
            {
                throw new ReplicaException(ReplicaErrorCode.SegmentMissing, $"Replica object '{path}' does not exist.", path, e);
            }
            catch (DirectoryNotFoundException e)
            {
                throw new ReplicaException(ReplicaErrorCode.SegmentMissing, $"Replica object '{path}' does not exist.", path, e);
            }
        }, read: true));
    }

    private async Task<long> WriteAtomicAsync(string path, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var dir = Path.GetDirectoryName(path)!;
        var tmp = path + ".tmp";
        try
        {
            IO.PrivateFiles.CreateDirectory(dir);
            long length;
            var options = new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 1 << 16,
                UnixCreateMode = IO.PrivateFiles.FileMode,
            };
            await using (var fs = new FileStream(tmp, options))
            {
                await writeFramed(fs, ct).ConfigureAwait(false);
                await fs.FlushAsync(ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
                length = fs.Length;
            }

            System.IO.File.Move(tmp, path, overwrite: true);
            Native.Libc.FsyncDirectory(dir);
            return length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new ReplicaException(ReplicaErrorCode.ReplicaNotWritable,
                $"Cannot write replica object '{path}': {e.Message}. Check that the replica directory exists on a writable filesystem with free space.", path, e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            System.IO.File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static T Guard<T>(string target, Func<T> action, bool read)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not FileNotFoundException)
        {
            throw new ReplicaException(read ? ReplicaErrorCode.ReplicaNotReadable : ReplicaErrorCode.ReplicaNotWritable,
                $"Cannot {(read ? "read" : "change")} replica location '{target}': {e.Message}.", target, e);
        }
    }
}
