using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Native;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Capture;

/// <summary>
/// Follows one live database: holds a long-running read transaction so nobody else can restart
/// the WAL, copies committed, salt- and checksum-verified frames into the shadow WAL, runs the
/// checkpoints, and moves to a new WAL index or a new generation when the WAL restarts or when
/// continuity cannot be proven. All methods are thread-safe; state changes happen under one lock.
/// </summary>
public sealed class DatabaseCapture : IDisposable
{
    private readonly object _gate = new();
    private readonly IEngineLog _log;
    private readonly CaptureOptions _options;
    private SqliteConnection? _conn;
    private bool _inReadTx;
    private FileStream? _lock;
    private SafeFileHandle? _dbHandle;
    private string? _generation;
    private long _index;
    private WalHeader? _shadowHeader;
    private WalChainVerifier? _verifier;
    private int _snapshotLeases;
    private long _lastWalLength = -1;
    private DateTime _lastWalWrite;
    private long _lastCheckpointTicks = long.MinValue / 2;
    private bool _waitingLogged;
    private Position _position = Position.None;
    private long _totalWalBytes;
    private bool _disposed;
    private bool _hardLimitWarned;
    private (string Generation, long Below)? _cleanedBelow;
    private (string Generation, long Index, long Bytes)? _sealedShadowBytes;

    // What the wal-index (-shm) proved about the current chain: the furthest published end seen
    // while the wal-index still described this chain, and whether the frames past the copied
    // end are known to be in the database file already (no frame of the chain can be published
    // any more and a snapshot of the new generation covers them).
    private long _publishedEnd = -1;
    private bool _heldSinceObserved;
    private long _finalObservedEnd = -1;
    private (long End, WalChecksum Checksum)? _deadTail;
    private string? _stalledGeneration;
    private bool _tailCovered;
    private SqliteConnection? _ckptConn;
    private DateTime? _unpublishedSince;
    private bool _shmWarned;
    private SafeFileHandle? _replacedWal;
    private SafeFileHandle? _walHandle;
    private DateTime _replacedAt;

    public DatabaseCapture(string dbPath, CaptureOptions options, IEngineLog log)
    {
        // SQLite follows symbolic links and keeps -wal/-shm beside the final target: so do we.
        DbPath = DatabasePath.Resolve(dbPath);
        WalPath = DbPath + "-wal";
        ShmPath = DbPath + "-shm";
        _options = options;
        _log = log;
        Meta = new MetaDirectory(options.MetaPath ?? MetaDirectory.DefaultFor(DbPath));
    }

    public string DbPath { get; }

    public string WalPath { get; }

    /// <summary>The wal-index file, where SQLite publishes each commit after writing its frames.</summary>
    public string ShmPath { get; }

    public MetaDirectory Meta { get; }

    /// <summary>Raised (outside the lock) after new committed frames reached the shadow WAL or the generation changed.</summary>
    public event Action? Changed;

    /// <summary>The position up to which the shadow WAL holds committed frames.</summary>
    public Position Position
    {
        get
        {
            lock (_gate)
            {
                return _position;
            }
        }
    }

    /// <summary>The database page size, known once initialised.</summary>
    public int PageSize { get; private set; }

    public bool IsInitialized
    {
        get
        {
            lock (_gate)
            {
                return _conn is not null;
            }
        }
    }

    /// <summary>Bytes copied from the WAL into the shadow WAL since start.</summary>
    public long TotalWalBytes => Interlocked.Read(ref _totalWalBytes);

    /// <summary>
    /// True for a short while after a look found frames of the current chain past the published
    /// commit point: SQLite writes a commit's frames before it publishes them in the wal-index,
    /// and the file notification fires on the write, so the monitor should look again soon.
    /// </summary>
    public bool AwaitingPublication
    {
        get
        {
            lock (_gate)
            {
                return _unpublishedSince is { } t && DateTime.UtcNow - t < TimeSpan.FromSeconds(1);
            }
        }
    }

    /// <summary>Bytes of the shadow file of an index as it is final or committed so far.</summary>
    public long ShadowLength(string generation, long index)
    {
        lock (_gate)
        {
            if (generation == _generation && index == _index && _verifier is not null)
            {
                return _verifier.LastCommitOffset;
            }
        }

        var fi = new FileInfo(Meta.ShadowPath(generation, index));
        return fi.Exists ? fi.Length : -1;
    }

    /// <summary>Takes the one-replicator-per-database lock now (it is taken at first sync otherwise).</summary>
    public void AcquireLock()
    {
        lock (_gate)
        {
            _lock ??= Meta.AcquireLock(DbPath);
        }
    }

    /// <summary>
    /// One monitor step: initialise if needed, verify continuity, copy new frames, checkpoint.
    /// Returns true when the position moved.
    /// </summary>
    public bool Sync(CancellationToken ct, bool force = false)
    {
        ct.ThrowIfCancellationRequested();
        bool changed;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var before = _position;
            SyncLocked(allowCheckpoint: true, force);
            changed = _position != before;
        }

        if (changed)
        {
            Changed?.Invoke();
        }

        return changed;
    }

    /// <summary>
    /// Starts a snapshot: copies every committed frame to the shadow first, then blocks this
    /// capture's own checkpoints (so the database file only holds pages the shadow WAL of the
    /// returned index also holds) until the lease is disposed.
    /// </summary>
    public SnapshotLease BeginSnapshot(CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            SyncLocked(allowCheckpoint: false, force: true);
            if (_position.IsNone || _dbHandle is null)
            {
                throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable, $"Database '{DbPath}' is not being captured yet; no snapshot can be taken.", DbPath);
            }

            _snapshotLeases++;
            return new SnapshotLease(this, _position, _dbHandle, PageSize);
        }
    }

    internal void EndSnapshot()
    {
        lock (_gate)
        {
            _snapshotLeases--;
        }
    }

    /// <summary>Gives up the current generation (its shadow can no longer be trusted) and starts a new one.</summary>
    public void StartNewGeneration(string reason)
    {
        lock (_gate)
        {
            if (_conn is not null && _snapshotLeases == 0)
            {
                _log.Warning($"starting a new generation: {reason}");
                StartGeneration(reason);
            }
        }

        Changed?.Invoke();
    }

    /// <summary>
    /// Gives up continuity to bound local disk: restarts the live WAL (its content is in the
    /// database file, which the next snapshot copies) and starts a new generation from the
    /// restarted, near-empty WAL. False, with nothing changed, while a snapshot is being taken
    /// (its position is in the current generation) or before the database is captured.
    /// </summary>
    /// <remarks>
    /// SQLite's TRUNCATE checkpoint, used here before, waits for the write lock in SQLite's busy
    /// handler, which an application committing without pause takes again at once: it gave up
    /// busy, and the new generation began with a copy of the whole WAL, as large as the cap it
    /// was meant to bound (33-59 MB against a 2 MB cap in the test). See <see cref="RestartWalForNewGeneration"/>.
    /// </remarks>
    public bool GiveUpContinuity(string reason)
    {
        lock (_gate)
        {
            if (_conn is null || _verifier is null || _snapshotLeases > 0)
            {
                return false;
            }

            RestartWalForNewGeneration();
            _log.Warning($"starting a new generation: {reason}");
            StartGeneration(reason);
            _lastWalLength = -1;
        }

        Changed?.Invoke();
        return true;
    }

    /// <summary>
    /// Restarts the live WAL and cuts its file, for a new generation that gives up continuity:
    /// the write lock is taken by attempts that never wait (2 ms apart, for up to five busy
    /// timeouts in all), every frame is checkpointed under it, and our next write then restarts
    /// the WAL (SQLite applies journal_size_limit 0 at its commit); the step is tried again while
    /// another checkpoint holds the checkpoint lock or the write did not restart the WAL. Nothing is copied to the old shadow,
    /// which the new generation removes, and no restart needs following: whatever the WAL holds
    /// afterwards is the new generation's first index. When the lock stays taken or a reader
    /// keeps the WAL, the new generation begins with the WAL as it is, which the log says.
    /// </summary>
    private void RestartWalForNewGeneration()
    {
        EndRead();
        try
        {
            // Five busy timeouts: giving up continuity is rare, these attempts never block the
            // application, and a new generation that has to copy the whole WAL costs far more.
            // On an overloaded machine an application committing without pause kept the lock
            // through every attempt of one busy timeout (4 of 10 runs of the test beside two busy
            // loops on 2 cores).
            var budget = _options.BusyTimeout * 5;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            bool TakeWriteLock()
            {
                while (!TryExecNoWait("BEGIN IMMEDIATE"))
                {
                    if (clock.Elapsed >= budget)
                    {
                        return false;
                    }

                    Thread.Sleep(2);
                }

                return true;
            }

            var before = WalHeader.TryParseValid(ReadBytes(WalPath, 0, WalHeader.Size));
            bool restarted = before is null;
            while (!restarted && TakeWriteLock())
            {
                long log;
                try
                {
                    log = RunCheckpoint(CheckpointConnection(), CheckpointMode.Passive);
                }
                finally
                {
                    Exec("ROLLBACK");
                }

                if (log >= 0)
                {
                    // A write restarts the WAL only when its transaction began with every frame
                    // backfilled (it then reads the database file alone): hence a second transaction.
                    ShrinkingWalIf(true, () =>
                    {
                        if (TakeWriteLock())
                        {
                            CommitSequenceRow();
                        }
                    });

                    // SQLite skips the restart, without waiting, while another connection holds a
                    // read slot: an application retrying its write without pause holds one for an
                    // instant at each try. The WAL is read again, and the whole step tried again.
                    var now = WalHeader.TryParseValid(ReadBytes(WalPath, 0, WalHeader.Size));
                    restarted = now is null || now != before;
                }

                if (!restarted)
                {
                    // Or another checkpoint held the checkpoint lock: the application's own, which
                    // once our read is let go can backfill the whole WAL, a long copy. The write
                    // lock is not held meanwhile.
                    Thread.Sleep(2);
                }
            }

            long left = new FileInfo(WalPath) is { Exists: true } wal ? wal.Length : 0;
            _log.Debug(restarted
                ? $"wal restarted for a new generation: the wal file holds {left} bytes"
                : $"the wal could not be restarted within {budget.TotalMilliseconds:0} ms (the write lock, the checkpoint lock or another connection's read was held): the new generation begins with the wal as it is ({left} bytes)");
        }
        finally
        {
            BeginRead();
        }
    }

    /// <summary>Deletes shadow files no replica needs any more (keeps one older index, as Litestream does).</summary>
    /// <remarks>
    /// <paramref name="generation"/> is the one the replicas confirmed <paramref name="lowestReplicaIndex"/>
    /// in: when a new generation started meanwhile, nothing is removed (its indexes are unrelated).
    /// </remarks>
    public void CleanShadows(string generation, long lowestReplicaIndex)
    {
        lock (_gate)
        {
            if (_generation is not null && string.Equals(_generation, generation, StringComparison.Ordinal))
            {
                // Called at every look: the directory is listed only when there can be something
                // new to remove (indexes only grow within a generation, and a removal that fails
                // throws before it is recorded, so it is tried again at the next look).
                long below = Math.Min(lowestReplicaIndex - 1, _index);
                if (_cleanedBelow is { } done && done.Generation == _generation && below <= done.Below)
                {
                    return;
                }

                int n = Meta.RemoveShadowsBelow(_generation, below);
                _cleanedBelow = (_generation, below);
                if (n > 0)
                {
                    _sealedShadowBytes = null;
                    _log.Debug($"removed {n} shadow wal file(s) below index {lowestReplicaIndex - 1:x8}");
                }
            }
        }
    }

    /// <summary>
    /// Bytes the next look would copy into the shadow: committed frames the wal-index has
    /// published past what the shadow holds (0 when unknown: the WAL restarted, or the wal-index
    /// cannot be read). Lets the shadow's cap be checked before a copy would pass it.
    /// </summary>
    public long PendingCopyBytes()
    {
        lock (_gate)
        {
            if (_verifier is null || _shadowHeader is null || ReadIndex() is not { } shm || !shm.Describes(_shadowHeader))
            {
                return 0;
            }

            return Math.Max(0, shm.PublishedEnd(_shadowHeader) - _verifier.LastCommitOffset);
        }
    }

    /// <summary>Total bytes in the shadow WAL of the current generation.</summary>
    public long ShadowBytes()
    {
        lock (_gate)
        {
            if (_generation is null)
            {
                return 0;
            }

            // The files below the current index are finished: nothing is written to them once the
            // index has moved on, and only a removal changes their sum. That sum is kept until the
            // index moves or files are removed, and only the current file is looked at each time
            // (status asks at every beat, and listing the directory was most of an idle beat's work).
            if (_sealedShadowBytes is not { } sealedBytes || sealedBytes.Generation != _generation || sealedBytes.Index != _index)
            {
                sealedBytes = (_generation, _index, Meta.ShadowBytes(_generation, _index));
                _sealedShadowBytes = sealedBytes;
            }

            var current = new FileInfo(Meta.ShadowPath(_generation, _index));
            return sealedBytes.Bytes + (current.Exists ? current.Length : 0);
        }
    }

    /// <summary>Runs a checkpoint now (used by tests and by shutdown-free maintenance).</summary>
    public void Checkpoint(CheckpointMode mode, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        bool changed;
        lock (_gate)
        {
            var before = _position;
            SyncLocked(allowCheckpoint: false);
            if (_verifier is not null && _snapshotLeases == 0)
            {
                CheckpointLocked(mode);
            }

            changed = before != _position;
        }

        if (changed)
        {
            Changed?.Invoke();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            CloseDatabase();
            _replacedWal?.Dispose();
            _replacedWal = null;
            _lock?.Dispose();
            _lock = null;
        }
    }

    private void SyncLocked(bool allowCheckpoint, bool force = false)
    {
        if (_conn is null && !Initialize())
        {
            return;
        }

        if (_dbHandle is not null && Libc.IsUnlinked(_dbHandle))
        {
            _log.Warning($"database file '{DbPath}' was replaced by another file; starting over with a new generation");
            // The old database's WAL may still be beside the new file for a moment (a tool that
            // renames the new file in first and deletes -wal/-shm after): SQLite would read it as
            // part of the new database. Keep a handle on it to see when it is gone.
            _replacedWal?.Dispose();
            _replacedWal = _walHandle;
            _walHandle = null;
            _replacedAt = DateTime.UtcNow;
            CloseDatabase();
            _generation = null;
            Meta.ClearGeneration();
            if (!Initialize())
            {
                return;
            }
        }

        // Remember what the WAL looked like before reading it: anything written after this
        // stat changes size or mtime and is picked up on the next look.
        var wal = new FileInfo(WalPath);
        long walLength = wal.Exists ? wal.Length : 0;
        var walWrite = wal.Exists ? wal.LastWriteTimeUtc : default;
        if (!force && _verifier is not null && walLength == _lastWalLength && walWrite == _lastWalWrite && !MayHaveNewCommits())
        {
            // Nothing was written since the last look: the idle path costs one stat.
            if (allowCheckpoint && _snapshotLeases == 0)
            {
                CheckpointIfNeeded(walLength);
            }

            return;
        }

        if (walLength < WalHeader.Size)
        {
            // Truncated (a TRUNCATE checkpoint): a write gives the WAL its new header. If that
            // happened while our read was held, the old incarnation's end is still proven even
            // though the write needs the read to go for a moment (the header is checked under
            // the write lock, and a second restart would show as a salt that moved by two).
            bool proven = _heldSinceObserved;
            GiveEmptiedWalAHeader();
            _heldSinceObserved |= proven;
        }

        var reason = Verify(out bool restarted);
        if (reason is not null)
        {
            StartGeneration(reason);
        }
        else if (restarted)
        {
            HandleRestart(knownOldFrames: -1);
        }
        else
        {
            CopyToShadow();
        }

        _lastWalLength = walLength;
        _lastWalWrite = walWrite;
        if (allowCheckpoint && _snapshotLeases == 0)
        {
            CheckpointIfNeeded(new FileInfo(WalPath) is { Exists: true } w ? w.Length : 0);
        }
    }

    private bool Initialize()
    {
        if (!File.Exists(DbPath))
        {
            if (!_waitingLogged)
            {
                _log.Verbose($"waiting for database '{DbPath}' to be created");
                _waitingLogged = true;
            }

            return false;
        }

        if (_replacedWal is not null)
        {
            if (!Libc.IsUnlinked(_replacedWal) && DateTime.UtcNow - _replacedAt < TimeSpan.FromSeconds(5))
            {
                _log.Verbose($"waiting for the replaced database's old WAL '{WalPath}' to be removed before opening the new file");
                return false;
            }

            if (!Libc.IsUnlinked(_replacedWal))
            {
                _log.Warning($"the old WAL '{WalPath}' is still beside the replaced database after 5 s; SQLite reads it as part of the new database, and so does replication");
            }

            _replacedWal.Dispose();
            _replacedWal = null;
        }

        try
        {
            _lock ??= Meta.AcquireLock(DbPath);
            OpenConnection();
            _walHandle = OpenWal();
            Meta.Create();
            Meta.RemoveTempFiles();
            _dbHandle = File.OpenHandle(DbPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            _generation = Meta.ReadGeneration();
            if (_generation is not null && !ResumeGeneration(_generation))
            {
                _generation = null;
                Meta.ClearGeneration();
            }

            Meta.RemoveOtherGenerations(_generation);
            _log.Verbose($"initialized database '{DbPath}' (page size {PageSize}, meta '{Meta.Root}')");
            return true;
        }
        catch (SqliteException e)
        {
            CloseDatabase();
            throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
                $"Cannot open database '{DbPath}' for replication: {e.Message}. Check that it is a SQLite database and that no process holds it in exclusive locking mode.", DbPath, e);
        }
        catch
        {
            CloseDatabase();
            throw;
        }
    }

    private void OpenConnection()
    {
        var csb = new SqliteConnectionStringBuilder
        {
            DataSource = DbPath,
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = Math.Max(1, (int)_options.BusyTimeout.TotalSeconds),
        };
        _conn = new SqliteConnection(csb.ToString());
        _conn.Open();
        SqliteNative.SetPersistWal(_conn);
        Exec($"PRAGMA busy_timeout = {(int)_options.BusyTimeout.TotalMilliseconds}");
        var mode = Scalar("PRAGMA journal_mode")?.ToString();
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            _log.Verbose($"database '{DbPath}' is in journal mode '{mode}'; switching it to WAL");
            var now = Scalar("PRAGMA journal_mode = wal")?.ToString();
            if (!string.Equals(now, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
                    $"Database '{DbPath}' could not be switched to WAL mode (it stayed '{now}'). Replication needs WAL mode; switch it with 'PRAGMA journal_mode=wal' while no other process has it open.", DbPath);
            }
        }

        Exec("PRAGMA wal_autocheckpoint = 0");
        Exec("CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)");
        Exec("CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER)");
        PageSize = Convert.ToInt32(Scalar("PRAGMA page_size"), CultureInfo.InvariantCulture);
        BeginRead();
    }

    /// <summary>Checks that the recorded generation can go on: its newest shadow matches the live WAL.</summary>
    private bool ResumeGeneration(string generation)
    {
        var indexes = Meta.ShadowIndexes(generation);
        if (indexes.Count == 0)
        {
            _log.Warning("init: no shadow wal for the recorded generation; starting a new generation");
            return false;
        }

        long index = indexes[^1];
        var shadowPath = Meta.ShadowPath(generation, index);
        var real = ReadBytes(WalPath, 0, WalHeader.Size);
        var shadow = ReadBytes(shadowPath, 0, WalHeader.Size);
        if (real.Length < WalHeader.Size || shadow.Length < WalHeader.Size || !real.AsSpan().SequenceEqual(shadow))
        {
            _log.Warning($"init: cannot determine last wal position, clearing generation (the WAL was restarted, truncated or deleted while nobody replicated it)");
            return false;
        }

        var header = WalHeader.TryParseValid(shadow);
        if (header is null || header.PageSize != PageSize)
        {
            _log.Warning("init: shadow wal header is not valid; starting a new generation");
            return false;
        }

        var verifier = RecoverShadow(shadowPath, header);
        if (ReadShm() is { } shm && shm.Describes(header) && shm.PublishedEnd(header) < verifier.LastCommitOffset)
        {
            _log.Warning($"init: the shadow wal holds {(verifier.LastCommitOffset - shm.PublishedEnd(header)) / header.FrameSize} frame(s) past the database's published commit point (a writer died mid-commit?); starting a new generation");
            return false;
        }

        ResetChainKnowledge();
        _generation = generation;
        _index = index;
        _shadowHeader = header;
        _verifier = verifier;
        _position = new Position(generation, index, verifier.LastCommitOffset);
        _log.Verbose($"resuming generation {generation} at {_position}");
        return true;
    }

    /// <summary>Re-verifies a shadow file left by an earlier run and cuts it back to its last commit.</summary>
    private WalChainVerifier RecoverShadow(string shadowPath, WalHeader header)
    {
        var verifier = new WalChainVerifier(header);
        using var fs = new FileStream(shadowPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        var frame = new byte[header.FrameSize];
        fs.Position = WalHeader.Size;
        while (fs.ReadAtLeast(frame, frame.Length, throwOnEndOfStream: false) == frame.Length)
        {
            if (verifier.Accept(frame) is not null)
            {
                break;
            }
        }

        if (fs.Length != verifier.LastCommitOffset)
        {
            _log.Warning($"shadow wal '{shadowPath}' had {fs.Length - verifier.LastCommitOffset} bytes past its last verified commit; cut back");
            fs.SetLength(verifier.LastCommitOffset);
            fs.Flush(flushToDisk: true);
        }

        verifier.RewindToLastCommit();
        return verifier;
    }

    /// <summary>Litestream's continuity table. Returns the reason for a new generation, or null.</summary>
    private string? Verify(out bool restarted)
    {
        restarted = false;
        if (_generation is null || _verifier is null || _shadowHeader is null)
        {
            return "no generation exists";
        }

        if (_index >= ReplicaNames.MaxIndex)
        {
            return "max index exceeded";
        }

        var shadowPath = Meta.ShadowPath(_generation, _index);
        var shadowInfo = new FileInfo(shadowPath);
        if (!shadowInfo.Exists)
        {
            return "no shadow wal";
        }

        long shadowSize = _verifier.LastCommitOffset;
        if (shadowSize < WalHeader.Size)
        {
            return "short shadow wal";
        }

        var wal = new FileInfo(WalPath);
        long walSize = wal.Exists ? _shadowHeader.AlignDown(wal.Length) : 0;
        if (walSize < shadowSize)
        {
            return "wal truncated by another process";
        }

        var realHeader = ReadBytes(WalPath, 0, WalHeader.Size);
        var shadowHeader = ReadBytes(shadowPath, 0, WalHeader.Size);
        bool sameHeader = realHeader.AsSpan().SequenceEqual(shadowHeader);
        if (sameHeader && shadowSize > WalHeader.Size)
        {
            long lastFrame = shadowSize - _shadowHeader.FrameSize;
            var a = ReadBytes(WalPath, lastFrame, _shadowHeader.FrameSize);
            var b = ReadBytes(shadowPath, lastFrame, _shadowHeader.FrameSize);
            if (!a.AsSpan().SequenceEqual(b))
            {
                // SQLite writes a new incarnation's header before its first frame: a header that
                // changed by the time the frame was read is a restart caught in the middle (it
                // happens while we hold a read that does not pin the WAL), not an overwrite.
                if (!ReadBytes(WalPath, 0, WalHeader.Size).AsSpan().SequenceEqual(shadowHeader))
                {
                    restarted = true;
                    return null;
                }

                return "wal overwritten by another process";
            }
        }

        if (sameHeader && ReadShm() is { } shm && shm.Describes(_shadowHeader) && shm.PublishedEnd(_shadowHeader) < shadowSize)
        {
            // The published commit point never moves back within one WAL incarnation: the shadow
            // holds frames the database never committed (a writer died between writing its
            // frames and publishing them, and they were copied by a run that trusted the file).
            return $"the shadow wal holds {(shadowSize - shm.PublishedEnd(_shadowHeader)) / _shadowHeader.FrameSize} frame(s) past the database's published commit point";
        }

        restarted = !sameHeader;
        return null;
    }

    /// <summary>
    /// Guards the idle path against coarse file timestamps: after a restart SQLite rewrites the
    /// WAL in place, so a commit may change neither its size nor (within one clock tick) its
    /// mtime. A frame with the current salts just past the copied position means "look again".
    /// </summary>
    private bool NextFrameHasCurrentSalts()
    {
        var next = ReadBytes(WalPath, _verifier!.LastCommitOffset, WalFrameHeader.Size);
        if (next.Length < WalFrameHeader.Size)
        {
            return false;
        }

        var fh = WalFrameHeader.Parse(next);
        return fh.Salt1 == _verifier.Header.Salt1 && fh.Salt2 == _verifier.Header.Salt2;
    }

    private void StartGeneration(string reason)
    {
        var header = ReadValidWalHeader();
        var generation = ReplicaNames.NewGeneration();
        IO.PrivateFiles.CreateDirectory(Meta.ShadowDir(generation));

        // The old generation's shadow goes first: the new one starts with a copy of the whole
        // live WAL, which can be large (a WAL that could not restart: the application held the
        // write lock, or a reader the WAL), and both on disk at once doubled the local disk the
        // cap promises. A crash before the generation file below names the new one leaves a
        // named generation without a shadow, which the next start replaces with a new
        // generation, as it would this one.
        Meta.RemoveOtherGenerations(generation);
        var shadowPath = Meta.ShadowPath(generation, 0);
        CreateShadow(shadowPath, header);
        var verifier = new WalChainVerifier(header);
        ResetChainKnowledge();
        if (ReadShm() is { } shm && !shm.Describes(header))
        {
            // The wal-index already describes the next incarnation (a restart is under way, which
            // needs every published frame in the database file): the frames of this file are in
            // the database file the new generation's snapshot copies, or were never committed.
            _tailCovered = true;
        }

        CopyFrames(shadowPath, verifier, 0, CopyLimit(verifier));
        Diagnostics.CrashPoints.Hit(Diagnostics.CrashPoints.GenerationChange);
        Meta.WriteGeneration(generation);
        _hardLimitWarned = false;
        _generation = generation;
        _index = 0;
        _shadowHeader = header;
        _verifier = verifier;
        _position = new Position(generation, 0, verifier.LastCommitOffset);
        _log.Verbose($"new generation {generation} started (reason: {reason}) at {_position}");
    }

    /// <summary>
    /// The live WAL has a new header. Moves to the next index only when it can prove that every
    /// committed frame of the old incarnation is in the shadow, else starts a new generation.
    /// The proof is strongest when our read transaction was held without a break since the
    /// wal-index was last seen to describe the old incarnation: SQLite restarts a WAL only when
    /// every frame is checkpointed and no reader holds a WAL snapshot, and a checkpoint cannot
    /// pass a reader; so a restart while we held the read means that nothing was appended after
    /// that look, and the old incarnation ended exactly where the wal-index then said. Without
    /// that proof (the restart happened while we had let go, in our own checkpoint), the old
    /// tail is copied as far as the wal-index was seen to publish it, and the new incarnation
    /// must neither leave commit frames nobody saw published nor reach the point where the old
    /// frames stop verifying (they may have overwritten frames we never saw).
    /// </summary>
    private void HandleRestart(long knownOldFrames)
    {
        var oldHeader = _shadowHeader!;
        var oldVerifier = _verifier!;
        bool held = _heldSinceObserved && _publishedEnd >= WalHeader.Size;
        long provenEnd = _publishedEnd;
        CopyFrames(Meta.ShadowPath(_generation!, _index), oldVerifier, _index, CopyLimit(oldVerifier));
        var rest = new WalChainVerifier(oldHeader, oldVerifier.Checksum, oldVerifier.Offset, oldVerifier.LastCommitDbSize);
        long validEnd = ScanValidEnd(rest);
        long copiedFrames = (oldVerifier.LastCommitOffset - WalHeader.Size) / oldHeader.FrameSize;
        if (oldVerifier.LastCommitOffset > _options.HardIndexBytes)
        {
            StartGeneration($"wal index {_index:x8} ended past {_options.HardIndexBytes} bytes, which stock Litestream cannot restore");
            return;
        }

        if (held && oldVerifier.LastCommitOffset < provenEnd)
        {
            StartGeneration($"the wal restarted over {(provenEnd - oldVerifier.LastCommitOffset) / oldHeader.FrameSize} committed frame(s) of index {_index:x8} before they were copied");
            return;
        }

        if (knownOldFrames >= 0 && copiedFrames < knownOldFrames)
        {
            StartGeneration($"wal restarted with {knownOldFrames - copiedFrames} committed frame(s) not copied");
            return;
        }

        bool deadTail = _deadTail is { } dead && dead.End == rest.Offset && dead.Checksum == rest.Checksum && _finalObservedEnd == oldVerifier.LastCommitOffset;
        if (deadTail && rest.LastCommitOffset > oldVerifier.LastCommitOffset)
        {
            _log.Debug($"wal restart left {(rest.Offset - oldVerifier.LastCommitOffset) / oldHeader.FrameSize} frame(s) of a writer that died before publishing them; they are not part of the database");
        }

        if (!held && !deadTail && rest.LastCommitOffset > oldVerifier.LastCommitOffset && !_tailCovered)
        {
            // Commit frames past what the wal-index was seen to publish: either published
            // and checkpointed between two looks, or written by a writer that died before
            // publishing them. They cannot be told apart any more, so none is trusted.
            StartGeneration($"the wal restarted before {(rest.LastCommitOffset - oldVerifier.LastCommitOffset) / oldHeader.FrameSize} frame(s) of index {_index:x8} could be proven committed");
            return;
        }

        if (new FileInfo(WalPath) is { Exists: true, Length: < WalHeader.Size })
        {
            GiveEmptiedWalAHeader();
        }

        var raw = ReadBytes(WalPath, 0, WalHeader.Size);
        var newHeader = WalHeader.TryParseValid(raw);
        if (newHeader is null)
        {
            StartGeneration("new wal header is not valid");
            return;
        }

        // SQLite adds one to salt-1 at every restart (the checkpoint sequence is kept per
        // connection, so it proves nothing); any other step means a restart we never saw.
        if (newHeader.Salt1 != unchecked(oldHeader.Salt1 + 1) || newHeader.PageSize != oldHeader.PageSize)
        {
            StartGeneration("wal restarted more than once or recreated");
            return;
        }

        if (!held && !_tailCovered)
        {
            // A torn frame being written where the old chain stopped is indistinguishable from
            // the old chain's end, so frames reaching it count as an overwrite, unless the old
            // chain's end was seen under the write lock just before our own write restarted it.
            bool finalKnown = _finalObservedEnd >= WalHeader.Size && _finalObservedEnd == oldVerifier.LastCommitOffset && (validEnd == _finalObservedEnd || deadTail);
            var probe = new WalChainVerifier(newHeader);
            long newEnd = ScanValidEnd(probe);
            if (finalKnown ? newEnd > validEnd : newEnd >= validEnd)
            {
                StartGeneration("wal restarted over frames not yet copied");
                return;
            }
        }

        Diagnostics.CrashPoints.Hit(Diagnostics.CrashPoints.WalIndexChange);
        _index++;
        var shadowPath = Meta.ShadowPath(_generation!, _index);
        CreateShadow(shadowPath, newHeader);
        var verifier = new WalChainVerifier(newHeader);
        ResetChainKnowledge();
        _shadowHeader = newHeader;
        _verifier = verifier;
        CopyFrames(shadowPath, verifier, _index, CopyLimit(verifier));
        _position = new Position(_generation!, _index, verifier.LastCommitOffset);
        _log.Verbose($"wal restarted: new index {_index:x8} in generation {_generation}");
        if (_index >= ReplicaNames.MaxIndex)
        {
            StartGeneration("max index exceeded");
        }
    }

    private void CopyToShadow()
    {
        long limit = CopyLimit(_verifier!, out bool published);
        CopyFrames(Meta.ShadowPath(_generation!, _index), _verifier!, _index, limit);
        if (published && _verifier!.LastCommitOffset < limit &&
            ReadBytes(WalPath, 0, WalHeader.Size).AsSpan().SequenceEqual(ReadBytes(Meta.ShadowPath(_generation!, _index), 0, WalHeader.Size)))
        {
            // Frames SQLite published as committed do not continue the shadow's chain although
            // the WAL did not restart: going on would leave the replica behind while it looks
            // caught up. A new generation (a fresh snapshot) is tried once; if even its chain
            // stops there, the WAL file itself is damaged and that is an error, not a state.
            long stalledAt = _verifier.LastCommitOffset;
            if (_generation != _stalledGeneration)
            {
                StartGeneration($"{(limit - stalledAt) / _verifier.Header.FrameSize} committed frame(s) of the live WAL do not continue the shadow wal's checksum chain");
                _stalledGeneration = _generation;
                return;
            }

            // The WAL file itself is damaged. SQLite serves those pages all the same, so the
            // replica must hold them too: a TRUNCATE checkpoint moves them into the database
            // file, and a new generation's snapshot copies that.
            var before = _shadowHeader;
            EndRead();
            try
            {
                RunCheckpoint(_conn!, CheckpointMode.Truncate);
                WriteSequenceRow();
            }
            finally
            {
                BeginRead();
            }

            if (WalHeader.TryParseValid(ReadBytes(WalPath, 0, WalHeader.Size)) == before)
            {
                throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
                    $"Committed frames of '{WalPath}' from offset {stalledAt} fail their checksum chain: the WAL file looks damaged, and the checkpoint that would move them into the database file could not finish (a long-running reader?). Replication cannot copy past them and retries; check the disk and end long read transactions of the application.", WalPath);
            }

            _stalledGeneration = null;
            StartGeneration($"the WAL was checkpointed past committed frames that failed their checksum chain at offset {stalledAt}");
            return;
        }

        _unpublishedSince = NextFrameHasCurrentSalts() ? _unpublishedSince ?? DateTime.UtcNow : null;
        if (_verifier!.LastCommitOffset > _options.HardIndexBytes && !_hardLimitWarned)
        {
            // No checkpoint could restart the WAL in time (a long reader, most likely). Our own
            // restore reads such offsets; stock Litestream v0.3.13 ignores them. When the WAL
            // can restart again, the index is closed with a new generation instead (see
            // HandleRestart), so stock Litestream can restore the newest state again.
            _hardLimitWarned = true;
            _log.Warning($"wal index {_index:x8} of '{DbPath}' passed {_options.HardIndexBytes} bytes because no checkpoint could restart the WAL (a long-running reader?). Stock Litestream v0.3.13 cannot restore past this point until the next generation.");
        }

        _position = new Position(_generation!, _index, _verifier.LastCommitOffset);
    }

    /// <summary>
    /// Appends every frame of the live WAL that continues the verifier's chain and ends at or
    /// before <paramref name="limit"/> (the published commit point), then cuts the shadow back
    /// to the last commit frame and fsyncs it.
    /// </summary>
    private void CopyFrames(string shadowPath, WalChainVerifier verifier, long index, long limit)
    {
        long start = verifier.LastCommitOffset;
        int frameSize = verifier.Header.FrameSize;
        using var wal = OpenWal();
        if (wal is null)
        {
            return;
        }

        long walLength = Math.Min(RandomAccess.GetLength(wal), limit);
        var mark = verifier.Save();
        if (walLength < start + frameSize)
        {
            verifier.RewindToLastCommit();
            return;
        }

        // Pooled and sized to what there is to copy: a fresh multi-MB array at every look was most
        // of the replicator's allocation (and of its CPU, zeroing it) under steady writes.
        int batch = verifier.Header.FrameBatchBytes(walLength - start) / frameSize;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(batch * frameSize);
        long pos = start;
        FileStream? shadow = null;
        try
        {
            while (pos + frameSize <= walLength)
            {
                int want = (int)Math.Min(batch, (walLength - pos) / frameSize) * frameSize;
                int got = RandomAccess.Read(wal, buffer.AsSpan(0, want), pos);
                int accepted = 0;
                bool stop = got < want;
                for (int off = 0; off + frameSize <= got; off += frameSize)
                {
                    if (verifier.Accept(buffer.AsSpan(off, frameSize)) is not null)
                    {
                        stop = true;
                        break;
                    }

                    accepted += frameSize;
                }

                if (accepted > 0)
                {
                    shadow ??= OpenShadowForAppend(shadowPath, start);
                    shadow.Write(buffer, 0, accepted);
                    pos += accepted;
                }

                if (stop)
                {
                    break;
                }
            }

            verifier.RewindToLastCommit();
            if (shadow is not null)
            {
                shadow.SetLength(verifier.LastCommitOffset);
                shadow.Flush(flushToDisk: true);
                long added = verifier.LastCommitOffset - start;
                Interlocked.Add(ref _totalWalBytes, added);
                if (added > 0)
                {
                    _log.Debug($"copied {added} bytes of wal to shadow index {ReplicaNames.Hex8(index)} (now {verifier.LastCommitOffset})");
                }
            }
        }
        catch (IOException e)
        {
            // Nothing of this copy counts (a full disk, most likely): the chain goes back to
            // where it was and the shadow is cut back to it, so the next look retries the same
            // frames instead of finding a shadow that disagrees with its own chain.
            verifier.Reset(mark);
            try
            {
                shadow?.Dispose();
            }
            catch (IOException)
            {
                // Flushing the buffered tail fails again; the length is set below.
            }

            shadow = null;
            try
            {
                using var h = File.OpenHandle(shadowPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                if (RandomAccess.GetLength(h) > start)
                {
                    RandomAccess.SetLength(h, start);
                }
            }
            catch (IOException)
            {
            }

            throw new ReplicaException(ReplicaErrorCode.MetaNotWritable,
                $"Cannot write the shadow WAL '{shadowPath}': {e.Message}. Free space in the meta directory or move it with meta-path.", shadowPath, e);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            shadow?.Dispose();
        }
    }

    /// <summary>Scans the live WAL for the end of the frames that continue a chain (no copying).</summary>
    private long ScanValidEnd(WalChainVerifier verifier)
    {
        using var wal = OpenWal();
        if (wal is null)
        {
            return verifier.Offset;
        }

        long walLength = RandomAccess.GetLength(wal);
        var frame = new byte[verifier.Header.FrameSize];
        long pos = verifier.Offset;
        while (pos + frame.Length <= walLength && RandomAccess.Read(wal, frame, pos) == frame.Length && verifier.Accept(frame) is null)
        {
            pos += frame.Length;
        }

        return verifier.Offset;
    }

    /// <summary>The wal-index header through our connection's mapping, or null (no connection, or no consistent header).</summary>
    private WalIndexHeader? ReadIndex() => _conn is null ? null : WalIndexHeader.Read(_conn);

    /// <summary><see cref="ReadIndex"/>, warning once when no consistent header can be read.</summary>
    private WalIndexHeader? ReadShm()
    {
        var shm = ReadIndex();
        if (shm is null && !_shmWarned)
        {
            _shmWarned = true;
            _log.Warning($"cannot read a consistent wal-index header from '{ShmPath}'; frames are trusted by their checksum chain alone until it can be read again");
        }

        return shm;
    }

    /// <summary>
    /// Where copying the chain of <paramref name="verifier"/> must stop: the wal-index's published
    /// commit point while it describes this chain; once it describes a newer incarnation, the
    /// furthest point it was seen to publish (nothing more of this chain can be published).
    /// </summary>
    private long CopyLimit(WalChainVerifier verifier) => CopyLimit(verifier, out _);

    /// <param name="published">True when the limit is the wal-index's published end for this chain right now.</param>
    private long CopyLimit(WalChainVerifier verifier, out bool published)
    {
        published = false;
        var shm = ReadShm();
        if (shm is null)
        {
            return long.MaxValue;
        }

        if (shm.Describes(verifier.Header))
        {
            published = true;
            long end = shm.PublishedEnd(verifier.Header);
            _publishedEnd = Math.Max(_publishedEnd, end);
            _heldSinceObserved |= _inReadTx;
            return end;
        }

        return _tailCovered ? verifier.LastCommitOffset : Math.Max(_publishedEnd, verifier.LastCommitOffset);
    }

    /// <summary>Remembers how far the wal-index has published the current chain (a proof kept for a later restart).</summary>
    private void ObservePublished()
    {
        if (_verifier is { } v && ReadIndex() is { } shm && shm.Describes(v.Header))
        {
            _publishedEnd = Math.Max(_publishedEnd, shm.PublishedEnd(v.Header));
            _heldSinceObserved |= _inReadTx;
        }
    }

    private void ResetChainKnowledge()
    {
        _publishedEnd = -1;
        _heldSinceObserved = false;
        _finalObservedEnd = -1;
        _deadTail = null;
        _tailCovered = false;
        _unpublishedSince = null;
    }

    /// <summary>The idle path's question: could the WAL hold a commit not copied yet?</summary>
    private bool MayHaveNewCommits()
    {
        var shm = ReadIndex();
        if (shm is null)
        {
            return NextFrameHasCurrentSalts();
        }

        var v = _verifier!;
        return !shm.Describes(v.Header) || shm.PublishedEnd(v.Header) != v.LastCommitOffset;
    }

    private static FileStream OpenShadowForAppend(string path, long at)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        fs.SetLength(at);
        fs.Position = at;
        return fs;
    }

    private void CreateShadow(string path, WalHeader header)
    {
        var raw = ReadBytes(WalPath, 0, WalHeader.Size);
        try
        {
            IO.PrivateFiles.CreateDirectory(Path.GetDirectoryName(path)!);
            using var fs = IO.PrivateFiles.Open(path, FileMode.Create, FileAccess.Write, FileShare.Read);
            fs.Write(raw);
            fs.Flush(flushToDisk: true);
        }
        catch (IOException e)
        {
            throw new ReplicaException(ReplicaErrorCode.MetaNotWritable,
                $"Cannot write the shadow WAL '{path}': {e.Message}. Free space in the meta directory or move it with meta-path.", path, e);
        }

        if (WalHeader.Parse(raw) != header)
        {
            throw new ReplicaException(ReplicaErrorCode.Internal, "The WAL header changed while a shadow file was created; retrying on the next sync.", WalPath);
        }
    }

    private WalHeader ReadValidWalHeader()
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var raw = ReadBytes(WalPath, 0, WalHeader.Size);
            var header = WalHeader.TryParseValid(raw);
            if (header is not null && header.PageSize == PageSize)
            {
                return header;
            }

            BumpSequence();
        }

        throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
            $"The WAL of '{DbPath}' has no valid header even after a write. Check that the database is in WAL mode and not opened with another VFS.", WalPath);
    }

    private void CheckpointIfNeeded(long walFileLength)
    {
        if (_verifier is null || _shadowHeader is null)
        {
            return;
        }

        long Pages(long n) => WalHeader.Size + n * _shadowHeader.FrameSize;
        long shadowSize = _verifier.LastCommitOffset;
        CheckpointMode? mode = null;
        if (_shadowHeader.AlignDown(walFileLength) >= Pages(_options.TruncatePageCount))
        {
            mode = CheckpointMode.Truncate;
        }
        else if (shadowSize >= _options.MaxIndexBytes)
        {
            mode = CheckpointMode.Restart;
        }
        else if (Environment.TickCount64 - _lastCheckpointTicks < (long)_options.MinCheckpointSpacing.TotalMilliseconds)
        {
            return;
        }
        else if (_options.MaxCheckpointPageCount > 0 && shadowSize >= Pages(_options.MaxCheckpointPageCount))
        {
            mode = CheckpointMode.Restart;
        }
        else if (shadowSize >= Pages(_options.MinCheckpointPageCount))
        {
            mode = CheckpointMode.Passive;
        }
        else if (_options.CheckpointInterval > TimeSpan.Zero && shadowSize > Pages(1) &&
                 DateTime.UtcNow - File.GetLastWriteTimeUtc(DbPath) > _options.CheckpointInterval)
        {
            mode = CheckpointMode.Passive;
        }

        if (mode is { } m)
        {
            // Only a checkpoint that restarted the WAL (a new index) starts the spacing: one the
            // application's locks kept from restarting is tried again at the next look, so a
            // burst does not grow the WAL for seconds.
            long before = _index;
            CheckpointLocked(m);
            if (_index != before)
            {
                _lastCheckpointTicks = Environment.TickCount64;
            }
        }
    }

    /// <summary>
    /// The managed checkpoint, built so the WAL restarts only at a moment when the old
    /// incarnation's end is known (Litestream lets go of its read lock for the whole checkpoint,
    /// and an application that checkpoints by itself can restart the WAL in that window over
    /// commits nobody copied). Phase 1: move our read snapshot to the newest commit, copy it, and
    /// let a second connection checkpoint up to it while our read still keeps the WAL from
    /// restarting (the application is not blocked). Phase 2: take the write lock for a moment so
    /// nobody appends, copy the few frames committed since, checkpoint them too, and restart the
    /// WAL with our own write. RESTART and TRUNCATE then run SQLite's own RESTART only if the WAL
    /// still did not restart (the application held the write lock, or its readers held the WAL).
    /// TRUNCATE shrinks the WAL file through our own restarting write (SQLite's journal_size_limit,
    /// applied at the commit of the write that restarted the WAL), never with SQLite's TRUNCATE
    /// mode: that one empties the WAL after letting our read go, and reports a WAL of 0 frames, so
    /// a commit that landed while it waited for the write lock would be gone unseen.
    /// </summary>
    private void CheckpointLocked(CheckpointMode mode)
    {
        EndRead();
        BeginRead();
        if (FollowRestart(-1))
        {
            return;
        }

        RunCheckpoint(CheckpointConnection(), CheckpointMode.Passive);
        bool restartedByUs = false;
        if (TryTakeWriteLock(out bool followedRestart))
        {
            try
            {
                _inReadTx = true;
                CopyToShadow();
                RunCheckpoint(CheckpointConnection(), CheckpointMode.Passive);

                // Nobody can append while we hold the write lock: if everything published is
                // copied, the WAL restart our next write causes ends the index exactly here.
                _finalObservedEnd = _publishedEnd == _verifier!.LastCommitOffset ? _publishedEnd : -1;

                // With no writer active, valid frames past the published end can only be a dead
                // writer's (or a rolled-back spill): remember exactly which, by where their chain
                // ends and its checksum there, so a restart that leaves them behind is no mystery.
                var past = new WalChainVerifier(_verifier.Header, _verifier.Checksum, _verifier.Offset, _verifier.LastCommitDbSize);
                ScanValidEnd(past);
                _deadTail = _finalObservedEnd >= 0 && past.Offset > _verifier.LastCommitOffset ? (past.Offset, past.Checksum) : null;
                Diagnostics.CrashPoints.Hit(Diagnostics.CrashPoints.Checkpoint);
            }
            finally
            {
                _inReadTx = false;
                _heldSinceObserved = false;
                Exec("ROLLBACK");
            }

            // Our write restarts the WAL. It must not wait for the write lock: the application may
            // take it first (then its own write restarts the WAL), and waiting without our read
            // would let it restart the WAL a second time unseen.
            ShrinkingWalIf(mode == CheckpointMode.Truncate, () =>
            {
                switch (TryLockUnmoved())
                {
                    case LockAttempt.Taken:
                        CommitSequenceRow();
                        break;
                    case LockAttempt.Busy:
                        _log.Debug("sequence write after a checkpoint skipped: the application took the write lock first");
                        break;
                    default:
                        // That restart is followed below; ours would be a second one.
                        _log.Debug("sequence write after a checkpoint skipped: the application restarted the WAL first");
                        break;
                }
            });
        }

        else if (followedRestart)
        {
            return;
        }

        BeginRead();
        restartedByUs = FollowRestart(-1);
        if (mode == CheckpointMode.Passive || restartedByUs || _verifier is null)
        {
            return;
        }

        // SQLite's own RESTART: waits for the application's write lock and readers. Our read must
        // go for that; the restart it allows (by our write below, or the application's) is
        // checked against the WAL size in frames the checkpoint reports, which counts what the
        // application committed while it waited. Until a write restarts the WAL, those frames are
        // still in it: they are copied first, so such a commit does not cost a new generation
        // (after a shrinking restart the old tail is no longer in the file to be copied then).
        long log = -1;
        bool followed = false;
        EndRead();
        try
        {
            log = RunCheckpoint(_conn!, CheckpointMode.Restart);
            BeginRead();
            followed = FollowRestart(log);
            // Our write restarts the WAL, taken as in phase 2: waiting for the lock with the read
            // let go would let the application restart the WAL and checkpoint its new frames
            // first, and our write would then restart it again over frames nobody copied.
            if (!followed)
            {
                if (TryTakeWriteLock(out bool followedMeanwhile))
                {
                    ShrinkingWalIf(mode == CheckpointMode.Truncate, () => CommitSequenceRow());
                }
                else
                {
                    followed = followedMeanwhile;
                }
            }
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6)
        {
            _log.Debug($"checkpoint {mode} skipped: database busy ({e.Message}); will try again");
        }
        finally
        {
            BeginRead();
        }

        FollowRestart(followed ? -1 : log);
    }

    /// <summary>
    /// Runs <paramref name="write"/>; with <paramref name="shrink"/>, a write of ours that restarts
    /// the WAL also cuts the WAL file to the frames it holds: SQLite applies journal_size_limit at
    /// the commit of the write that restarted the WAL, under the write lock.
    /// </summary>
    private void ShrinkingWalIf(bool shrink, Action write)
    {
        if (!shrink)
        {
            write();
            return;
        }

        Exec("PRAGMA journal_size_limit = 0");
        try
        {
            write();
        }
        finally
        {
            Exec("PRAGMA journal_size_limit = -1");
        }
    }

    /// <summary>
    /// Runs one checkpoint and returns the WAL size in frames it reported (-1 when busy). A busy
    /// database is not an error: the checkpoint is tried again later.
    /// </summary>
    /// <remarks>
    /// A PASSIVE checkpoint never waits, not even for the checkpoint lock, which the application's
    /// own autocheckpoint holds for a moment after each of its commits once the WAL is past 1000
    /// pages (as long as our read keeps the WAL from restarting, that is every commit). Against an
    /// application that commits without pause it failed at almost every try (busy, nothing
    /// backfilled): our write could not restart the WAL, which grew until the shadow's cap started
    /// a new generation, every second or two. Such a try is made again at once, for up to
    /// <see cref="CaptureOptions.CheckpointLockPatience"/>: each of those checkpoints of the application is short.
    /// </remarks>
    private long RunCheckpoint(SqliteConnection conn, CheckpointMode mode)
    {
        var name = mode.ToString().ToUpperInvariant();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int tries = 0;
        try
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = $"PRAGMA wal_checkpoint({name})";
            while (true)
            {
                tries++;
                BeforeCheckpointTry?.Invoke(mode, tries);
                using var r = cmd.ExecuteReader();
                if (!r.Read())
                {
                    break;
                }

                int busy = r.GetInt32(0);
                long log = r.GetInt64(1);
                if (mode == CheckpointMode.Passive && busy != 0 && log < 0 && clock.Elapsed < _options.CheckpointLockPatience)
                {
                    // The checkpoint lock was taken (nothing was done): another checkpoint is running.
                    Thread.Yield();
                    continue;
                }

                _log.Debug($"checkpoint {name}: busy={busy} log={log} checkpointed={r.GetInt64(2)}{(tries > 1 ? $" ({tries} tries, {clock.Elapsed.TotalMilliseconds:0.0} ms)" : "")}");
                return log;
            }
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6)
        {
            _log.Debug($"checkpoint {name} skipped: database busy ({e.Message}); will try again");
        }

        return -1;
    }

    /// <summary>Tests only: runs before each try of a checkpoint (the mode, and the try's number from 1).</summary>
    internal Action<CheckpointMode, int>? BeforeCheckpointTry { get; set; }

    /// <summary>Follows a WAL restart if the live header changed; true when it did.</summary>
    private bool FollowRestart(long knownOldFrames)
    {
        if (_verifier is null || _shadowHeader is null)
        {
            return false;
        }

        var now = WalHeader.TryParseValid(ReadBytes(WalPath, 0, WalHeader.Size));
        if (now is not null && now == _shadowHeader)
        {
            CopyToShadow();
            return false;
        }

        HandleRestart(knownOldFrames);
        return true;
    }

    /// <summary>Tests only: runs in each instant the managed checkpoint has let its read go and is about to take the write lock.</summary>
    internal Action? BeforeWriteLockAttempt { get; set; }

    /// <summary>
    /// Takes the write lock for phase 2 of the managed checkpoint and for the write that restarts
    /// the WAL after SQLite's RESTART; called with our read held, and returns true with the write
    /// transaction open (the read given up) and the WAL header still the one we follow. The read
    /// is let go only for the instant of each attempt, never while waiting: an application that
    /// writes fast can checkpoint and restart its WAL within milliseconds, so waiting for the lock
    /// (SQLite's busy handler, then the provider's retries) with the read let go let it restart
    /// the WAL twice unseen, which costs a new generation. Between attempts the read is held
    /// again, and what the application committed meanwhile is copied (or its one restart
    /// followed: then <paramref name="followedRestart"/> is true and false is returned, as when
    /// the restart happened in the instant of a successful attempt). In those instants the
    /// checkpoint connection's guard read keeps the WAL from restarting; a guard begun when every
    /// frame was already backfilled reads the database file alone (SQLite's read slot 0), which
    /// lets one restart happen, at the end we copied, and keeps a second one from following it.
    /// </summary>
    private bool TryTakeWriteLock(out bool followedRestart)
    {
        followedRestart = false;
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // The guard: a read on the checkpoint connection, begun while ours is still held, keeps
        // the WAL from restarting in the instants of our attempts (an application committing
        // without pause could otherwise checkpoint and restart it there, over frames we had not
        // copied: a new generation). It ends before phase 2, which checkpoints on that connection.
        var guard = CheckpointConnection();
        ExecOn(guard, "BEGIN");
        try
        {
            ExecOn(guard, "SELECT COUNT(1) FROM _litestream_seq");
            while (true)
            {
                EndRead();
                if (TryLockUnmoved() == LockAttempt.Taken)
                {
                    return true;
                }

                // Busy, or the WAL restarted in the instant (not while the guard holds its read):
                // either way the read is held again and a restart is followed (the one a moved
                // header shows always is).
                BeginRead();
                if (FollowRestart(-1))
                {
                    followedRestart = true;
                    return false;
                }

                if (clock.Elapsed >= _options.BusyTimeout)
                {
                    _log.Debug($"checkpoint: the write lock stayed busy for {_options.BusyTimeout.TotalMilliseconds:0} ms; the WAL restarts at a later checkpoint");
                    return false;
                }

                Thread.Sleep(2);
            }
        }
        finally
        {
            ExecOn(guard, "ROLLBACK");
        }
    }

    private static void ExecOn(SqliteConnection conn, string sql)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private enum LockAttempt
    {
        Taken,
        Busy,
        WalMoved,
    }

    /// <summary>
    /// One attempt at the write lock, without waiting, with our read let go by the caller.
    /// <see cref="LockAttempt.Taken"/>: the write transaction is open and the WAL header is still
    /// the one we follow. <see cref="LockAttempt.WalMoved"/>: in the instant our read was let go
    /// the application committed and so restarted the WAL (everything was backfilled); the lock
    /// was given back and that one restart is the caller's to follow. Going on would backfill the
    /// new incarnation and let our own write restart the WAL again over frames nobody copied: a
    /// restart that skips a salt, which costs a new generation.
    /// </summary>
    /// <param name="emptyWal">The WAL we follow is an emptied file (a TRUNCATE checkpoint's): unmoved means still without a header.</param>
    private LockAttempt TryLockUnmoved(bool emptyWal = false)
    {
        BeforeWriteLockAttempt?.Invoke();
        if (!TryExecNoWait("BEGIN IMMEDIATE"))
        {
            return LockAttempt.Busy;
        }

        // Read under the write lock: nobody can restart the WAL now.
        var now = ReadBytes(WalPath, 0, WalHeader.Size);
        if (emptyWal ? now.Length < WalHeader.Size : _shadowHeader is null || WalHeader.TryParseValid(now) == _shadowHeader)
        {
            return LockAttempt.Taken;
        }

        Exec("ROLLBACK");
        return LockAttempt.WalMoved;
    }

    /// <summary>A second connection for checkpoints, so our read transaction can stay open during them.</summary>
    private SqliteConnection CheckpointConnection()
    {
        if (_ckptConn is null)
        {
            var c = new SqliteConnection(_conn!.ConnectionString);
            c.Open();
            SqliteNative.SetPersistWal(c);
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = $"PRAGMA busy_timeout = {(int)_options.BusyTimeout.TotalMilliseconds}";
                cmd.ExecuteNonQuery();
            }

            _ckptConn = c;
        }

        return _ckptConn;
    }

    /// <summary>
    /// Gives a WAL file that a TRUNCATE checkpoint emptied its new header: with our own write,
    /// unless the application writes first (its write gives the header just as well). Called
    /// with or without our read held, and leaves it as it found it. The write is taken as the
    /// managed checkpoint takes its lock: one attempt at a time without waiting, with the read
    /// let go only for the instant of each attempt and the WAL checked under the lock. A write of
    /// ours that waited for the lock with the read let go could follow an application that wrote
    /// the header and checkpointed its frames meanwhile, and restart the WAL a second time over
    /// frames nobody copied (a salt that moved by two: a new generation).
    /// </summary>
    private void GiveEmptiedWalAHeader()
    {
        bool was = _inReadTx;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (true)
            {
                EndRead();
                switch (TryLockUnmoved(emptyWal: true))
                {
                    case LockAttempt.Taken:
                        if (CommitSequenceRow())
                        {
                            return;
                        }

                        break;
                    case LockAttempt.WalMoved:
                        _log.Debug("sequence write into the emptied WAL skipped: the application wrote first");
                        return;
                }

                BeginRead();
                if (new FileInfo(WalPath) is { Exists: true, Length: >= WalHeader.Size })
                {
                    return;
                }

                if (clock.Elapsed >= _options.BusyTimeout)
                {
                    throw new SqliteException($"The write lock of '{DbPath}' stayed busy for {_options.BusyTimeout.TotalMilliseconds:0} ms after a TRUNCATE checkpoint emptied its WAL; the WAL is looked at again later.", SQLitePCL.raw.SQLITE_BUSY);
                }

                Thread.Sleep(2);
            }
        }
        finally
        {
            if (was)
            {
                BeginRead();
            }
            else
            {
                EndRead();
            }
        }
    }

    private void BumpSequence()
    {
        bool was = _inReadTx;
        EndRead();
        try
        {
            WriteSequenceRow();
        }
        finally
        {
            if (was)
            {
                BeginRead();
            }
        }
    }

    private const string SequenceRowSql = "INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1";

    private void WriteSequenceRow() => Exec(SequenceRowSql);

    /// <summary>Writes the sequence row in the write transaction we hold, and commits it; false (rolled back) when busy.</summary>
    private bool CommitSequenceRow() => TryExecNoWait(SequenceRowSql + "; COMMIT");

    /// <summary>
    /// Runs <paramref name="sql"/> on our connection without waiting for a lock (no busy handler,
    /// no provider retries). Returns false when the database was busy; a transaction the SQL
    /// left open is rolled back then. Other errors throw.
    /// </summary>
    private bool TryExecNoWait(string sql)
    {
        var db = _conn!.Handle!;
        SQLitePCL.raw.sqlite3_busy_timeout(db, 0);
        try
        {
            int rc = SQLitePCL.raw.sqlite3_exec(db, sql);
            if (rc == SQLitePCL.raw.SQLITE_OK)
            {
                return true;
            }

            if (SQLitePCL.raw.sqlite3_get_autocommit(db) == 0)
            {
                SQLitePCL.raw.sqlite3_exec(db, "ROLLBACK");
            }

            if ((rc & 0xff) is not (SQLitePCL.raw.SQLITE_BUSY or SQLitePCL.raw.SQLITE_LOCKED))
            {
                SqliteException.ThrowExceptionForRC(rc, db);
            }

            return false;
        }
        finally
        {
            SQLitePCL.raw.sqlite3_busy_timeout(db, (int)_options.BusyTimeout.TotalMilliseconds);
        }
    }

    private void BeginRead()
    {
        if (_inReadTx || _conn is null)
        {
            return;
        }

        Exec("BEGIN");
        Scalar("SELECT COUNT(1) FROM _litestream_seq");
        _inReadTx = true;
        ObservePublished();
    }

    private void EndRead()
    {
        if (!_inReadTx || _conn is null)
        {
            return;
        }

        _inReadTx = false;
        _heldSinceObserved = false;
        Exec("ROLLBACK");
    }

    private void CloseDatabase()
    {
        try
        {
            EndRead();
        }
        catch (SqliteException)
        {
        }

        _ckptConn?.Dispose();
        _ckptConn = null;
        _walHandle?.Dispose();
        _walHandle = null;
        _conn?.Dispose();
        _conn = null;
        _dbHandle?.Dispose();
        _dbHandle = null;
        _verifier = null;
        _shadowHeader = null;
        _lastWalLength = -1;
        _position = Position.None;
        ResetChainKnowledge();
    }

    private SafeFileHandle? OpenWal()
    {
        try
        {
            return File.OpenHandle(WalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static byte[] ReadBytes(string path, long offset, int count)
    {
        try
        {
            using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var buf = new byte[count];
            int total = 0;
            while (total < count)
            {
                int n = RandomAccess.Read(h, buf.AsSpan(total), offset + total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total == count ? buf : buf[..total];
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    private void Exec(string sql) => ExecOn(_conn!, sql);

    private object? Scalar(string sql)
    {
        using var cmd = _conn!.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
