using System.Diagnostics;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Replication;

/// <summary>
/// Keeps one replica of one database up to date: a snapshot first in every generation, then
/// WAL segments from the shadow WAL, at most one upload per sync interval; snapshots on the
/// snapshot interval; retention. The confirmed position moves only after the store has
/// acknowledged an object.
/// </summary>
public sealed class ReplicaSyncer
{
    private readonly DatabaseCapture _capture;
    private readonly ReplicaOptions _options;
    private readonly IEngineLog _log;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly SemaphoreSlim _busy = new(1, 1);
    private readonly object _stateGate = new();
    private Position _confirmed = Position.None;
    private readonly UnconfirmedCommits _unconfirmed = new();
    private DateTimeOffset? _behindSince;
    private DateTimeOffset _lastUploadStart = DateTimeOffset.MinValue;
    private DateTimeOffset? _nextSnapshot;
    private DateTimeOffset? _nextRetention;

    public ReplicaSyncer(DatabaseCapture capture, IReplicaClient client, ReplicaOptions options, IEngineLog log, TimeProvider? time = null)
    {
        _capture = capture;
        Client = client;
        _options = options;
        _log = log;
        _time = time ?? TimeProvider.System;
        Name = options.Name ?? client.Type;
    }

    public string Name { get; }

    public TimeSpan SyncInterval => _options.SyncInterval;

    public IReplicaClient Client { get; }

    /// <summary>The one-writer lease on the replica location, taken at start.</summary>
    public IReplicaLease? Lease { get; set; }

    /// <summary>The newest position the store has acknowledged.</summary>
    public Position ConfirmedPosition
    {
        get
        {
            lock (_stateGate)
            {
                return _confirmed;
            }
        }
    }

    /// <summary>When the store last acknowledged an object.</summary>
    public DateTimeOffset? LastConfirmedAt { get; private set; }

    public DateTimeOffset? LastSnapshotAt { get; private set; }

    public string? LastError { get; private set; }

    public int ConsecutiveFailures { get; private set; }

    public TimeSpan ValidationInterval => _options.ValidationInterval;

    /// <summary>The last in-process restore drill against this replica (validation-interval).</summary>
    public Verification.DrillResult? LastValidation { get; internal set; }

    public long ValidationsPassed { get; internal set; }

    public long ValidationsFailed { get; internal set; }

    /// <summary>
    /// The capture time of the oldest captured commit the store has not confirmed (null: the
    /// store confirmed everything captured). Lag is measured from here: after an outage it falls
    /// as the backlog is confirmed, even while new commits keep arriving.
    /// </summary>
    public DateTimeOffset? BehindSince
    {
        get
        {
            lock (_stateGate)
            {
                return _behindSince;
            }
        }
    }

    /// <summary>Tells the syncer the shadow WAL has new data.</summary>
    public void Notify()
    {
        var captured = _capture.Position; // read outside our lock: the capture has its own
        var now = _time.GetUtcNow();
        lock (_stateGate)
        {
            _unconfirmed.Captured(captured, now);
            UpdateBehindLocked(captured, now);
        }

        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    /// <summary>Runs until cancelled. Never throws except for cancellation; failures are logged and retried.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.Zero;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await WaitForWorkAsync(backoff, ct).ConfigureAwait(false);
                var since = _time.GetUtcNow() - _lastUploadStart;
                if (since < _options.SyncInterval)
                {
                    await Task.Delay(_options.SyncInterval - since, _time, ct).ConfigureAwait(false);
                    RefreshCapture(ct);
                }

                await SyncAsync(ct).ConfigureAwait(false);
                await RunTimersAsync(ct).ConfigureAwait(false);
                backoff = TimeSpan.Zero;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                RecordFailure(e);
                backoff = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Min(ConsecutiveFailures, 5)) / 2));
            }
        }
    }

    /// <summary>
    /// A fresh look at the WAL just before an upload that waited for the sync interval: looks
    /// woken by file changes are spaced out under steady writes, and the upload must not leave
    /// behind what was committed since the last one. Errors of the look are the monitor's to report.
    /// </summary>
    private void RefreshCapture(CancellationToken ct)
    {
        try
        {
            _capture.Sync(ct, force: true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _log.Debug($"replica {Name}: look at the WAL before the upload failed ({e.Message}); uploading what the shadow holds");
        }
    }

    /// <summary>
    /// Uploads everything the shadow WAL holds now (taking the generation's snapshot first if
    /// the replica has none). Returns the confirmed position.
    /// </summary>
    public async Task<Position> SyncAsync(CancellationToken ct)
    {
        await _busy.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var target = _capture.Position;
            if (target.IsNone)
            {
                return ConfirmedPosition;
            }

            _lastUploadStart = _time.GetUtcNow();
            if (ConfirmedPosition.Generation != target.Generation)
            {
                await StartGenerationAsync(target.Generation, ct).ConfigureAwait(false);
            }

            await UploadPendingAsync(_capture.Position, ct).ConfigureAwait(false);
            RecordSuccess();
            return ConfirmedPosition;
        }
        catch (ReplicaException e) when (e.Code == ReplicaErrorCode.SegmentCorrupt)
        {
            _capture.StartNewGeneration($"shadow wal failed verification: {e.Message}");
            SetConfirmed(Position.None);
            throw;
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            // Recompute from the store next time: never guess what the store holds.
            SetConfirmed(Position.None);
            throw;
        }
        finally
        {
            _busy.Release();
        }
    }

    /// <summary>Writes a snapshot of the database now and returns its position.</summary>
    public async Task<Position> SnapshotAsync(CancellationToken ct)
    {
        await _busy.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var p = await SnapshotLockedAsync(ct).ConfigureAwait(false);
            RecordSuccess();
            return p;
        }
        finally
        {
            _busy.Release();
        }
    }

    /// <summary>Applies retention once now.</summary>
    public async Task EnforceRetentionAsync(CancellationToken ct)
    {
        await _busy.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await RetainLockedAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _busy.Release();
        }
    }

    private async Task WaitForWorkAsync(TimeSpan backoff, CancellationToken ct)
    {
        if (backoff > TimeSpan.Zero)
        {
            await Task.Delay(backoff, _time, ct).ConfigureAwait(false);
            return;
        }

        if (ConfirmedPosition != _capture.Position)
        {
            return;
        }

        var now = _time.GetUtcNow();
        var next = Min(_nextSnapshot, _nextRetention);
        var wait = next is { } n ? n - now : TimeSpan.FromMinutes(1);
        if (wait > TimeSpan.Zero)
        {
            await _wake.WaitAsync(wait > TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : wait, ct).ConfigureAwait(false);
        }
    }

    private async Task RunTimersAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        if (_nextSnapshot is { } s && now >= s && !ConfirmedPosition.IsNone)
        {
            await SnapshotAsync(ct).ConfigureAwait(false);
        }

        if (_nextRetention is { } r && now >= r)
        {
            await EnforceRetentionAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task StartGenerationAsync(string generation, CancellationToken ct)
    {
        var snapshots = await Client.ListSnapshotsAsync(generation, ct).ConfigureAwait(false);
        Position confirmed;
        if (snapshots.Count == 0)
        {
            SetConfirmed(Position.None);
            await SnapshotLockedAsync(ct).ConfigureAwait(false);
            ScheduleTimers(_time.GetUtcNow());
            return;
        }

        var latest = snapshots.MaxBy(s => s.CreatedAt)!;
        long snapshotIndex = snapshots.Max(s => s.Index);
        var segments = await Client.ListSegmentsAsync(generation, ct).ConfigureAwait(false);
        var last = segments.Where(s => s.Index >= snapshotIndex).LastOrDefault();
        if (last is null)
        {
            confirmed = new Position(generation, snapshotIndex, 0);
        }
        else
        {
            long length = await DecodedLengthAsync(last, ct).ConfigureAwait(false);
            confirmed = new Position(generation, last.Index, last.Offset + length);
        }

        long local = _capture.ShadowLength(generation, confirmed.Index);
        if (local < confirmed.Offset || local < 0)
        {
            _log.Warning($"replica {Name}: replica position {confirmed} is not in the local shadow wal; taking a new snapshot");
            SetConfirmed(Position.None);
            await SnapshotLockedAsync(ct).ConfigureAwait(false);
            ScheduleTimers(_time.GetUtcNow());
            return;
        }

        SetConfirmed(confirmed);
        LastSnapshotAt = latest.CreatedAt;
        _log.Verbose($"replica {Name}: resuming at {confirmed}");
        ScheduleTimers(latest.CreatedAt);
    }

    private void ScheduleTimers(DateTimeOffset lastSnapshot)
    {
        var now = _time.GetUtcNow();
        if (_options.SnapshotInterval > TimeSpan.Zero)
        {
            var next = lastSnapshot + _options.SnapshotInterval;
            _nextSnapshot = next < now ? now : next;
        }

        if (_options.Retention > TimeSpan.Zero && _nextRetention is null)
        {
            var every = _options.RetentionCheckInterval > TimeSpan.Zero && _options.RetentionCheckInterval < _options.Retention
                ? _options.RetentionCheckInterval
                : _options.Retention;
            _nextRetention = now + every;
        }
    }

    private async Task<long> DecodedLengthAsync(SegmentInfo segment, CancellationToken ct)
    {
        await using var raw = await Client.OpenSegmentAsync(segment.Generation, segment.Index, segment.Offset, ct).ConfigureAwait(false);
        await using var decoded = Lz4Frame.Decode(raw);
        var buffer = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = await decoded.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            total += n;
        }

        return total;
    }

    private async Task UploadPendingAsync(Position target, CancellationToken ct)
    {
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var at = ConfirmedPosition;
            if (at.IsNone || at.Generation != target.Generation)
            {
                return;
            }

            long end = _capture.ShadowLength(at.Generation, at.Index);
            if (at.Index == target.Index && end > target.Offset)
            {
                // Only what was there when this sync began: newer commits wait for the next
                // sync interval, so a busy database costs one PUT per interval, not one per commit.
                end = target.Offset;
            }

            if (end < 0 && _capture.Position.Generation != at.Generation)
            {
                // The capture started a new generation (and removed this one's shadow) while
                // this sync ran: the next sync begins the new generation with a snapshot.
                _log.Debug($"replica {Name}: generation {at.Generation} was replaced by {_capture.Position.Generation} during the sync; the next sync takes a snapshot");
                return;
            }

            if (end < 0)
            {
                throw new ReplicaException(ReplicaErrorCode.Internal,
                    $"Shadow WAL index {at.Index:x8} of generation {at.Generation} is gone before replica {Name} copied it; a new snapshot will be taken.", _capture.Meta.Root);
            }

            if (at.Offset < end)
            {
                await UploadSegmentAsync(at, end, ct).ConfigureAwait(false);
                continue;
            }

            if (at.Index < target.Index && _capture.ShadowLength(at.Generation, at.Index + 1) >= 0)
            {
                SetConfirmed(at with { Index = at.Index + 1, Offset = 0 });
                continue;
            }

            return;
        }
    }

    private async Task UploadSegmentAsync(Position start, long end, CancellationToken ct)
    {
        var shadowPath = _capture.Meta.ShadowPath(start.Generation, start.Index);
        if (Lease is not null)
        {
            await Lease.RenewIfDueAsync(ct).ConfigureAwait(false);
        }

        var sw = Stopwatch.StartNew();
        long payload = 0;
        long stored = await Client.WriteSegmentAsync(start.Generation, start.Index, start.Offset, async (dst, token) =>
        {
            await using var lz = Lz4Frame.Encode(dst, leaveOpen: true);
            payload = await SegmentReader.CopyVerifiedAsync(shadowPath, start.Offset, end, lz, token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        SetConfirmed(start with { Offset = end });
        LastConfirmedAt = _time.GetUtcNow();
        _log.Verbose($"replica {Name}: wal segment written position={start} size={payload} stored={stored} elapsed={sw.ElapsedMilliseconds}ms confirmed={ConfirmedPosition}");
    }

    private async Task<Position> SnapshotLockedAsync(CancellationToken ct)
    {
        using var lease = _capture.BeginSnapshot(ct);
        var at = lease.Position;
        bool initial = ConfirmedPosition.Generation != at.Generation;
        if (!initial)
        {
            // Everything the database file may already hold must be in the replica before the
            // snapshot, so a point-in-time restore from this snapshot never mixes page versions.
            await UploadPendingAsync(at, ct).ConfigureAwait(false);
        }

        if (Lease is not null)
        {
            await Lease.RenewIfDueAsync(ct).ConfigureAwait(false);
        }

        var sw = Stopwatch.StartNew();
        _log.Verbose($"replica {Name}: write snapshot position={at}");
        long stored = await Client.WriteSnapshotAsync(at.Generation, at.Index, async (dst, token) =>
        {
            await using var lz = Lz4Frame.Encode(dst, leaveOpen: true);
            await lease.CopyToAsync(lz, token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        LastSnapshotAt = _time.GetUtcNow();
        LastConfirmedAt = LastSnapshotAt;
        _log.Verbose($"replica {Name}: snapshot written position={at} size={stored} elapsed={sw.ElapsedMilliseconds}ms");
        if (initial)
        {
            SetConfirmed(new Position(at.Generation, at.Index, 0));
            // Upload the index's frames at once so that snapshot and first segment are adjacent in time.
            await UploadPendingAsync(at, ct).ConfigureAwait(false);
        }

        if (_options.SnapshotInterval > TimeSpan.Zero)
        {
            _nextSnapshot = LastSnapshotAt + _options.SnapshotInterval;
        }

        return at;
    }

    private async Task RetainLockedAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        _nextRetention = now + (_options.RetentionCheckInterval > TimeSpan.Zero && _options.RetentionCheckInterval < _options.Retention ? _options.RetentionCheckInterval : _options.Retention);
        if (_options.Retention <= TimeSpan.Zero)
        {
            return;
        }

        var current = ConfirmedPosition.Generation;
        var cutoff = now - _options.Retention;
        var generations = await Client.ListGenerationsAsync(ct).ConfigureAwait(false);
        var byGen = new Dictionary<string, IReadOnlyList<SnapshotInfo>>();
        foreach (var g in generations)
        {
            byGen[g] = await Client.ListSnapshotsAsync(g, ct).ConfigureAwait(false);
        }

        if (!byGen.Values.SelectMany(s => s).Any(s => s.CreatedAt >= cutoff))
        {
            _log.Verbose($"replica {Name}: no snapshot younger than the retention period; taking one");
            await SnapshotLockedAsync(ct).ConfigureAwait(false);
            current = ConfirmedPosition.Generation;
            byGen[current] = await Client.ListSnapshotsAsync(current, ct).ConfigureAwait(false);
        }

        foreach (var (generation, snapshots) in byGen)
        {
            var retained = snapshots.Where(s => s.CreatedAt >= cutoff || (generation == current && s.Index == snapshots.Max(x => x.Index))).ToList();
            if (retained.Count == 0)
            {
                if (generation == current)
                {
                    continue;
                }

                await Client.DeleteGenerationAsync(generation, ct).ConfigureAwait(false);
                _log.Verbose($"replica {Name}: retention deleted generation {generation}");
                continue;
            }

            long keepFrom = retained.Min(s => s.Index);
            var oldSnapshots = snapshots.Where(s => s.Index < keepFrom).ToList();
            foreach (var s in oldSnapshots)
            {
                await Client.DeleteSnapshotAsync(generation, s.Index, ct).ConfigureAwait(false);
                Diagnostics.CrashPoints.Hit(Diagnostics.CrashPoints.RetentionDelete);
            }

            // Whole indexes only, each index's offset-0 segment last, so an interrupted run never
            // leaves an index that a reader would take for one with a missing start.
            var segments = (await Client.ListSegmentsAsync(generation, ct).ConfigureAwait(false))
                .Where(s => s.Index < keepFrom)
                .OrderBy(s => s.Index).ThenByDescending(s => s.Offset)
                .ToList();
            if (segments.Count > 0)
            {
                await Client.DeleteSegmentsAsync(segments, ct).ConfigureAwait(false);
            }

            if (oldSnapshots.Count > 0 || segments.Count > 0)
            {
                _log.Verbose($"replica {Name}: retention deleted {oldSnapshots.Count} snapshot(s) and {segments.Count} wal segment(s) of generation {generation} below index {keepFrom:x8}");
            }
        }
    }

    private void SetConfirmed(Position p)
    {
        var captured = _capture.Position;
        var now = _time.GetUtcNow();
        lock (_stateGate)
        {
            _confirmed = p;
            _unconfirmed.Confirmed(p); // None ("ask the store again") confirms nothing
            UpdateBehindLocked(captured, now);
        }
    }

    /// <summary>
    /// BehindSince from the marks; when they know of nothing unconfirmed but the confirmed
    /// position is still short of the captured one (a change not yet notified), the replica is
    /// behind since we know it: it never looks caught up while something is unconfirmed.
    /// </summary>
    private void UpdateBehindLocked(Position captured, DateTimeOffset now)
    {
        bool caughtUp = captured.IsNone || UnconfirmedCommits.Covers(_confirmed, captured);
        if (caughtUp)
        {
            // Marks of other generations are stale here; a mark past the confirmed position (a
            // commit notified after 'captured' was read) is kept and still counts.
            _unconfirmed.ForgetOtherGenerations(_confirmed);
            _behindSince = _unconfirmed.Oldest;
            return;
        }

        _behindSince = _unconfirmed.Oldest ?? _behindSince ?? now;
    }

    private void RecordSuccess()
    {
        LastError = null;
        ConsecutiveFailures = 0;
        var captured = _capture.Position;
        var now = _time.GetUtcNow();
        lock (_stateGate)
        {
            UpdateBehindLocked(captured, now);
        }
    }

    /// <summary>
    /// Bytes the store has not acknowledged yet: the shadow WAL past the confirmed position and,
    /// while the replica has no snapshot of the current generation (the first one, or a new one
    /// after continuity was given up), the database file that snapshot copies.
    /// </summary>
    public long BytesPending()
    {
        var local = _capture.Position;
        var confirmed = ConfirmedPosition;
        if (local.IsNone)
        {
            return 0;
        }

        if (confirmed.IsNone || confirmed.Generation != local.Generation)
        {
            long database = new FileInfo(_capture.DbPath) is { Exists: true } f ? f.Length : 0;
            return database + _capture.ShadowBytes();
        }

        if (confirmed.Index == local.Index)
        {
            return Math.Max(0, local.Offset - confirmed.Offset);
        }

        long pending = Math.Max(0, _capture.ShadowLength(local.Generation, confirmed.Index) - confirmed.Offset) + local.Offset;
        for (long i = confirmed.Index + 1; i < local.Index; i++)
        {
            pending += Math.Max(0, _capture.ShadowLength(local.Generation, i));
        }

        return pending;
    }

    private void RecordFailure(Exception e)
    {
        ConsecutiveFailures++;
        LastError = e.Message;
        _log.Error($"replica {Name}: sync error (attempt {ConsecutiveFailures}): {e.Message}");
    }

    private static DateTimeOffset? Min(DateTimeOffset? a, DateTimeOffset? b) =>
        a is null ? b : b is null ? a : (a < b ? a : b);
}
