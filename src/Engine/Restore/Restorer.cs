using System.Buffers.Binary;
using System.Diagnostics;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Restore;

/// <summary>
/// Rebuilds a database from a replica. The snapshot is decoded into a temporary file while WAL
/// indexes are downloaded, decoded and verified in parallel into spool files (offsets
/// contiguous, header checksum, every frame's salts and checksum chain, page size); then, index
/// by index, the newest committed version of each page is written once into the file and the
/// file is cut to the size the last commit records. Only then is the file renamed to the
/// output: nothing appears at the output path unless the whole applied chain verified.
/// From a replica whose objects are local files (<see cref="IReplicaClient.LocalReads"/>) nothing
/// is spooled: every index is verified at a first reading, then each page is written once from
/// its newest version across all indexes, read again from the segments that hold one (a
/// segment whose versions were all overwritten later is not read again); the second reading of
/// a segment must show the frames the first one verified (page numbers and stored checksums).
/// </summary>
public sealed class Restorer
{
    private readonly IReplicaClient _client;
    private readonly IEngineLog _log;
    private long _bytesRead;
    private long _bytesTotal;
    private IProgress<RestoreProgress>? _progress;

    // Where the time went, for the closing verbose line (ticks of Stopwatch).
    private long _started;
    private long _snapshotDone;
    private long _walWait;
    private long _apply;

    public Restorer(IReplicaClient client, IEngineLog log)
    {
        _client = client;
        _log = log;
    }

    public async Task<RestoreResult> RestoreAsync(RestoreOptions options, IProgress<RestoreProgress>? progress, CancellationToken ct)
    {
        CheckOutput(Capture.DatabasePath.Resolve(options.OutputPath), options.Force);
        var (plan, damage) = await RestorePlanner.PlanAsync(_client, options.Generation, options.Index, options.Timestamp, options.AllowPartial, ct, options.Offset).ConfigureAwait(false);
        return await ExecuteAsync(plan, damage, options, progress, ct).ConfigureAwait(false);
    }

    /// <summary>Carries out a plan made by <see cref="RestorePlanner"/> (so a caller can show it first).</summary>
    public async Task<RestoreResult> ExecuteAsync(RestorePlan plan, string? damage, RestoreOptions options, IProgress<RestoreProgress>? progress, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        _progress = progress;
        _started = Stopwatch.GetTimestamp();
        _snapshotDone = _walWait = _apply = 0;
        Interlocked.Exchange(ref _bytesRead, 0);
        // An output that is a symbolic link is written where it leads, as SQLite would open it:
        // the link stays, the file it names is replaced (with -Force), and the stale -wal/-shm
        // removed are the target's, which SQLite would otherwise replay into the new file.
        var output = Capture.DatabasePath.Resolve(options.OutputPath);
        CheckOutput(output, options.Force);
        _bytesTotal = plan.TotalStoredBytes;
        _log.Verbose($"restoring snapshot generation={plan.Generation} index={plan.Snapshot.Index} from '{_client.Url}' to '{output}'");

        var dir = Path.GetDirectoryName(output)!;
        var tempDir = options.TempDirectory is null ? dir : Path.GetFullPath(options.TempDirectory);
        try
        {
            IO.PrivateFiles.CreateDirectory(dir);
            IO.PrivateFiles.CreateDirectory(tempDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReplicaException(ReplicaErrorCode.OutputNotWritable, $"Cannot create directory for '{output}': {e.Message}. Choose an output path on a writable filesystem.", output, e);
        }

        var tmp = Path.Combine(tempDir, $".{Path.GetFileName(output)}.{Guid.NewGuid():N}.restore-tmp");
        var spools = new List<string>();
        try
        {
            await using (var db = CreateTemp(tmp, output))
            {
                // The snapshot is decoded while the first WAL indexes download and verify; no page
                // is applied before the snapshot is complete.
                using var snapshotStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var snapshot = WriteSnapshotAsync(plan, db, snapshotStop.Token);
                Applied applied;
                try
                {
                    applied = await ApplyIndexesAsync(plan, db, snapshot, tmp, spools, options, ct).ConfigureAwait(false);
                }
                finally
                {
                    if (!snapshot.IsCompleted)
                    {
                        // Failing before the snapshot finished: stop it and let it end before the file closes.
                        snapshotStop.Cancel();
                        try
                        {
                            await snapshot.ConfigureAwait(false);
                        }
                        catch (Exception)
                        {
                            // The first failure is the one reported.
                        }
                    }
                }

                damage ??= applied.Damage;
                long size = db.Length;
                // quick_check reads the finished file through the page cache while fsync writes the
                // same pages to disk: the one needs the CPU, the other the disk.
                var quickCheck = options.QuickCheck ? Task.Run(() => QuickCheck(tmp), CancellationToken.None) : Task.FromResult<string?>(null);
                long flushStart = sw.ElapsedTicks;
                try
                {
                    db.Flush(flushToDisk: true);
                }
                finally
                {
                    if (!quickCheck.IsCompleted)
                    {
                        try
                        {
                            await quickCheck.ConfigureAwait(false);
                        }
                        catch (Exception) when (!quickCheck.IsCompletedSuccessfully)
                        {
                            // Reported below when the flush went well.
                        }
                    }
                }

                long flush = sw.ElapsedTicks - flushStart;
                if (damage is not null)
                {
                    _log.Warning($"partial restore: {damage}. The database was restored to {applied.Position}, the last consistent point before the damage.");
                }

                var restoredTo = plan.Segments.Take(applied.Segments).Select(s => s.CreatedAt).Append(plan.Snapshot.CreatedAt).Max();
                db.Close();
                long checkStart = sw.ElapsedTicks;
                if (await quickCheck.ConfigureAwait(false) is { } problem)
                {
                    throw new ReplicaException(ReplicaErrorCode.RestoredDatabaseCorrupt,
                        $"Every object of the chain verified, but the rebuilt database fails SQLite's quick_check ({problem}). An object the names cannot reveal is probably missing, such as the last segment of a WAL index. Nothing was written to '{output}'. Restore an earlier point with -Index or -Timestamp.", output);
                }

                long check = sw.ElapsedTicks - checkStart;
                Finish(tmp, output, options.Force);
                static string S(long ticks) => (ticks / (double)Stopwatch.Frequency).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
                _log.Verbose($"restored '{output}' to {applied.Position} ({applied.Indexes} index(es), {applied.Segments} segment(s), {size} bytes) in {sw.Elapsed.TotalSeconds:F2}s " +
                    $"(snapshot written at {S(_snapshotDone)}s, waiting for WAL {S(_walWait)}s, applying {S(_apply)}s, fsync and quick_check {S(flush)}s, then quick_check {S(check)}s)");
                return new RestoreResult
                {
                    OutputPath = output,
                    ReplicaUrl = _client.Url,
                    Generation = plan.Generation,
                    SnapshotIndex = plan.Snapshot.Index,
                    Position = applied.Position,
                    IndexesApplied = applied.Indexes,
                    SegmentsApplied = applied.Segments,
                    BytesRead = Interlocked.Read(ref _bytesRead),
                    DatabaseSize = size,
                    Duration = sw.Elapsed,
                    RestoredTo = restoredTo,
                    Partial = damage is not null,
                    PartialReason = damage,
                };
            }
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new ReplicaException(ReplicaErrorCode.OutputNotWritable, $"Cannot write the restored database next to '{output}': {e.Message}. Free space or choose another output path.", output, e);
        }
        finally
        {
            TryDelete(tmp);
            foreach (var s in spools)
            {
                TryDelete(s);
            }
        }
    }

    /// <summary>Runs quick_check on a closed file without creating -wal or -shm beside it. Null means ok.</summary>
    private static string? QuickCheck(string path)
    {
        var uri = new Uri(path).AbsoluteUri + "?immutable=1";
        using var c = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = uri, Mode = Microsoft.Data.Sqlite.SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        try
        {
            c.Open();
            using var cmd = c.CreateCommand();
            // Through a memory map (as far as SQLite's build allows): no read call and no copy per page.
            cmd.CommandText = "PRAGMA mmap_size = 1099511627776";
            cmd.ExecuteNonQuery();
            cmd.CommandText = "PRAGMA quick_check(5)";
            using var r = cmd.ExecuteReader();
            var lines = new List<string>();
            while (r.Read())
            {
                lines.Add(r.GetString(0));
            }

            return lines is ["ok"] ? null : string.Join("; ", lines);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            return e.Message;
        }
    }

    private static void CheckOutput(string output, bool force)
    {
        if (!force && (File.Exists(output) || File.Exists(output + "-wal")))
        {
            throw new ReplicaException(ReplicaErrorCode.OutputExists,
                $"'{output}' already exists. Restore to another path, or add -Force to replace it (stop the application using it first).", output);
        }

        if (Directory.Exists(output))
        {
            throw new ReplicaException(ReplicaErrorCode.OutputNotWritable, $"'{output}' is a directory. Give the path of the database file to create.", output);
        }
    }

    private static FileStream CreateTemp(string tmp, string output)
    {
        try
        {
            return new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                BufferSize = 0,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReplicaException(ReplicaErrorCode.OutputNotWritable, $"Cannot create a temporary file next to '{output}': {e.Message}. Choose an output path on a writable filesystem.", output, e);
        }
    }

    private static void Finish(string tmp, string output, bool force)
    {
        if (force)
        {
            // A stale WAL beside the new file would be replayed into it by SQLite.
            File.Delete(output + "-wal");
            File.Delete(output + "-shm");
        }

        File.Move(tmp, output, overwrite: force);
        Native.Libc.FsyncDirectory(Path.GetDirectoryName(output)!);
    }

    private async Task<int> WriteSnapshotAsync(RestorePlan plan, FileStream db, CancellationToken ct)
    {
        var s = plan.Snapshot;
        var name = $"generations/{s.Generation}/snapshots/{ReplicaNames.SnapshotName(s.Index)}";
        await using var raw = await _client.OpenSnapshotAsync(s.Generation, s.Index, ct).ConfigureAwait(false);
        await using var decoded = new VerifiedLz4Stream(raw, name);
        var buffer = new byte[1 << 20];
        int n;
        long lastRaw = 0;
        while ((n = await decoded.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await db.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            Report("snapshot", decoded.RawLength - lastRaw);
            lastRaw = decoded.RawLength;
        }

        Report("snapshot", decoded.RawLength - lastRaw);
        _snapshotDone = Stopwatch.GetTimestamp() - _started;
        var header = new byte[100];
        db.Position = 0;
        int got = await db.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got < 100 || !header.AsSpan(0, 16).SequenceEqual("SQLite format 3\0"u8))
        {
            throw new ReplicaException(ReplicaErrorCode.SegmentCorrupt, $"Snapshot '{name}' is not a SQLite database (bad header). Restore from another snapshot with -Index or -Timestamp.", name);
        }

        int pageSize = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(16, 2));
        pageSize = pageSize == 1 ? 65536 : pageSize;
        if (db.Length % pageSize != 0)
        {
            throw new ReplicaException(ReplicaErrorCode.SegmentCorrupt, $"Snapshot '{name}' is {db.Length} bytes, not a whole number of {pageSize}-byte pages: it is truncated.", name);
        }

        return pageSize;
    }

    private sealed record Applied(Position Position, int Indexes, int Segments, string? Damage);

    private async Task<Applied> ApplyIndexesAsync(RestorePlan plan, FileStream db, Task<int> snapshot, string tmp, List<string> spools, RestoreOptions options, CancellationToken ct)
    {
        var groups = plan.Segments.GroupBy(s => s.Index).Select(g => g.OrderBy(s => s.Offset).ToList()).ToList();
        var position = new Position(plan.Generation, plan.Snapshot.Index, 0);
        if (groups.Count == 0)
        {
            await snapshot.ConfigureAwait(false);
            return new Applied(position, 0, 0, null);
        }

        _log.Verbose($"restoring wal files generation={plan.Generation} index_min={groups[0][0].Index} index_max={groups[^1][0].Index}");
        int parallelism = Math.Max(1, options.Parallelism);
        var pending = new Queue<Task<Spooled>>();
        int next = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        // Nothing is applied before the snapshot is whole, so while it decodes it keeps a core to
        // itself: fewer indexes spool at once until it is done, then all of them.
        int early = Math.Min(parallelism, Math.Max(1, Environment.ProcessorCount - 1));
        var gate = new SemaphoreSlim(early, parallelism);
        _ = snapshot.ContinueWith(_ => gate.Release(parallelism - early), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously | TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        void StartMore()
        {
            while (next < groups.Count && pending.Count < parallelism)
            {
                var group = groups[next++];
                string? spoolPath = null;
                if (!_client.LocalReads)
                {
                    spoolPath = $"{tmp}-{ReplicaNames.Hex8(group[0].Index)}.wal";
                    lock (spools)
                    {
                        spools.Add(spoolPath);
                    }
                }

                long? stopAt = options.Offset is { } o && options.Index == group[0].Index ? o : null;
                pending.Enqueue(SpoolIndexAsync(group, spoolPath, stopAt, gate, stop.Token));
            }
        }

        int indexes = 0, segments = 0;
        string? damage = null;
        // From local files the indexes are read again to be applied, and only once all of them
        // verified: each page is then written once, from its newest version across all indexes.
        var newest = _client.LocalReads ? new NewestPages() : null;
        int pageSize;
        try
        {
            StartMore();
            pageSize = await snapshot.ConfigureAwait(false);
            while (pending.Count > 0)
            {
                long waitStart = Stopwatch.GetTimestamp();
                var spooled = WithPageSizeChecked(await pending.Dequeue().ConfigureAwait(false), plan.Generation, pageSize);
                _walWait += Stopwatch.GetTimestamp() - waitStart;
                if (spooled.Damage is not null && !options.AllowPartial)
                {
                    throw spooled.Error!;
                }

                if (spooled.LastCommitOffset > WalHeader.Size)
                {
                    if (newest is not null)
                    {
                        newest.Add(spooled);
                    }
                    else
                    {
                        long applyStart = Stopwatch.GetTimestamp();
                        ApplySpool(spooled, spooled.Path!, db, pageSize, ct);
                        _apply += Stopwatch.GetTimestamp() - applyStart;
                    }

                    position = new Position(plan.Generation, spooled.Index, spooled.LastCommitOffset);
                }

                if (spooled.Path is not null)
                {
                    TryDelete(spooled.Path);
                }

                indexes++;
                segments += spooled.SegmentsUsed;
                _log.Debug($"{(newest is null ? "applied" : "verified")} wal generation={plan.Generation} index={spooled.Index} segments={spooled.SegmentsUsed}");
                if (spooled.Damage is not null)
                {
                    damage = spooled.Damage;
                    break;
                }

                StartMore();
            }
        }
        finally
        {
            stop.Cancel();
            while (pending.Count > 0)
            {
                try
                {
                    await pending.Dequeue().ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // Already failing or finished early; spool files are removed by the caller.
                }
            }
        }

        if (newest is not null)
        {
            long applyStart = Stopwatch.GetTimestamp();
            int workers = Math.Max(1, Math.Min(parallelism, Environment.ProcessorCount));
            var (read, of, pages) = await newest.ApplyAsync(this, db, pageSize, workers, ct).ConfigureAwait(false);
            _apply += Stopwatch.GetTimestamp() - applyStart;
            _log.Verbose($"applied the newest version of {pages} page(s) from {read} of {of} segment(s), read again");
        }

        return new Applied(position, indexes, segments, damage);
    }

    /// <summary>
    /// One WAL index downloaded and verified, into a spool file laid out as the WAL itself (the
    /// spool offset of a frame is its WAL offset) or, with no <see cref="Path"/>, to be read again
    /// from its segments. <see cref="Newest"/> maps each page written by a committed transaction
    /// to the WAL offset of its newest version's page data; <see cref="Checks"/> says what the
    /// first reading saw of each segment, so that a second reading can be held to it.
    /// </summary>
    private sealed record Spooled(long Index, string? Path, WalHeader? Header, long LastCommitOffset, uint DbSize, int SegmentsUsed, string? Damage, ReplicaException? Error, Dictionary<uint, long> Newest, IReadOnlyList<SegmentCheck> Checks);

    /// <summary>
    /// The frames the first reading accepted from one segment: WAL offsets from its first frame
    /// (<see cref="Start"/>) to the end of the last one (<see cref="End"/>), their
    /// <see cref="FrameHash"/>, and the hash up to the end of the last commit frame inside the
    /// segment (<see cref="CommitEnd"/>, -1 when the segment holds no commit frame).
    /// </summary>
    private sealed record SegmentCheck(SegmentInfo Segment, long Start, long End, ulong Hash, long CommitEnd, ulong CommitHash);

    /// <summary>
    /// An index whose WAL header names another page size than the snapshot's is damage at its
    /// first segment: nothing of it is applied (checked here because indexes spool while the
    /// snapshot, which gives the page size, is still being decoded).
    /// </summary>
    private static Spooled WithPageSizeChecked(Spooled spooled, string generation, int pageSize)
    {
        if (spooled.Header is not { } header || header.PageSize == pageSize)
        {
            return spooled;
        }

        var name = $"generations/{generation}/wal/{ReplicaNames.SegmentName(spooled.Index, 0)}";
        var error = new ReplicaException(ReplicaErrorCode.SegmentCorrupt,
            $"WAL segment '{name}' failed verification: its page size {header.PageSize} differs from the snapshot's {pageSize}. Restore an earlier point with -Index/-Timestamp, or use -AllowPartial to stop before it.", name);
        return spooled with { LastCommitOffset = 0, DbSize = 0, SegmentsUsed = 0, Damage = error.Message, Error = error };
    }

    /// <summary>Downloads, decodes and verifies one WAL index into a spool file. Never throws for damage: it reports it.</summary>
    /// <remarks>
    /// Frames are verified where they were decoded, and each run of verified whole frames goes to
    /// the spool in one write; the frames' page numbers are noted on the way, so applying the
    /// index reads only the pages it writes.
    /// </remarks>
    private async Task<Spooled> SpoolIndexAsync(List<SegmentInfo> group, string? spoolPath, long? stopAt, SemaphoreSlim gate, CancellationToken ct)
    {
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await SpoolIndexCoreAsync(group, spoolPath, stopAt, ct).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<Spooled> SpoolIndexCoreAsync(List<SegmentInfo> group, string? spoolPath, long? stopAt, CancellationToken ct)
    {
        await Task.Yield();
        long index = group[0].Index;
        await using var spool = spoolPath is null ? null : new FileStream(spoolPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        var state = new SpoolState(index, spoolPath);
        // Room for a read of 1 MiB after the partial frame (at most one largest frame) kept from the previous one.
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent((1 << 20) + 65536 + WalFrameHeader.Size);
        await using var opener = new SegmentOpener(_client, group, _client.LocalReads ? 1 : SegmentsAhead, ct);
        try
        {
            long expected = 0;
            foreach (var seg in group)
            {
                var name = $"generations/{seg.Generation}/wal/{ReplicaNames.SegmentName(seg.Index, seg.Offset)}";
                if (seg.Offset != expected)
                {
                    var missing = $"generations/{seg.Generation}/wal/{ReplicaNames.SegmentName(seg.Index, expected)}";
                    return state.Stop(new ReplicaException(ReplicaErrorCode.SegmentMissing,
                        $"The chain is broken before '{name}': the segment at offset {expected} ('{missing}') is missing. Restore an earlier point with -Index/-Timestamp, or use -AllowPartial to restore up to the gap.", missing));
                }

                long start = Math.Max(seg.Offset, WalHeader.Size);
                state.BeginSegment();
                try
                {
                    await using var raw = await opener.NextAsync().ConfigureAwait(false);
                    long segmentLength = await SpoolSegmentAsync(raw, seg, name, spool, state, buffer, stopAt, ct).ConfigureAwait(false);
                    state.EndSegment(seg, start);
                    if (state.Damage is { } damage)
                    {
                        return state.Stop(damage);
                    }

                    expected += segmentLength;
                }
                catch (ReplicaException e) when (e.Code is ReplicaErrorCode.SegmentCorrupt or ReplicaErrorCode.SegmentMissing)
                {
                    state.EndSegment(seg, start);
                    return state.Stop(e);
                }

                state.Used++;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        if (state.Verifier is { } v && v.Offset != v.LastCommitOffset)
        {
            // An uncommitted tail is ignored, as SQLite would; Litestream never writes one.
            _log.Debug($"wal index {index:x8} ends with {v.Offset - v.LastCommitOffset} uncommitted bytes; ignored");
        }

        return state.Result(null, null);
    }

    /// <summary>Segments of one index a remote store is asked for at once (see <see cref="SegmentOpener"/>).</summary>
    private const int SegmentsAhead = 4;

    /// <summary>
    /// Opens an index's segments in order, up to <c>ahead</c> of them at a time. From a store
    /// far away each opening waits a round trip before the first byte, and an index of many
    /// small segments (a trickle of writes uploads one a second) would otherwise wait those
    /// round trips one after the other. Openings nobody took are cancelled and closed at dispose.
    /// </summary>
    private sealed class SegmentOpener(IReplicaClient client, IReadOnlyList<SegmentInfo> segments, int ahead, CancellationToken ct) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        private readonly Queue<Task<Stream>> _opening = new();
        private int _next;

        /// <summary>The next segment's stream (the caller disposes it); starts the openings after it.</summary>
        public Task<Stream> NextAsync()
        {
            while (_next < segments.Count && _opening.Count < ahead)
            {
                var s = segments[_next++];
                _opening.Enqueue(client.OpenSegmentAsync(s.Generation, s.Index, s.Offset, _stop.Token));
            }

            return _opening.Dequeue();
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            while (_opening.Count > 0)
            {
                try
                {
                    await (await _opening.Dequeue().ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // Not needed any more: the index stopped before this segment.
                }
            }

            _stop.Dispose();
        }
    }

    /// <summary>What one index's spooling has verified so far.</summary>
    private sealed class SpoolState(long index, string? path)
    {
        public WalChainVerifier? Verifier;
        public int Used;
        public ReplicaException? Damage;

        /// <summary>Spool offset of each page's newest version written by a committed transaction.</summary>
        public readonly Dictionary<uint, long> Newest = new();

        /// <summary>Pages of the transaction still open, moved into <see cref="Newest"/> at its commit frame.</summary>
        public readonly List<(uint Page, long Offset)> SinceCommit = new();

        /// <summary>The segments read so far, and what was seen of the current one.</summary>
        public readonly List<SegmentCheck> Checks = new();
        public ulong SegmentHash;
        public long SegmentCommitEnd = -1;
        public ulong SegmentCommitHash;

        public void BeginSegment()
        {
            SegmentHash = SegmentCommitHash = 0;
            SegmentCommitEnd = -1;
        }

        /// <summary>Records what was accepted of a segment (also of one that stopped at damage: frames before it may be applied).</summary>
        public void EndSegment(SegmentInfo segment, long start)
        {
            if (Verifier is { } v && v.Offset > start)
            {
                Checks.Add(new SegmentCheck(segment, start, v.Offset, SegmentHash, SegmentCommitEnd, SegmentCommitHash));
            }
        }

        public Spooled Stop(ReplicaException e) => Result(e.Message, e);

        public Spooled Result(string? damage, ReplicaException? error) =>
            new(index, path, Verifier?.Header, Verifier?.LastCommitOffset ?? 0, Verifier?.LastCommitDbSize ?? 0, Used, damage, error, Newest, Checks);
    }

    /// <summary>Decodes one segment into the spool; returns its decoded length, or sets <see cref="SpoolState.Damage"/>.</summary>
    private async Task<long> SpoolSegmentAsync(Stream raw, SegmentInfo seg, string name, FileStream? spool, SpoolState state, byte[] buffer, long? stopAt, CancellationToken ct)
    {
        ReplicaException Damage(string why) => new(ReplicaErrorCode.SegmentCorrupt,
            $"WAL segment '{name}' failed verification: {why}. Restore an earlier point with -Index/-Timestamp, or use -AllowPartial to stop before it.", name);

        await using var decoded = new VerifiedLz4Stream(raw, name);
        long segmentLength = 0;
        long lastRaw = 0;
        int fill = 0;
        bool needHeader = seg.Offset == 0;
        int n;
        while ((n = await decoded.ReadAsync(buffer.AsMemory(fill), ct).ConfigureAwait(false)) > 0)
        {
            Report("wal", decoded.RawLength - lastRaw);
            lastRaw = decoded.RawLength;
            segmentLength += n;
            fill += n;
            int pos = 0;
            if (needHeader)
            {
                if (fill < WalHeader.Size)
                {
                    continue;
                }

                var headerBytes = buffer.AsSpan(0, WalHeader.Size);
                var h = WalHeader.Parse(headerBytes);
                if (h.Validate(headerBytes) is { } bad)
                {
                    state.Damage = Damage(bad);
                    return 0;
                }

                state.Verifier = new WalChainVerifier(h);
                if (spool is not null)
                {
                    RandomAccess.Write(spool.SafeFileHandle, headerBytes, 0);
                }

                needHeader = false;
                pos = WalHeader.Size;
            }

            if (state.Verifier is not { } verifier)
            {
                state.Damage = Damage("the index has no WAL header");
                return 0;
            }

            int start = pos;
            long startOffset = verifier.Offset;
            int accepted = VerifyFrames(buffer.AsSpan(0, fill), ref pos, verifier, state, stopAt, out var why);
            if (accepted > 0 && spool is not null)
            {
                RandomAccess.Write(spool.SafeFileHandle, buffer.AsSpan(start, accepted), startOffset);
            }

            if (why is not null)
            {
                state.Damage = Damage(why);
                return 0;
            }

            // The partial frame at the end waits for the next read.
            buffer.AsSpan(pos, fill - pos).CopyTo(buffer);
            fill -= pos;
            ct.ThrowIfCancellationRequested();
        }

        Report("wal", decoded.RawLength - lastRaw);
        if (needHeader)
        {
            state.Damage = Damage("it is shorter than a WAL header");
            return 0;
        }

        if (fill != 0)
        {
            state.Damage = Damage($"it ends with a partial frame ({fill} bytes)");
            return 0;
        }

        return segmentLength;
    }

    /// <summary>
    /// Verifies the whole frames of <paramref name="data"/> from <paramref name="pos"/> on and
    /// returns how many bytes from there it accepted (frames past <paramref name="stopAt"/> are
    /// passed over, not accepted). Stops at the first frame that does not continue the chain,
    /// with <paramref name="why"/> set and <paramref name="pos"/> on it.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static int VerifyFrames(ReadOnlySpan<byte> data, ref int pos, WalChainVerifier verifier, SpoolState state, long? stopAt, out string? why)
    {
        why = null;
        int frameSize = verifier.Header.FrameSize;
        int accepted = 0;
        while (data.Length - pos >= frameSize)
        {
            if (stopAt is { } limit && verifier.Offset >= limit)
            {
                // An exact position inside this segment: frames past it are not applied.
                pos += frameSize;
                continue;
            }

            var frame = data.Slice(pos, frameSize);
            long frameOffset = verifier.Offset;
            if (verifier.Accept(frame) is { } bad)
            {
                why = bad;
                return accepted;
            }

            state.SinceCommit.Add((BinaryPrimitives.ReadUInt32BigEndian(frame), frameOffset + WalFrameHeader.Size));
            state.SegmentHash = FrameHash(state.SegmentHash, frame);
            if (verifier.LastCommitOffset == verifier.Offset)
            {
                state.SegmentCommitEnd = verifier.Offset;
                state.SegmentCommitHash = state.SegmentHash;
                foreach (var (page, offset) in state.SinceCommit)
                {
                    state.Newest[page] = offset;
                }

                state.SinceCommit.Clear();
            }

            pos += frameSize;
            accepted += frameSize;
        }

        return accepted;
    }

    /// <summary>
    /// Writes the newest committed version of every page of a spooled index that lies within the
    /// index's final database size, once: the pages are read from the spool in file order, in
    /// chunks of up to 1 MiB, and each run of consecutive page numbers goes to the database file
    /// in one gathered write.
    /// </summary>
    private static void ApplySpool(Spooled spooled, string spoolPath, FileStream db, int pageSize, CancellationToken ct)
    {
        int frameSize = pageSize + WalFrameHeader.Size;
        var pages = new List<(long Offset, uint Page)>(spooled.Newest.Count);
        foreach (var (page, offset) in spooled.Newest)
        {
            if (page <= spooled.DbSize)
            {
                pages.Add((offset, page));
            }
        }

        pages.Sort();
        using var spool = File.OpenHandle(spoolPath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        int chunkFrames = Math.Max(1, (1 << 20) / frameSize);
        var chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(chunkFrames * frameSize);
        var runs = new PageRuns(db.SafeFileHandle, pageSize);
        try
        {
            for (int i = 0; i < pages.Count;)
            {
                ct.ThrowIfCancellationRequested();
                // The chunk starts at this page's frame and covers the following frames it can hold.
                long chunkStart = pages[i].Offset - WalFrameHeader.Size;
                int j = i;
                while (j < pages.Count && pages[j].Offset - WalFrameHeader.Size + frameSize - chunkStart <= (long)chunkFrames * frameSize)
                {
                    j++;
                }

                int length = (int)(pages[j - 1].Offset - WalFrameHeader.Size + frameSize - chunkStart);
                ReadExactlyAt(spool, chunk.AsSpan(0, length), chunkStart, spoolPath);
                for (int k = i; k < j; k++)
                {
                    var (offset, page) = pages[k];
                    runs.Add(page, chunk.AsMemory((int)(offset - chunkStart), pageSize));
                }

                // The chunk's buffer is reused for the next one: its run is written first.
                runs.Flush();

                i = j;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
        }

        db.SetLength((long)spooled.DbSize * pageSize);
    }

    /// <summary>
    /// Folds one frame's page number and stored checksum into <paramref name="hash"/>: the second
    /// reading of an index that was not spooled must show the frames the first one verified.
    /// </summary>
    private static ulong FrameHash(ulong hash, ReadOnlySpan<byte> frame)
    {
        ulong h = (hash ^ BinaryPrimitives.ReadUInt64LittleEndian(frame.Slice(16, 8)) ^ ((ulong)BinaryPrimitives.ReadUInt32BigEndian(frame) << 17)) * 0x9E3779B97F4A7C15UL;
        return h ^ (h >> 31);
    }

    /// <summary>
    /// Each page's newest committed version across the verified indexes of a local replica, and
    /// the database size each index's last commit records. <see cref="ApplyAsync"/> leaves the
    /// file as applying the indexes one after the other would (each one cut to its own size):
    /// a version survives only if no later index cut the database below its page, the file is
    /// first cut to the smallest size any index recorded (what such a cut removed reads as
    /// zeros unless a surviving version writes it), and last set to the final size. Only the
    /// segments that hold a surviving version are read again, in parallel (their pages are
    /// disjoint), and each must show the frames its first reading verified.
    /// </summary>
    private sealed class NewestPages
    {
        private readonly List<Spooled> _indexes = new();
        private readonly Dictionary<uint, (int Ordinal, long Offset)> _newest = new();

        /// <summary>Adds the next index of the chain (one with at least one commit) and lets go of its own map.</summary>
        public void Add(Spooled spooled)
        {
            int ordinal = _indexes.Count;
            _indexes.Add(spooled);
            foreach (var (page, offset) in spooled.Newest)
            {
                _newest[page] = (ordinal, offset);
            }

            spooled.Newest.Clear();
            spooled.Newest.TrimExcess();
        }

        /// <summary>Writes the surviving versions; returns how many segments were read again, of how many, and how many pages were written.</summary>
        public async Task<(int Segments, int Of, int Pages)> ApplyAsync(Restorer restorer, FileStream db, int pageSize, int workers, CancellationToken ct)
        {
            if (_indexes.Count == 0)
            {
                return (0, 0, 0);
            }

            // The smallest size recorded from each index on: a version of a page above it was cut.
            var keptUpTo = new uint[_indexes.Count];
            uint min = uint.MaxValue;
            for (int i = _indexes.Count - 1; i >= 0; i--)
            {
                min = Math.Min(min, _indexes[i].DbSize);
                keptUpTo[i] = min;
            }

            var byIndex = new List<(long Offset, uint Page)>[_indexes.Count];
            foreach (var (page, (ordinal, offset)) in _newest)
            {
                if (page <= keptUpTo[ordinal])
                {
                    (byIndex[ordinal] ??= new()).Add((offset, page));
                }
            }

            _newest.Clear();
            var work = new List<(Spooled Index, SegmentCheck Check, List<(long Offset, uint Page)> Pages)>();
            for (int i = 0; i < byIndex.Length; i++)
            {
                if (byIndex[i] is not { } pages)
                {
                    continue;
                }

                pages.Sort();
                var checks = _indexes[i].Checks;
                int c = 0;
                foreach (var entry in pages)
                {
                    long frame = entry.Offset - WalFrameHeader.Size;
                    while (frame >= checks[c].End)
                    {
                        c++;
                    }

                    if (work.Count == 0 || !ReferenceEquals(work[^1].Check, checks[c]))
                    {
                        work.Add((_indexes[i], checks[c], new()));
                    }

                    work[^1].Pages.Add(entry);
                }
            }

            if ((long)keptUpTo[0] * pageSize < db.Length)
            {
                db.SetLength((long)keptUpTo[0] * pageSize);
            }

            // The largest segments first, so that the last one to finish is a short one.
            work.Sort((a, b) => (b.Check.End - b.Check.Start).CompareTo(a.Check.End - a.Check.Start));
            await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = ct },
                (w, token) => new ValueTask(restorer.ApplySegmentAsync(w.Index, w.Check, w.Pages, db.SafeFileHandle, pageSize, token))).ConfigureAwait(false);
            db.SetLength((long)_indexes[^1].DbSize * pageSize);
            return (work.Count, _indexes.Sum(i => i.Checks.Count), work.Sum(w => w.Pages.Count));
        }
    }

    /// <summary>Opens a segment the first reading verified; one gone since was removed during the restore.</summary>
    private async Task<Stream> OpenAgainAsync(SegmentInfo seg, string name, CancellationToken ct)
    {
        try
        {
            return await _client.OpenSegmentAsync(seg.Generation, seg.Index, seg.Offset, ct).ConfigureAwait(false);
        }
        catch (ReplicaException e) when (e.Code == ReplicaErrorCode.SegmentMissing)
        {
            throw new ReplicaException(ReplicaErrorCode.SegmentMissing,
                $"WAL segment '{name}' was removed while it was being restored: it was read and verified moments before (a replicator's retention on this replica removes old snapshots and the segments they need). Nothing was written to the output; run the restore again, or choose a point in time the replica still keeps (Get-ReplicaSnapshot lists them).", name, e);
        }
    }

    /// <summary>
    /// Reads one verified segment of a local replica again, up to the index's last commit, and
    /// writes the frames at <paramref name="pages"/> (sorted WAL offsets of page data), consecutive
    /// pages in one gathered write. If the frames read now are not the ones verified (an object
    /// replaced meanwhile), the restore fails; nothing reaches the output.
    /// </summary>
    private async Task ApplySegmentAsync(Spooled index, SegmentCheck check, List<(long Offset, uint Page)> pages, Microsoft.Win32.SafeHandles.SafeFileHandle target, int pageSize, CancellationToken ct)
    {
        int frameSize = pageSize + WalFrameHeader.Size;
        var seg = check.Segment;
        var name = $"generations/{seg.Generation}/wal/{ReplicaNames.SegmentName(seg.Index, seg.Offset)}";
        long limit = Math.Min(check.End, index.LastCommitOffset);
        ulong expected = limit == check.End ? check.Hash : check.CommitHash;
        bool known = limit == check.End || limit == check.CommitEnd;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent((1 << 20) + 65536 + WalFrameHeader.Size);
        var runs = new PageRuns(target, pageSize);
        ulong hash = 0;
        long end = check.Start;
        int next = 0;
        try
        {
            await using var raw = await OpenAgainAsync(seg, name, ct).ConfigureAwait(false);
            await using var decoded = new VerifiedLz4Stream(raw, name);
            long bufferOffset = seg.Offset; // WAL offset of buffer[0]
            int fill = 0;
            int n;
            while (known && end < limit && (n = await decoded.ReadAsync(buffer.AsMemory(fill), ct).ConfigureAwait(false)) > 0)
            {
                fill += n;
                int pos = (int)(end - bufferOffset);
                if (fill < pos)
                {
                    continue;
                }

                while (fill - pos >= frameSize && bufferOffset + pos < limit)
                {
                    var frame = buffer.AsSpan(pos, frameSize);
                    hash = FrameHash(hash, frame);
                    long data = bufferOffset + pos + WalFrameHeader.Size;
                    if (next < pages.Count && pages[next].Offset == data)
                    {
                        runs.Add(pages[next++].Page, buffer.AsMemory(pos + WalFrameHeader.Size, pageSize));
                    }

                    pos += frameSize;
                }

                // The buffer is reused for the next read: its run is written first.
                runs.Flush();
                end = bufferOffset + pos;
                buffer.AsSpan(pos, fill - pos).CopyTo(buffer);
                bufferOffset += pos;
                fill -= pos;
                ct.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        if (!known || end != limit || hash != expected || next != pages.Count)
        {
            throw new ReplicaException(ReplicaErrorCode.SegmentCorrupt,
                $"WAL segment '{name}' changed while it was being restored: reading it again did not give the frames that were verified. Nothing was written to the output; run the restore again once nothing rewrites the replica.", name);
        }
    }

    /// <summary>
    /// Pages bound for the database file, gathered into runs of consecutive page numbers so each
    /// run is one write. The pages point into a caller's buffer: <see cref="Flush"/> before reusing it.
    /// </summary>
    private sealed class PageRuns(Microsoft.Win32.SafeHandles.SafeFileHandle target, int pageSize)
    {
        // Pages per gathered write: well under the system's limit of buffers per call (IOV_MAX, 1024 on Linux).
        private const int MaxGather = 512;
        private readonly List<ReadOnlyMemory<byte>> _run = new(MaxGather);
        private uint _start;

        public void Add(uint page, ReadOnlyMemory<byte> data)
        {
            if (_run.Count > 0 && (page != _start + (uint)_run.Count || _run.Count == MaxGather))
            {
                Flush();
            }

            if (_run.Count == 0)
            {
                _start = page;
            }

            _run.Add(data);
        }

        public void Flush()
        {
            if (_run.Count > 0)
            {
                RandomAccess.Write(target, _run, (long)(_start - 1) * pageSize);
                _run.Clear();
            }
        }
    }

    private static void ReadExactlyAt(Microsoft.Win32.SafeHandles.SafeFileHandle file, Span<byte> buffer, long offset, string path)
    {
        while (!buffer.IsEmpty)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            if (n <= 0)
            {
                throw new EndOfStreamException($"The spool file '{path}' ended before offset {offset + buffer.Length}.");
            }

            buffer = buffer[n..];
            offset += n;
        }
    }

    private void Report(string phase, long delta)
    {
        if (delta <= 0)
        {
            return;
        }

        long done = Interlocked.Add(ref _bytesRead, delta);
        _progress?.Report(new RestoreProgress(phase, done, _bytesTotal));
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
