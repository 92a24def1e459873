using System.Diagnostics;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replicas.S3;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Status;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Lag is the age of the oldest captured commit the store has not confirmed; the status file's
/// damage is reported as such; empty S3 credentials are refused clearly.
/// </summary>
public class LagAndStatusTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 8, 0, 0, TimeSpan.Zero);

    private sealed class FakeClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = T0;

        public override DateTimeOffset GetUtcNow() => Now;

        public void Advance(double seconds) => Now = Now.AddSeconds(seconds);
    }

    /// <summary>A file replica that can be taken down, and that can run an action while a WAL segment uploads (the application writing meanwhile).</summary>
    private sealed class SwitchableStore(FileReplicaClient inner) : DelegatingReplicaClient(inner)
    {
        public bool Down { get; set; }

        public Action? DuringSegmentUpload { get; set; }

        private void ThrowIfDown()
        {
            if (Down)
            {
                throw new ReplicaException(ReplicaErrorCode.StoreUnreachable, "store is down");
            }
        }

        public override Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct)
        {
            ThrowIfDown();
            return base.ListGenerationsAsync(ct);
        }

        public override Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct)
        {
            ThrowIfDown();
            return base.ListSnapshotsAsync(generation, ct);
        }

        public override Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct)
        {
            ThrowIfDown();
            return base.ListSegmentsAsync(generation, ct);
        }

        public override Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct)
        {
            ThrowIfDown();
            return base.WriteSnapshotAsync(generation, index, writeFramed, ct);
        }

        public override async Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct)
        {
            ThrowIfDown();
            DuringSegmentUpload?.Invoke();
            return await base.WriteSegmentAsync(generation, index, offset, writeFramed, ct);
        }
    }

    [Fact]
    public async Task After_an_outage_lag_is_the_age_of_the_oldest_unconfirmed_commit_even_under_continuous_writes()
    {
        using var db = new TestDb();
        var clock = new FakeClock();
        using var capture = new DatabaseCapture(db.DbPath, new CaptureOptions { CheckpointInterval = TimeSpan.Zero }, NullEngineLog.Instance);
        var store = new SwitchableStore(new FileReplicaClient(db.ReplicaDir));
        var syncer = new ReplicaSyncer(capture, store, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.Zero }, NullEngineLog.Instance, clock);
        capture.Changed += syncer.Notify;
        int next = 0;
        void Commit()
        {
            db.Insert(next, 2, perTx: 2);
            next += 2;
            capture.Sync(default);
        }

        Commit();
        await syncer.SyncAsync(default);
        Assert.Null(syncer.BehindSince);

        // The store goes down at T0+10 while the application keeps committing.
        store.Down = true;
        clock.Advance(10);
        Commit();
        var outageStart = clock.Now;
        Assert.Equal(outageStart, syncer.BehindSince);
        for (int i = 0; i < 5; i++)
        {
            clock.Advance(10);
            Commit();
            await Assert.ThrowsAsync<ReplicaException>(() => syncer.SyncAsync(default));
            // Never caught up while the store confirmed nothing: the failure keeps the oldest commit.
            Assert.Equal(outageStart, syncer.BehindSince);
        }

        // The store is back at T0+100; the backlog uploads while the application commits again
        // (one commit per segment upload, one second later each).
        store.Down = false;
        clock.Advance(40);
        var backlogEnd = capture.Position;
        DateTimeOffset? firstDuringUpload = null;
        store.DuringSegmentUpload = () =>
        {
            store.DuringSegmentUpload = null; // once: the commit captured while the backlog uploads
            clock.Advance(1);
            firstDuringUpload = clock.Now;
            Commit();
        };
        var confirmed = await syncer.SyncAsync(default);

        Assert.Equal(backlogEnd, confirmed);
        Assert.NotEqual(capture.Position, confirmed); // a newer commit is not confirmed yet...
        Assert.NotNull(firstDuringUpload);
        Assert.Equal(firstDuringUpload, syncer.BehindSince); // ...and the lag is its age, not the outage's
        var lag = (clock.Now - syncer.BehindSince!.Value).TotalSeconds;
        Assert.True(lag < 2, $"lag {lag} s after the backlog was confirmed");

        // The next sync confirms it: caught up.
        clock.Advance(1);
        await syncer.SyncAsync(default);
        Assert.Equal(capture.Position, syncer.ConfirmedPosition);
        Assert.Null(syncer.BehindSince);
    }

    [Fact]
    public void Coalesced_capture_marks_keep_the_earlier_time_so_lag_never_looks_shorter()
    {
        var marks = new UnconfirmedCommits();
        const string gen = "0123456789abcdef";
        for (int i = 1; i <= UnconfirmedCommits.MaxMarks + 10; i++)
        {
            marks.Captured(new Position(gen, 0, i * 100), T0.AddSeconds(i));
        }

        Assert.True(marks.Count <= UnconfirmedCommits.MaxMarks);
        Assert.Equal(T0.AddSeconds(1), marks.Oldest);

        // Confirming up to commit k leaves the oldest mark at or before commit k+1's capture time.
        foreach (var k in new[] { 1, 2, 3, 999, 1000, 2500 })
        {
            var copy = new UnconfirmedCommits();
            for (int i = 1; i <= UnconfirmedCommits.MaxMarks + 10; i++)
            {
                copy.Captured(new Position(gen, 0, i * 100), T0.AddSeconds(i));
            }

            copy.Confirmed(new Position(gen, 0, k * 100));
            Assert.NotNull(copy.Oldest);
            Assert.True(copy.Oldest <= T0.AddSeconds(k + 1), $"after confirming {k}: oldest {copy.Oldest}");
        }

        marks.Confirmed(new Position(gen, 0, (UnconfirmedCommits.MaxMarks + 10) * 100));
        Assert.Null(marks.Oldest);
    }

    [Fact]
    public void Confirming_a_newer_generation_drops_the_marks_of_older_ones_but_not_of_its_own_unconfirmed_commits()
    {
        var marks = new UnconfirmedCommits();
        marks.Captured(new Position("1111111111111111", 0, 100), T0);
        marks.Captured(new Position("2222222222222222", 0, 100), T0.AddSeconds(5));
        marks.Captured(new Position("2222222222222222", 0, 200), T0.AddSeconds(6));

        marks.Confirmed(new Position("1111111111111111", 0, 100));
        Assert.Equal(T0.AddSeconds(5), marks.Oldest);
        marks.Confirmed(new Position("2222222222222222", 0, 150));
        Assert.Equal(T0.AddSeconds(6), marks.Oldest);
    }

    private static DatabaseReplicator FileReplicator(TestDb db, CaptureOptions? options = null) =>
        new(db.DbPath, options ?? new CaptureOptions(), [(new FileReplicaClient(db.ReplicaDir), new ReplicaOptions())], new NullLog());

    /// <summary>Runs the replicator while <paramref name="body"/> runs, then stops it and waits for the stop.</summary>
    private static async Task WhileRunningAsync(DatabaseReplicator replicator, Func<Task> body)
    {
        using var cts = new CancellationTokenSource();
        var run = replicator.RunAsync(cts.Token);
        try
        {
            await body();
        }
        finally
        {
            cts.Cancel();
            await run;
        }
    }

    private static async Task WaitForAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, "not reached within 10 s");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task With_a_monitor_interval_longer_than_the_heartbeat_the_status_stays_fresh_and_healthy()
    {
        // The heartbeat is rewritten every second whatever the monitor interval: readers call a
        // status older than three beats stale. It used to be written only at each poll.
        using var db = new TestDb();
        db.Insert(0, 5);
        var options = new CaptureOptions { MonitorInterval = TimeSpan.FromSeconds(10) };
        await using var replicator = FileReplicator(db, options);
        Assert.Equal(TimeSpan.FromSeconds(1), replicator.HeartbeatInterval);
        await WhileRunningAsync(replicator, async () =>
        {
            var meta = replicator.Capture.Meta.Root;
            var stamps = new List<DateTimeOffset>();
            for (int i = 0; i < 5; i++)
            {
                await Task.Delay(1000);
                var state = StatusFile.Read(meta, out var problem);
                Assert.Null(problem);
                Assert.NotNull(state);
                stamps.Add(state!.HeartbeatAt);
                var age = DateTimeOffset.UtcNow - state.HeartbeatAt;
                Assert.True(age < TimeSpan.FromSeconds(2), $"status {age.TotalMilliseconds:0} ms old after {i + 1} s, monitor interval 10 s");
            }

            Assert.True(stamps.Distinct().Count() >= 4, string.Join(", ", stamps));
        });
    }

    [Fact]
    public async Task An_idle_replicator_beats_by_the_status_file_time_and_rewrites_it_on_a_change_or_when_replaced()
    {
        using var db = new TestDb();
        db.Insert(0, 5);
        await using var replicator = FileReplicator(db);
        await WhileRunningAsync(replicator, async () =>
        {
            var meta = replicator.Capture.Meta.Root;
            var path = Path.Combine(meta, ReplicationState.FileName);
            await WaitForAsync(() => StatusFile.Read(meta) is { Replicas: [{ BehindSince: null, ConfirmedPosition: not null }] });

            // Idle: the content (and its JSON heartbeatAt) stays as written, the heartbeat
            // readers see moves on with the file's modification time.
            await Task.Delay(1200);
            var written = ReplicationState.FromJson(File.ReadAllText(path))!;
            var first = StatusFile.Read(meta)!.HeartbeatAt;
            await Task.Delay(2200);
            Assert.Equal(written.HeartbeatAt, ReplicationState.FromJson(File.ReadAllText(path))!.HeartbeatAt);
            var later = StatusFile.Read(meta, out var problem);
            Assert.Null(problem);
            Assert.True(later!.HeartbeatAt >= first.AddSeconds(1.5), $"heartbeat {first:O} then {later.HeartbeatAt:O}");
            Assert.True(DateTimeOffset.UtcNow - later.HeartbeatAt < TimeSpan.FromSeconds(2));

            // A change is written in full at once (within a look), not only touched.
            var before = written.LocalPosition;
            db.Insert(5, 5);
            await WaitForAsync(() => ReplicationState.FromJson(File.ReadAllText(path)) is { } s && s.LocalPosition != before);

            // A file replaced behind its back (garbage here) is never kept fresh: rewritten at the next beat.
            File.WriteAllText(path, "not a status");
            Assert.Null(StatusFile.Read(meta, out problem));
            Assert.NotNull(problem);
            await WaitForAsync(() => StatusFile.Read(meta, out _) is not null);
        });
    }

    [Fact]
    public void The_status_file_is_touched_only_while_it_is_the_one_left_there()
    {
        using var db = new TestDb();
        var path = Path.Combine(db.Dir, ReplicationState.FileName);
        Assert.False(StatusFile.TryTouch(path, DateTime.UtcNow, out _));
        File.WriteAllText(path, "{}");
        var left = File.GetLastWriteTimeUtc(path);
        Assert.False(StatusFile.TryTouch(path, default, out _));
        Assert.False(StatusFile.TryTouch(path, left.AddTicks(-1), out _));
        Thread.Sleep(20);
        Assert.True(StatusFile.TryTouch(path, left, out var touched));
        Assert.True(touched > left);
        Assert.Equal(touched, File.GetLastWriteTimeUtc(path));
        Assert.False(StatusFile.TryTouch(path, left, out _));
    }

    [Fact]
    public async Task The_monitor_loop_blocks_on_a_thread_of_its_own_outside_the_pool_and_ends_at_stop()
    {
        // Idle CPU: on the thread pool every beat's wake-up ended with the workers spinning.
        using var db = new TestDb();
        db.Insert(0, 5);
        await using var replicator = FileReplicator(db);
        await WhileRunningAsync(replicator, async () =>
        {
            var thread = replicator.MonitorThread;
            Assert.NotNull(thread);
            Assert.False(thread!.IsThreadPoolThread);
            Assert.True(thread.IsBackground);

            // It still looks: a write made now reaches the replica.
            var before = replicator.Syncers[0].ConfirmedPosition;
            db.Insert(5, 5);
            await WaitForAsync(() => replicator.Syncers[0].ConfirmedPosition != before);
            Assert.NotEqual(before, replicator.Syncers[0].ConfirmedPosition);
            Assert.True(thread.IsAlive);
        });

        Assert.True(replicator.MonitorThread!.Join(TimeSpan.FromSeconds(5)), "the monitor thread outlived the stop");
    }

    [Fact]
    public async Task An_idle_database_wakes_its_monitor_once_a_beat()
    {
        // Idle CPU: each wake costs a context switch and a pass through the loop. Timed on the
        // coarse Environment.TickCount64, every beat woke the thread two or three times (the
        // clock had not yet reached the beat when the wait ended). A slow machine wakes it less
        // often, never more.
        using var db = new TestDb();
        db.Insert(0, 5);
        await using var replicator = FileReplicator(db);
        await WhileRunningAsync(replicator, async () =>
        {
            await WaitForAsync(() => replicator.Syncers[0].ConfirmedPosition == replicator.Capture.Position && !replicator.Capture.Position.IsNone);
            await Task.Delay(1500);
            long before = replicator.MonitorWakes;
            await Task.Delay(4000);
            long wakes = replicator.MonitorWakes - before;
            Assert.InRange(wakes, 1, 6);
        });
    }

    [Fact]
    public void Every_database_of_a_process_wakes_on_the_same_beat()
    {
        var interval = TimeSpan.FromMilliseconds(1000);
        long period = Stopwatch.Frequency;
        long ms = Stopwatch.Frequency / 1000;
        for (int i = 0; i < 20; i++)
        {
            long before = Stopwatch.GetTimestamp();
            var until = DatabaseReplicator.UntilNextBeat(interval);
            long after = Stopwatch.GetTimestamp();
            Assert.InRange(until, TimeSpan.FromMilliseconds(1), interval);

            // The beat it points at is a multiple of the interval on the monotonic clock that waits
            // time out on, whichever moment (and so whichever database) asked; rounded up to the
            // millisecond, so a wait of that length never ends before the beat.
            long untilTicks = (long)until.TotalMilliseconds * ms;
            long beat = (after + untilTicks) / period * period;
            Assert.True(beat >= before + untilTicks - ms && beat <= after + untilTicks,
                $"{until.TotalMilliseconds} ms from {before}..{after} is not on the shared beat");
            Thread.Sleep(37);
        }
    }

    [Fact]
    public void A_corrupt_status_file_is_reported_as_corrupt_not_as_no_replicator_and_stays_unhealthy()
    {
        using var db = new TestDb();
        var meta = MetaDirectory.DefaultFor(db.DbPath);
        Directory.CreateDirectory(meta);
        var now = T0;

        // No file: nobody published.
        Assert.Null(StatusFile.Read(meta, out var none));
        Assert.Null(none);
        var missing = HealthEvaluator.Evaluate(null, null, now, processAlive: false, TimeSpan.FromSeconds(3), none);
        Assert.False(missing.Healthy);
        Assert.Contains("no status published", missing.Reason, StringComparison.Ordinal);

        foreach (var garbage in new[] { "\u0001\u0002 not json at all", "{\"version\": 1, \"processId\": 12", "[]", "null", "{}" })
        {
            File.WriteAllText(Path.Combine(meta, ReplicationState.FileName), garbage);
            Assert.Null(StatusFile.Read(meta, out var problem));
            Assert.NotNull(problem);
            var h = HealthEvaluator.Evaluate(null, null, now, processAlive: false, TimeSpan.FromSeconds(3), problem);
            Assert.False(h.Healthy);
            Assert.Contains("corrupt", h.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain("no status published", h.Reason, StringComparison.Ordinal);
        }

        // A real one reads back.
        File.WriteAllText(Path.Combine(meta, ReplicationState.FileName), new ReplicationState { Host = Environment.MachineName, ProcessId = 1 }.ToJson());
        Assert.NotNull(StatusFile.Read(meta, out var ok));
        Assert.Null(ok);
    }

    [Theory]
    [InlineData("AKIAEXAMPLE", "")]
    [InlineData("", "some-secret-value")]
    public void Empty_s3_credentials_are_InvalidArgument_and_name_neither_key(string id, string secret)
    {
        var e = Assert.Throws<ReplicaException>(() => new S3ReplicaClient(
            new S3ReplicaOptions { Bucket = "bucket", Endpoint = "https://127.0.0.1:9", Credentials = new Credentials(id, secret) }, NullEngineLog.Instance));
        Assert.Equal(ReplicaErrorCode.InvalidArgument, e.Code);
        Assert.Contains("-Credential", e.Message, StringComparison.Ordinal);
        if (id.Length > 0)
        {
            Assert.DoesNotContain(id, e.Message, StringComparison.Ordinal);
        }

        if (secret.Length > 0)
        {
            Assert.DoesNotContain(secret, e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("notaurl")]
    [InlineData("http://")]
    [InlineData("ftp://127.0.0.1:21")]
    public void An_s3_endpoint_that_is_not_an_http_url_is_InvalidArgument(string endpoint)
    {
        var e = Assert.Throws<ReplicaException>(() => new S3ReplicaClient(
            new S3ReplicaOptions { Bucket = "bucket", Endpoint = endpoint, Credentials = new Credentials("id", "secret") }, NullEngineLog.Instance));
        Assert.Equal(ReplicaErrorCode.InvalidArgument, e.Code);
        Assert.Contains("https://", e.Message, StringComparison.Ordinal);
    }
}
