using System.Diagnostics;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.S3;
using SqliteReplica.Engine.Status;

namespace SqliteReplica.Engine.Replication;

/// <summary>
/// One database and its replicas: the monitor loop that feeds the shadow WAL (woken by file
/// change notifications, with a slow poll as a fallback) and one syncer per replica. At
/// shutdown it copies the last commits and flushes every replica before it returns.
/// </summary>
public sealed class DatabaseReplicator : IAsyncDisposable
{
    private readonly CaptureOptions _captureOptions;
    private readonly IEngineLog _log;
    private readonly AutoResetEvent _wake = new(false);
    private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;
    private FileSystemWatcher? _watcher;
    private ChangeWatcher? _changes;
    private DateTimeOffset _lastPublished = DateTimeOffset.MinValue;
    private bool _publishFailedLogged;

    public DatabaseReplicator(string dbPath, CaptureOptions captureOptions, IEnumerable<(IReplicaClient Client, ReplicaOptions Options)> replicas, IEngineLog log)
    {
        _captureOptions = captureOptions;
        _log = log;
        Capture = new DatabaseCapture(dbPath, captureOptions, log);
        Syncers = replicas.Select(r => new ReplicaSyncer(Capture, r.Client, r.Options, log)).ToList();
        var dup = Syncers.GroupBy(s => s.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument, $"Database '{dbPath}' has two replicas named '{dup.Key}'. Give each replica a unique name.", dbPath);
        }

        Capture.Changed += () =>
        {
            foreach (var s in Syncers)
            {
                s.Notify();
            }
        };
    }

    public DatabaseCapture Capture { get; }

    public IReadOnlyList<ReplicaSyncer> Syncers { get; }

    public string DbPath => Capture.DbPath;

    public string? LastError { get; private set; }

    /// <summary>Called (GET) every <see cref="HeartbeatUrlInterval"/> while every replica has confirmed everything captured.</summary>
    public string? HeartbeatUrl { get; init; }

    public TimeSpan HeartbeatUrlInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Successful heartbeat-URL calls since start.</summary>
    public long HeartbeatsSent => Interlocked.Read(ref _heartbeatsSent);

    private long _heartbeatsSent;
    private Position _previousLocal = Position.None;

    private static bool Reached(Position confirmed, Position target) =>
        !confirmed.IsNone && confirmed.Generation == target.Generation &&
        (confirmed.Index > target.Index || (confirmed.Index == target.Index && confirmed.Offset >= target.Offset));
    private DateTimeOffset _lastHeartbeatCall = DateTimeOffset.MinValue;
    private static readonly HttpClient HeartbeatClient = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>Runs until <paramref name="ct"/> is cancelled, then does the final sync.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        StartWatcher();
        var syncTasks = Syncers.Select(s => s.RunAsync(ct)).ToList();
        syncTasks.AddRange(Syncers.Where(s => s.ValidationInterval > TimeSpan.Zero).Select(s => ValidateAsync(s, ct)));
        try
        {
            await StartMonitor(ct).ConfigureAwait(false);
        }
        finally
        {
            await Task.WhenAll(syncTasks).ConfigureAwait(false);
            await FinalSyncAsync().ConfigureAwait(false);
            PublishStatus(stopped: true);
        }
    }

    /// <summary>
    /// Copies the last commits into the shadow WAL and uploads them to every replica. Used at
    /// shutdown; returns the replicas it could not flush.
    /// </summary>
    public async Task<IReadOnlyList<string>> FinalSyncAsync()
    {
        var failed = new List<string>();
        try
        {
            Capture.Sync(CancellationToken.None, force: true);
        }
        catch (Exception e)
        {
            _log.Error($"final sync of '{DbPath}' could not read the WAL: {e.Message}");
        }

        foreach (var s in Syncers)
        {
            using var cts = new CancellationTokenSource(TimeSpanFor(s));
            try
            {
                var p = await s.SyncAsync(cts.Token).ConfigureAwait(false);
                _log.Verbose($"replica {s.Name}: final sync done at {p}");
            }
            catch (Exception e)
            {
                failed.Add(s.Name);
                _log.Error($"replica {s.Name}: final sync failed, the replica may miss the last commits: {e.Message}");
            }
        }

        return failed;
    }

    private static TimeSpan TimeSpanFor(ReplicaSyncer s) => TimeSpan.FromSeconds(20);

    /// <summary>
    /// Runs the monitor loop on a thread of its own, which blocks between looks. On the thread
    /// pool, every wake-up (a timer's, then the continuation's) ended with the pool's workers
    /// spinning (sched_yield) before they slept again: perf showed that spinning as most of an
    /// idle replicator's CPU, with two workers switching about 25 times a second each for one
    /// database. A blocked thread wakes once per beat and goes straight back to sleep.
    /// </summary>
    private Task StartMonitor(CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                MonitorLoop(ct);
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "sqlitereplica-monitor",
        };
        MonitorThread = thread;
        thread.Start();
        return done.Task;
    }

    /// <summary>The monitor loop's thread, once started (tests check it blocks outside the pool and ends at stop).</summary>
    internal Thread? MonitorThread { get; private set; }

    /// <summary>How many times the monitor loop has woken (tests check an idle database wakes once a beat).</summary>
    internal long MonitorWakes => Interlocked.Read(ref _monitorWakes);

    private long _monitorWakes;

    private void MonitorLoop(CancellationToken ct)
    {
        int failures = 0;
        bool notified = true;
        bool look = true;
        var sinceLook = Stopwatch.StartNew();
        bool copied = false;
        WaitHandle[] wakeOrStop = [_wake, ct.WaitHandle];
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (look)
                {
                    // Under steady writes notifications come for every write: after a look that
                    // copied something, looks closer together than the spacing are merged into one
                    // (a look copies everything committed so far). After a look that found nothing
                    // (a commit still being written), the next notification is looked at at once.
                    var spacing = _captureOptions.MinLookSpacing - sinceLook.Elapsed;
                    if (notified && copied && spacing > TimeSpan.Zero)
                    {
                        Pause(spacing, ct);
                    }

                    sinceLook.Restart();

                    // Re-armed before the look, not after: a write the look does not see wakes the
                    // next one, and until the first write after this the files carry no watch.
                    _changes?.Arm();

                    // The cap is checked before the look's copy too: a copy that would take the
                    // shadow past it gives up continuity first (those frames reach the new
                    // generation through its snapshot), instead of copying them into a shadow that
                    // is then thrown away.
                    CleanShadows();
                    EnforceShadowCap(beforeLook: true);

                    // A file-change notification forces a full look; the timer's poll may take the
                    // one-stat idle path (size and mtime unchanged).
                    copied = Capture.Sync(ct, force: notified);
                    CleanShadows();
                    if (copied)
                    {
                        EnforceShadowCap(beforeLook: false);
                    }
                    failures = 0;
                    LastError = null;
                }

                PublishStatusIfDue();
                CallHeartbeatIfDue();

                // A commit whose frames are written but not yet published in the wal-index is
                // looked at again within milliseconds instead of at the next beat. Otherwise the
                // loop sleeps until the next heartbeat beat, which every database of the process
                // shares (see UntilNextBeat), and polls the WAL there once the monitor interval is
                // (about) over.
                bool awaiting = Capture.AwaitingPublication;
                var wait = awaiting ? TimeSpan.FromMilliseconds(5) : UntilNextBeat(HeartbeatInterval);
                notified = WaitHandle.WaitAny(wakeOrStop, wait) == 0;
                Interlocked.Increment(ref _monitorWakes);
                ct.ThrowIfCancellationRequested();
                look = notified || awaiting || sinceLook.Elapsed >= _captureOptions.MonitorInterval - HeartbeatInterval / 2;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                failures++;
                LastError = e.Message;
                _log.Error($"monitor error for '{DbPath}' (attempt {failures}): {e.Message}");
                PublishStatusIfDue();
                if (ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(Math.Min(30, failures))))
                {
                    break;
                }
            }
        }
    }

    /// <summary>Blocks the monitor thread for <paramref name="time"/>; throws if stopped meanwhile.</summary>
    private static void Pause(TimeSpan time, CancellationToken ct)
    {
        ct.WaitHandle.WaitOne(time);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// validation-interval: the restore drill, run in-process against one replica on a timer,
    /// its outcome fed to status and metrics. Continuous verification, not just copying.
    /// </summary>
    private async Task ValidateAsync(ReplicaSyncer syncer, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(syncer.ValidationInterval, ct).ConfigureAwait(false);
                var result = await Verification.RestoreDrill.RunAsync(syncer.Client, new Verification.DrillOptions
                {
                    LiveDatabasePath = DbPath,
                    MetaPath = Capture.Meta.Root,
                    MaxLag = TimeSpan.FromSeconds(Math.Max(10, 10 * syncer.SyncInterval.TotalSeconds)),
                }, _log, ct).ConfigureAwait(false);
                syncer.LastValidation = result;
                if (result.Status == Verification.DrillOutcome.Failed)
                {
                    syncer.ValidationsFailed++;
                    _log.Error($"replica {syncer.Name}: validation failed: {result.Reason}");
                }
                else
                {
                    syncer.ValidationsPassed++;
                    _log.Verbose($"replica {syncer.Name}: validation {result.Status.ToLowerInvariant()} at {result.RestoredPosition}");
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                syncer.ValidationsFailed++;
                _log.Error($"replica {syncer.Name}: validation could not run: {e.Message}");
            }
        }
    }

    /// <summary>Calls the heartbeat URL, but only while every replica has confirmed everything captured.</summary>
    private void CallHeartbeatIfDue()
    {
        if (HeartbeatUrl is null || DateTimeOffset.UtcNow - _lastHeartbeatCall < HeartbeatUrlInterval)
        {
            return;
        }

        // Beat only when every replica has confirmed at least where the capture stood at the
        // previous look: copying keeps up (a busy database is never exactly caught up at one
        // instant), and a replica that stops confirming stops the beat within one look.
        var local = Capture.Position;
        var previous = _previousLocal;
        _previousLocal = local;
        if (local.IsNone || previous.IsNone || Syncers.Any(s => !Reached(s.ConfirmedPosition, previous) || s.LastValidation?.Status == Verification.DrillOutcome.Failed || s.ConsecutiveFailures > 0))
        {
            return;
        }

        _lastHeartbeatCall = DateTimeOffset.UtcNow;
        _ = CallAsync();

        async Task CallAsync()
        {
            try
            {
                using var response = await HeartbeatClient.GetAsync(HeartbeatUrl).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _heartbeatsSent);
                }
                else
                {
                    _log.Warning($"heartbeat URL answered {(int)response.StatusCode}");
                }
            }
            catch (Exception e)
            {
                _log.Warning($"heartbeat URL call failed: {e.Message}");
            }
        }
    }

    /// <summary>How often the status file (the heartbeat) is rewritten.</summary>
    public TimeSpan HeartbeatInterval => _captureOptions.MonitorInterval < TimeSpan.FromSeconds(1) ? _captureOptions.MonitorInterval : TimeSpan.FromSeconds(1);

    /// <summary>
    /// The time until the next multiple of <paramref name="interval"/> on the process's monotonic
    /// clock. Every database of a process polls and publishes its status on that shared beat, so
    /// an idle machine is woken once per beat instead of once per database at scattered moments
    /// (the monitor threads wake together and go back to sleep together). The clock is the precise
    /// monotonic one that waits time out on, rounded up to the millisecond, so a wait never ends
    /// before the beat: Environment.TickCount64 follows a coarse clock that lags by up to a few
    /// milliseconds, and with it each beat woke the thread again for the last millisecond or two.
    /// </summary>
    internal static TimeSpan UntilNextBeat(TimeSpan interval)
    {
        long ms = Math.Max(1, (long)interval.TotalMilliseconds);
        long period = ms * (Stopwatch.Frequency / 1000);
        long left = period - (Stopwatch.GetTimestamp() % period);
        return TimeSpan.FromMilliseconds((left * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency);
    }

    private void PublishStatusIfDue()
    {
        // A tenth of a beat of slack, so every beat publishes however the clocks round.
        if (DateTimeOffset.UtcNow - _lastPublished >= HeartbeatInterval - HeartbeatInterval / 10)
        {
            PublishStatus(stopped: false);
        }
    }

    /// <summary>The state other processes read (Get-SqliteReplicationStatus); also what metrics report.</summary>
    public ReplicationState BuildState(bool stopped = false)
    {
        var local = Capture.Position;
        return new ReplicationState
        {
            ProcessId = Environment.ProcessId,
            Host = Environment.MachineName,
            StartedAt = _startedAt,
            HeartbeatAt = DateTimeOffset.UtcNow,
            HeartbeatSeconds = HeartbeatInterval.TotalSeconds,
            StoppedAt = stopped ? DateTimeOffset.UtcNow : null,
            DatabasePath = DbPath,
            Generation = local.IsNone ? null : local.Generation,
            LocalPosition = local.IsNone ? null : local.ToString(),
            LocalIndex = local.Index,
            LocalOffset = local.Offset,
            ShadowBytes = SafeShadowBytes(),
            ShadowCapBytes = ShadowCapBytes(),
            ContinuityGivenUpAt = ContinuityGivenUpAt,
            LastError = LastError,
            Replicas = Syncers.Select(s =>
            {
                var c = s.ConfirmedPosition;
                var counters = (s.Client as S3ReplicaClient)?.Counters;
                return new ReplicaState
                {
                    Name = s.Name,
                    Type = s.Client.Type,
                    Url = s.Client.Url,
                    ConfirmedPosition = c.IsNone ? null : c.ToString(),
                    ConfirmedGeneration = c.IsNone ? null : c.Generation,
                    ConfirmedIndex = c.Index,
                    ConfirmedOffset = c.Offset,
                    LastConfirmedAt = s.LastConfirmedAt,
                    LastSnapshotAt = s.LastSnapshotAt,
                    BehindSince = !local.IsNone && c != local ? s.BehindSince ?? _startedAt : null,
                    BytesPending = s.BytesPending(),
                    LastError = s.LastError,
                    ConsecutiveFailures = s.ConsecutiveFailures,
                    SyncIntervalSeconds = s.SyncInterval.TotalSeconds,
                    PutRequests = counters?.Put ?? 0,
                    GetRequests = counters?.Get ?? 0,
                    ListRequests = counters?.List ?? 0,
                    DeleteRequests = counters?.Delete ?? 0,
                    HeadRequests = counters?.Head ?? 0,
                    MultipartRequests = counters?.Multipart ?? 0,
                    LastValidationAt = s.LastValidation?.FinishedAt,
                    LastValidationStatus = s.LastValidation?.Status,
                    LastValidationReason = s.LastValidation?.Reason,
                    ValidationsPassed = s.ValidationsPassed,
                    ValidationsFailed = s.ValidationsFailed,
                };
            }).ToList(),
        };
    }

    private long SafeShadowBytes()
    {
        try
        {
            return Capture.ShadowBytes();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>
    /// Publishes the status. The file is rewritten (temp file + rename) when its content changed,
    /// and at least every <see cref="StatusRewriteInterval"/>; at the other beats only its
    /// modification time is set, which readers take as the heartbeat. Creating and renaming a
    /// file every second was most of an idle replicator's CPU (20 idle databases, service
    /// settings: 630-770 ms of CPU a minute against 190-260 ms with the status written every
    /// 30 s). The modification time is set only while the file is the one this process left and
    /// its content is still current, so a heartbeat is never fresh over stale or foreign content.
    /// </summary>
    private void PublishStatus(bool stopped)
    {
        try
        {
            var state = BuildState(stopped);
            var content = (state with { HeartbeatAt = default }).ToJson();
            var path = StatusFile.PathFor(Capture.Meta);
            var now = DateTimeOffset.UtcNow;
            if (!stopped && content == _publishedContent && now - _lastRewrite < StatusRewriteInterval &&
                StatusFile.TryTouch(path, _publishedModified, out var touched))
            {
                _publishedModified = touched;
            }
            else
            {
                StatusFile.Write(Capture.Meta, state);
                _publishedContent = content;
                _publishedModified = File.GetLastWriteTimeUtc(path);
                _lastRewrite = now;
            }

            _lastPublished = now;
            _publishFailedLogged = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The heartbeat goes stale, which is exactly what readers must see; the next beat
            // rewrites the whole file.
            _publishedContent = null;
            if (!_publishFailedLogged)
            {
                _log.Error($"cannot write the status file of '{DbPath}' in '{Capture.Meta.Root}': {e.Message}");
                _publishFailedLogged = true;
            }
        }
    }

    /// <summary>The longest the status file goes without a full rewrite (its JSON heartbeatAt is at most this old).</summary>
    internal static readonly TimeSpan StatusRewriteInterval = TimeSpan.FromMinutes(1);

    private string? _publishedContent;
    private DateTime _publishedModified;
    private DateTimeOffset _lastRewrite;

    private bool _capWaitLogged;

    /// <summary>When the shadow WAL last hit its cap and continuity was given up.</summary>
    public DateTimeOffset? ContinuityGivenUpAt { get; private set; }

    public long ShadowCapBytes()
    {
        long dbSize = new FileInfo(DbPath) is { Exists: true } f ? f.Length : 0;
        return Math.Max(_captureOptions.ShadowCapMinimumBytes, (long)(dbSize * _captureOptions.ShadowCapDatabaseMultiple));
    }

    /// <summary>
    /// Bounds local disk while replicas cannot keep up: past the cap, give up continuity (new
    /// generation from the live WAL) rather than fill the disk or block the application.
    /// <paramref name="beforeLook"/>: also count what the next look would add to the shadow
    /// (read from the wal-index only when the replicas are behind).
    /// </summary>
    private void EnforceShadowCap(bool beforeLook)
    {
        var local = Capture.Position;
        if (local.IsNone || Syncers.All(s => s.ConfirmedPosition == local))
        {
            _capWaitLogged = false;
            return;
        }

        long toCopy = beforeLook ? Capture.PendingCopyBytes() : 0;
        long bytes = SafeShadowBytes();
        long cap = ShadowCapBytes();
        if (bytes + toCopy <= cap)
        {
            _capWaitLogged = false;
            return;
        }

        var held = toCopy > 0 ? $"{bytes} bytes and {toCopy} more to copy > {cap}" : $"{bytes} > {cap} bytes";

        // Also reached with replicas only a sync interval behind, when the WAL cannot restart (an
        // application that takes the write lock again at once, or a long reader): the message
        // gives both positions, so the log says which it was.
        var confirmed = string.Join(", ", Syncers.Select(s => s.ConfirmedPosition.ToString()));
        if (!Capture.GiveUpContinuity("shadow WAL cap reached while replicas were behind"))
        {
            // A snapshot is being taken: its position is in this generation, so continuity is
            // given up (if still needed) at the first look after it ends. Said once while the
            // shadow stays past the cap with the replicas behind.
            if (!_capWaitLogged)
            {
                _capWaitLogged = true;
                _log.Warning($"the shadow WAL of '{DbPath}' reached its cap ({held}) while a snapshot is being taken (replicas confirmed at {confirmed}, the WAL copied to {local}); continuity is given up when the snapshot ends if the replicas are still behind. The application is not blocked.");
            }

            return;
        }

        _capWaitLogged = false;
        ContinuityGivenUpAt = DateTimeOffset.UtcNow;
        _log.Error($"the shadow WAL of '{DbPath}' reached its cap ({held}) with replicas confirmed at {confirmed} and the WAL copied to {local}: continuity given up; the replicas will get a new generation (a full snapshot) once they are reachable. The application is not blocked. If the replicas were close behind, the WAL could not be restarted: an application that writes without pause, or a long read transaction, holds it.");
    }

    private void CleanShadows()
    {
        var gen = Capture.Position.Generation;
        long lowest = long.MaxValue;
        foreach (var s in Syncers)
        {
            var p = s.ConfirmedPosition;
            if (p.IsNone || p.Generation != gen)
            {
                return;
            }

            lowest = Math.Min(lowest, p.Index);
        }

        if (lowest != long.MaxValue)
        {
            Capture.CleanShadows(gen, lowest);
        }
    }

    private void StartWatcher()
    {
        try
        {
            var dir = Path.GetDirectoryName(DbPath)!;
            if (!Directory.Exists(dir))
            {
                return;
            }

            _changes = ChangeWatcher.TryStart(DbPath, Wake, _log);
            if (_changes is not null)
            {
                return;
            }

            var name = Path.GetFileName(DbPath);
            _watcher = new FileSystemWatcher(dir)
            {
                NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.FileName,
                IncludeSubdirectories = false,
            };
            FileSystemEventHandler onChange = (_, e) =>
            {
                if (e.Name is { } n && (n == name || n == name + "-wal"))
                {
                    Wake();
                }
            };
            _watcher.Changed += onChange;
            _watcher.Created += onChange;
            _watcher.Renamed += (_, e) => Wake();
            _watcher.Error += (_, e) => _log.Debug($"file watcher error (polling continues): {e.GetException().Message}");
            _watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
        {
            _log.Debug($"file change notifications unavailable, polling every {_captureOptions.MonitorInterval}: {e.Message}");
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Set();
        }
        catch (ObjectDisposedException)
        {
            // A last notification racing the shutdown: nothing is left to wake.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _watcher?.Dispose();
        _changes?.Dispose();
        Capture.Dispose();
        _wake.Dispose();
        foreach (var s in Syncers)
        {
            if (s.Lease is { } lease)
            {
                s.Lease = null;
                await lease.DisposeAsync().ConfigureAwait(false);
            }

            (s.Client as IDisposable)?.Dispose();
        }
    }
}
