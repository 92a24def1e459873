using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replication;

namespace SqliteReplica.Engine.Tests;

public class ShadowCapTests
{
    /// <summary>A store that is down: every call fails as unreachable.</summary>
    private sealed class DownStore : IReplicaClient
    {
        public string Type => "down";

        public string Url => "down://store";

        private static Exception Down() => new ReplicaException(ReplicaErrorCode.StoreUnreachable, "store is down");

        public Task CheckWritableAsync(CancellationToken ct) => Task.CompletedTask;

        public Task<IReplicaLease> AcquireLeaseAsync(LeaseOwner owner, CancellationToken ct) => Task.FromResult<IReplicaLease>(new NoLease());

        private sealed class NoLease : IReplicaLease
        {
            public Task RenewIfDueAsync(CancellationToken ct) => Task.CompletedTask;

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }

        public Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct) => throw Down();

        public Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct) => throw Down();

        public Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct) => throw Down();

        public Task<Stream> OpenSnapshotAsync(string generation, long index, CancellationToken ct) => throw Down();

        public Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct) => throw Down();

        public Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) => throw Down();

        public Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) => throw Down();

        public Task DeleteSnapshotAsync(string generation, long index, CancellationToken ct) => throw Down();

        public Task DeleteSegmentsAsync(IReadOnlyList<SegmentInfo> segments, CancellationToken ct) => throw Down();

        public Task DeleteGenerationAsync(string generation, CancellationToken ct) => throw Down();
    }

    /// <summary>Monitor every 50 ms, no checkpoint by age; with a cap, the cap alone (no multiple of the database).</summary>
    private static CaptureOptions Options(long? cap)
    {
        var options = new CaptureOptions { MonitorInterval = TimeSpan.FromMilliseconds(50), CheckpointInterval = TimeSpan.Zero };
        return cap is { } c ? options with { ShadowCapMinimumBytes = c, ShadowCapDatabaseMultiple = 0 } : options;
    }

    /// <summary>A replicator whose one replica is the store that is down, synced every 50 ms.</summary>
    private static DatabaseReplicator AgainstDownStore(TestDb db, CaptureOptions options, IEngineLog log) =>
        new(db.DbPath, options, [(new DownStore(), new ReplicaOptions { SyncInterval = TimeSpan.FromMilliseconds(50) })], log);

    private static async Task UntilCapturing(DatabaseReplicator replicator)
    {
        while (replicator.Capture.Position.IsNone)
        {
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task With_the_store_down_the_shadow_wal_stays_under_its_cap_and_the_application_is_not_blocked()
    {
        using var db = new TestDb();
        var log = new ListLog();
        const long cap = 128 * 1024;
        var options = Options(cap);
        await using var replicator = AgainstDownStore(db, options, log);
        using var cts = new CancellationTokenSource();
        var run = replicator.RunAsync(cts.Token);

        long maxShadow = 0;
        for (int i = 0; i < 40; i++)
        {
            db.Insert(i * 10, 10, perTx: 10, blobBytes: 1000); // never blocked: plain inserts keep working
            await Task.Delay(60);
            maxShadow = Math.Max(maxShadow, replicator.Capture.ShadowBytes());
        }

        await Task.Delay(300);
        cts.Cancel();
        await run;

        Assert.True(log.Contains("reached its cap"), string.Join("\n", log.Lines.TakeLast(20)));
        // The message says how far the replicas got: here nowhere (the store is down).
        Assert.Contains(log.Lines, l => l.Contains("reached its cap") && l.Contains("replicas confirmed at (none) and the WAL copied to "));
        Assert.NotNull(replicator.ContinuityGivenUpAt);
        // Bounded: the cap plus what one monitor step can add before it is enforced.
        Assert.True(maxShadow < cap * 2, $"shadow WAL grew to {maxShadow} bytes (cap {cap})");
        Assert.Equal(400, TestDb.Count(db.DbPath));
    }

    [Fact]
    public async Task Past_the_cap_a_new_generation_starts_from_an_emptied_wal_even_under_an_application_that_writes_without_pause()
    {
        // No routine checkpoint restarts the WAL here, so at the cap the live WAL is as large as
        // the shadow. SQLite's own TRUNCATE checkpoint waits for the write lock in its busy
        // handler, which an application committing without pause takes again at once: it gave up
        // busy, and the new generation began with a copy of that whole WAL (past the cap again).
        using var db = new TestDb();
        var log = new ListLog();
        const long cap = 2L << 20;
        var options = Options(cap) with { MinCheckpointPageCount = int.MaxValue, MaxCheckpointPageCount = 0 };
        await using var replicator = AgainstDownStore(db, options, log);
        using var cts = new CancellationTokenSource();
        var run = replicator.RunAsync(cts.Token);
        await UntilCapturing(replicator);

        using var stopWriter = new CancellationTokenSource();
        long written = 0;
        var writer = Task.Run(() =>
        {
            using var c = db.Open();
            TestDb.Exec(c, "PRAGMA busy_timeout = 5000");
            using var cmd = c.CreateCommand();
            cmd.CommandText = "INSERT INTO t (v, b) VALUES ('tight', randomblob(1000))";
            while (!stopWriter.IsCancellationRequested)
            {
                cmd.ExecuteNonQuery();
                written++;
            }
        });

        var started = new System.Text.RegularExpressions.Regex(@"started \(reason: shadow WAL cap reached[^)]*\) at [0-9a-f]{16}/00000000:(\d+)");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var offsets = new List<long>();
        while (offsets.Count < 3 && clock.Elapsed < TimeSpan.FromSeconds(30) && !writer.IsCompleted)
        {
            await Task.Delay(20);
            lock (log.Lines)
            {
                offsets = log.Lines.Select(l => started.Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).ToList();
            }
        }

        stopWriter.Cancel();
        await writer;
        cts.Cancel();
        await run;

        Assert.True(offsets.Count >= 3, $"the cap started {offsets.Count} generation(s) in 30 s ({written} commits)\n{string.Join("\n", log.Lines.TakeLast(30))}");
        // Each began with a few frames of the restarted WAL, not with the cap's worth again.
        // What the application commits between the restart and the copy is in it too: beside two
        // busy loops on 2 cores, up to about 1,000 of its commits (4 MB), when it restarted the
        // WAL itself right after our checkpoint and our thread waited for a core. The old code's
        // generations began with 33-59 MB.
        Assert.All(offsets, o => Assert.True(o < cap * 4, $"a new generation began with {o} bytes of WAL (cap {cap}); offsets {string.Join(", ", offsets)}\n{string.Join("\n", log.Lines.Where(l => l.Contains("generation") || l.Contains("checkpoint")).TakeLast(30))}"));
        Assert.Equal(written, TestDb.Count(db.DbPath));
    }

    [Fact]
    public async Task While_a_snapshot_is_being_taken_the_cap_is_reported_as_waiting_and_continuity_is_given_up_after_it()
    {
        // A snapshot's position is in the current generation, so continuity cannot be given up
        // while one is taken. Before, the log said "continuity given up" and the status gave a
        // time for it at every look of such a snapshot, while nothing was given up.
        using var db = new TestDb();
        var log = new ListLog();
        const long cap = 128 * 1024;
        var options = Options(cap);
        await using var replicator = AgainstDownStore(db, options, log);
        using var cts = new CancellationTokenSource();
        var run = replicator.RunAsync(cts.Token);
        await UntilCapturing(replicator);

        var lease = replicator.Capture.BeginSnapshot(default);
        var generation = lease.Position.Generation;
        for (int i = 0; i < 20; i++)
        {
            db.Insert(i * 10, 10, perTx: 10, blobBytes: 1000);
            await Task.Delay(60);
        }

        Assert.True(replicator.Capture.ShadowBytes() > cap, $"the shadow holds {replicator.Capture.ShadowBytes()} bytes (cap {cap})");
        Assert.Null(replicator.ContinuityGivenUpAt);
        Assert.False(log.Contains("continuity given up"), log.ToString());
        Assert.Equal(generation, replicator.Capture.Position.Generation);
        lock (log.Lines)
        {
            Assert.Single(log.Lines, l => l.Contains("reached its cap") && l.Contains("while a snapshot is being taken"));
        }

        lease.Dispose();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (replicator.ContinuityGivenUpAt is null && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20);
        }

        cts.Cancel();
        await run;
        Assert.NotNull(replicator.ContinuityGivenUpAt);
        Assert.NotEqual(generation, replicator.Capture.Position.Generation);
        Assert.True(log.Contains("continuity given up"), log.ToString());
    }

    [Fact]
    public async Task Until_the_replica_holds_a_snapshot_of_the_generation_its_backlog_counts_the_database_file()
    {
        // A generation's first upload is a snapshot of the database file: a replica without it
        // is that far behind, however few WAL bytes the new generation holds (after continuity
        // was given up, a few KB). The status said only the latter.
        using var db = new TestDb();
        db.Insert(0, 300, perTx: 50, blobBytes: 1000);
        using (var c = db.Open())
        {
            TestDb.Exec(c, "PRAGMA wal_checkpoint(TRUNCATE)");
        }

        long databaseBytes = new FileInfo(db.DbPath).Length;
        Assert.True(databaseBytes > 300_000, $"the database file holds {databaseBytes} bytes");
        var options = Options(cap: null);
        await using var replicator = AgainstDownStore(db, options, new NullLog());
        using var cts = new CancellationTokenSource();
        var run = replicator.RunAsync(cts.Token);
        await UntilCapturing(replicator);

        db.Insert(1000, 3);
        replicator.Capture.Sync(default, force: true);
        long pending = replicator.Syncers[0].BytesPending();
        long shadow = replicator.Capture.ShadowBytes();
        cts.Cancel();
        await run;
        Assert.True(pending >= databaseBytes + shadow, $"{pending} bytes pending; the database file holds {databaseBytes}, the shadow {shadow}");
    }

    [Fact]
    public async Task A_copy_that_would_take_the_shadow_past_its_cap_gives_up_continuity_before_it_is_made()
    {
        // The cap was checked only after each look's copy: a transaction larger than the cap was
        // first copied whole into a shadow that was then thrown away, the shadow passing its cap
        // by all of it.
        using var db = new TestDb();
        var log = new ListLog();
        const long cap = 1L << 20;
        var options = Options(cap);
        await using var replicator = AgainstDownStore(db, options, log);
        using var cts = new CancellationTokenSource();
        var run = replicator.RunAsync(cts.Token);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // After the syncer's first failure it backs off for a second: no snapshot lease (which
        // holds the cap off) is taken while the transaction below is looked at.
        while ((replicator.Capture.Position.IsNone || replicator.Syncers[0].ConsecutiveFailures == 0) && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(5);
        }

        var generation = replicator.Capture.Position.Generation;
        db.Insert(0, 4000, perTx: 4000, blobBytes: 1000);
        while (replicator.ContinuityGivenUpAt is null && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(10);
        }

        cts.Cancel();
        await run;
        string line;
        lock (log.Lines)
        {
            line = log.Lines.Single(l => l.Contains("reached its cap"));
        }

        var m = System.Text.RegularExpressions.Regex.Match(line, @"reached its cap \((\d+) bytes and (\d+) more to copy > (\d+)\)");
        Assert.True(m.Success, line);
        Assert.True(long.Parse(m.Groups[1].Value) < cap, line);
        Assert.True(long.Parse(m.Groups[2].Value) > 4_000_000, line);
        Assert.NotEqual(generation, replicator.Capture.Position.Generation);
        Assert.True(replicator.Capture.ShadowBytes() < cap / 4, $"the new generation's shadow holds {replicator.Capture.ShadowBytes()} bytes");
        Assert.Equal(4000, TestDb.Count(db.DbPath));
    }
}
