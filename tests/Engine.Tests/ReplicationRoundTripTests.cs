using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Tests;

public class ReplicationRoundTripTests
{
    private static (DatabaseCapture Capture, ReplicaSyncer Syncer, FileReplicaClient Client) Start(TestDb db, ListLog log, CaptureOptions? options = null)
    {
        var capture = new DatabaseCapture(db.DbPath, options ?? new CaptureOptions(), log);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero }, log);
        return (capture, syncer, client);
    }

    private static async Task<RestoreResult> Restore(IReplicaClient client, string output, long? index = null)
    {
        return await new Restorer(client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output, Index = index }, null, CancellationToken.None);
    }

    [Fact]
    public async Task Restore_equals_source_across_several_wal_indexes()
    {
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = Start(db, log);
        using (capture)
        {
            db.Insert(0, 50);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            for (int round = 0; round < 3; round++)
            {
                db.Insert(100 + round * 100, 40, perTx: 3);
                capture.Checkpoint(CheckpointMode.Restart, default);
                db.Insert(150 + round * 100, 10);
                capture.Sync(default);
                await syncer.SyncAsync(default);
            }

            Assert.True(capture.Position.Index >= 3, string.Join("\n", log.Lines));
            Assert.Equal(capture.Position, syncer.ConfirmedPosition);
        }

        var output = Path.Combine(db.Dir, "restored.db");
        var result = await Restore(client, output);
        Assert.Equal("ok", TestDb.IntegrityCheck(output));
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
        Assert.True(result.IndexesApplied >= 4);
        Assert.False(File.Exists(output + "-wal") && new FileInfo(output + "-wal").Length > 0);
        Assert.Empty(Directory.GetFiles(db.Dir, "*restore-tmp*"));
    }

    /// <summary>
    /// Replicates what <paramref name="insert"/> wrote, then one index of <paramref name="rewrites"/>
    /// (the application's own connection), restores, and checks the copy equals the source.
    /// </summary>
    private static async Task AssertRestoredEqualAfterRewrites(TestDb db, Action insert, long expectedRows, params string[] rewrites)
    {
        var log = new ListLog();
        var (capture, syncer, client) = Start(db, log);
        using (capture)
        {
            insert();
            capture.Sync(default);
            await syncer.SyncAsync(default);
            using (var c = db.Open())
            {
                foreach (var sql in rewrites)
                {
                    TestDb.Exec(c, sql);
                }
            }

            capture.Sync(default);
            await syncer.SyncAsync(default);
            Assert.Equal(capture.Position, syncer.ConfirmedPosition);
        }

        var output = Path.Combine(db.Dir, "restored.db");
        await Restore(client, output);
        Assert.Equal("ok", TestDb.IntegrityCheck(output));
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
        Assert.Equal(expectedRows, TestDb.Count(output));
    }

    [Fact]
    public async Task Restore_equals_source_when_an_index_rewrites_long_runs_of_pages_and_the_database_shrinks()
    {
        // Runs of consecutive pages longer than one gathered write (1 MiB = 256 pages of 4 KiB),
        // pages written twice in one index (the newest must win), scattered single pages, and a
        // VACUUM that makes the database smaller than pages the WAL still holds.
        using var db = new TestDb();
        await AssertRestoredEqualAfterRewrites(db, () => db.Insert(0, 1200, perTx: 400, blobBytes: 3000), 900L,
            "UPDATE t SET b = randomblob(3000) WHERE id < 700",
            "UPDATE t SET b = randomblob(3000) WHERE id BETWEEN 100 AND 300",
            "UPDATE t SET b = randomblob(2000) WHERE id % 97 = 0",
            "DELETE FROM t WHERE id >= 900",
            "VACUUM");
    }

    [Fact]
    public async Task Restore_equals_source_with_512_byte_pages_rewritten_in_long_runs()
    {
        // The smallest page size: 1 MiB of spool holds about 1950 frames, more pages than one
        // gathered write is given (512), so long runs of consecutive pages are written in parts.
        using var db = new TestDb(pageSize: 512);
        await AssertRestoredEqualAfterRewrites(db, () => db.Insert(0, 3000, perTx: 3000, blobBytes: 300), 3000L,
            "UPDATE t SET b = randomblob(300)");
    }

    /// <summary>Inserts rows <paramref name="from"/> to <paramref name="to"/> of t2, each with a random blob.</summary>
    private static string InsertT2(int from, int to, int blobBytes) =>
        $"INSERT INTO t2 WITH RECURSIVE s(v) AS (SELECT {from} UNION ALL SELECT v + 1 FROM s WHERE v < {to}) SELECT v, randomblob({blobBytes}) FROM s";

    /// <summary>
    /// Replicates one index per step (each step runs on the application's connection, then the
    /// WAL restarts), restores from the local replica through an <see cref="ObservedStore"/>, and
    /// checks the copy equals the source.
    /// </summary>
    private static async Task<(ObservedStore Store, IReadOnlyList<SegmentInfo> Segments)> RestoreEqualAfterIndexes(TestDb db, params Action<Microsoft.Data.Sqlite.SqliteConnection>[] steps)
    {
        var log = new ListLog();
        var (capture, syncer, client) = Start(db, log);
        string generation;
        using (capture)
        {
            for (int i = 0; i < steps.Length; i++)
            {
                using (var c = db.Open())
                {
                    steps[i](c);
                }

                capture.Sync(default);
                await syncer.SyncAsync(default);
                if (i < steps.Length - 1)
                {
                    capture.Checkpoint(CheckpointMode.Restart, default);
                }
            }

            Assert.Equal(steps.Length - 1, capture.Position.Index);
            Assert.Equal(capture.Position, syncer.ConfirmedPosition);
            generation = capture.Position.Generation;
        }

        var store = new ObservedStore(client, localReads: true);
        var output = Path.Combine(db.Dir, "restored.db");
        var result = await new Restorer(store, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, CancellationToken.None);
        Assert.Equal(steps.Length, result.IndexesApplied);
        Assert.Equal("ok", TestDb.IntegrityCheck(output));
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
        return (store, await client.ListSegmentsAsync(generation, default));
    }

    [Fact]
    public async Task A_local_restore_reads_again_only_the_segments_that_hold_a_page_s_newest_version()
    {
        // The last index is a VACUUM, which writes every page of the database again: nothing of
        // the first two indexes survives it, so their segments are read once (verified) and not
        // a second time, while the last index's are read twice (verified, then applied).
        using var db = new TestDb();
        var (store, segments) = await RestoreEqualAfterIndexes(db,
            c => TestDb.Exec(c, "CREATE TABLE IF NOT EXISTS t2 (id INTEGER PRIMARY KEY, b BLOB); " + InsertT2(1, 300, 500)),
            c => TestDb.Exec(c, "UPDATE t2 SET b = randomblob(500) WHERE id % 2 = 0; " + InsertT2(301, 400, 500)),
            c => TestDb.Exec(c, "VACUUM"));
        Assert.Equal(new long[] { 0, 1, 2 }, segments.Select(s => s.Index).Distinct().Order().ToArray());
        foreach (var s in segments)
        {
            Assert.Equal(s.Index == 2 ? 2 : 1, store.Opens(s.Index, s.Offset));
        }
    }

    [Fact]
    public async Task A_local_restore_equals_the_source_when_an_index_shrinks_the_database_and_a_later_one_grows_it_again()
    {
        // Index 1 cuts the database (newest versions of index 0 above the cut must not come back),
        // index 2 grows it past the old size again without rewriting every page index 0 wrote,
        // and index 3 rewrites some pages of index 0's that index 1 kept.
        using var db = new TestDb();
        var (store, segments) = await RestoreEqualAfterIndexes(db,
            c => TestDb.Exec(c, "CREATE TABLE IF NOT EXISTS t2 (id INTEGER PRIMARY KEY, b BLOB); " + InsertT2(1, 600, 700)),
            c => TestDb.Exec(c, "DELETE FROM t2 WHERE id > 150; VACUUM"),
            c => TestDb.Exec(c, InsertT2(151, 900, 900)),
            c => TestDb.Exec(c, "UPDATE t2 SET b = randomblob(700) WHERE id BETWEEN 20 AND 60"));
        Assert.Equal(4, segments.Select(s => s.Index).Distinct().Count());
        Assert.Contains(segments, s => store.Opens(s.Index, s.Offset) == 2);
    }

    /// <summary>One WAL index of <paramref name="segments"/> segments (a commit each), replicated.</summary>
    private static async Task<(FileReplicaClient Client, string Generation)> OneIndexOfManySegments(TestDb db, int segments)
    {
        var (capture, syncer, client) = Start(db, new ListLog());
        using (capture)
        {
            for (int i = 0; i < segments; i++)
            {
                db.Insert(i, 1);
                capture.Sync(default);
                await syncer.SyncAsync(default);
            }

            Assert.Equal(0, capture.Position.Index);
            return (client, capture.Position.Generation);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_remote_store_is_asked_for_several_segments_of_an_index_at_once_and_every_stream_is_closed(bool localReads)
    {
        using var db = new TestDb();
        var (client, generation) = await OneIndexOfManySegments(db, 12);
        Assert.Equal(12, (await client.ListSegmentsAsync(generation, default)).Count);
        var store = new ObservedStore(client, localReads) { Delay = TimeSpan.FromMilliseconds(30) };
        var output = Path.Combine(db.Dir, "restored.db");
        await new Restorer(store, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, CancellationToken.None);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
        if (localReads)
        {
            // Local files are not read ahead; the second reading runs a segment per core.
            Assert.InRange(store.MostInFlight, 1, Math.Min(4, Math.Max(1, Environment.ProcessorCount)));
        }
        else
        {
            Assert.Equal(4, store.MostInFlight);
        }

        Assert.Equal(0, store.StillOpen);
    }

    [Fact]
    public async Task Segments_opened_ahead_of_a_missing_one_are_closed_and_the_restore_stops_there_with_allow_partial()
    {
        using var db = new TestDb();
        var (client, generation) = await OneIndexOfManySegments(db, 12);
        var list = await client.ListSegmentsAsync(generation, default);
        var store = new ObservedStore(client, localReads: false) { Delay = TimeSpan.FromMilliseconds(30), FailAt = list[5].Offset };
        var output = Path.Combine(db.Dir, "restored.db");
        var result = await new Restorer(store, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output, AllowPartial = true }, null, CancellationToken.None);
        Assert.True(result.Partial);
        Assert.Equal(5, result.SegmentsApplied);
        Assert.Equal(5, TestDb.Count(output));
        // Segments 6 and after were being opened when segment 5 failed: none stays open.
        Assert.Equal(0, store.StillOpen);
    }

    [Theory]
    [InlineData(CheckpointMode.Truncate)]
    [InlineData(CheckpointMode.Restart)]
    public async Task A_commit_that_lands_while_a_truncate_checkpoint_waits_for_the_write_lock_is_not_lost(CheckpointMode mode)
    {
        // The application holds the write lock longer than the capture's busy timeout, so the
        // managed checkpoint cannot take it and falls back to SQLite's own checkpoint, which
        // waits for it with our read let go. The application's commit (a row on a page nothing
        // written later touches again) lands in that wait. SQLite's TRUNCATE mode would move it
        // into the database file, empty the WAL and report 0 frames: the commit was lost from
        // the replica without a trace. It must be in the replica: SQLite's RESTART leaves the
        // frames in the WAL until a write restarts it, and they are copied before ours does (so
        // without a new generation, although that write also shrinks the WAL file).
        using var db = new TestDb();
        db.Insert(0, 300, perTx: 300, blobBytes: 500);
        var log = new ListLog();
        var (capture, syncer, client) = Start(db, log, new CaptureOptions { BusyTimeout = TimeSpan.FromMilliseconds(500) });
        using (capture)
        {
            capture.Sync(default);
            await syncer.SyncAsync(default);
            using var app = db.Open();
            TestDb.Exec(app, "BEGIN IMMEDIATE");
            TestDb.Exec(app, "UPDATE t SET v = 'landed during the checkpoint' WHERE id = 150");
            // The commit lands 100 ms into SQLite's RESTART, whose busy handler waits up to the
            // 500 ms busy timeout. It was timed by a fixed 700 ms from the start, which on a busy
            // machine could fall after the RESTART had given up (CI, once): the commit then landed
            // while our write waited, unbackfilled, and that write could not restart the WAL.
            var restartWaits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            capture.BeforeCheckpointTry = (m, tries) =>
            {
                if (m == CheckpointMode.Restart)
                {
                    restartWaits.TrySetResult();
                }
            };
            var commit = Task.Run(async () =>
            {
                await Task.WhenAny(restartWaits.Task, Task.Delay(TimeSpan.FromSeconds(10)));
                await Task.Delay(100);
                TestDb.Exec(app, "COMMIT");
            });
            long before = new FileInfo(db.DbPath + "-wal").Length;
            capture.Checkpoint(mode, default);
            await commit;
            Assert.True(restartWaits.Task.IsCompleted, "the managed checkpoint did not fall back to SQLite's RESTART");
            if (mode == CheckpointMode.Truncate)
            {
                // The fallback's own write restarted the WAL and cut its file.
                long after = new FileInfo(db.DbPath + "-wal").Length;
                Assert.True(after < before, $"the WAL file kept {after} of {before} bytes\n{string.Join("\n", log.Lines)}");
            }

            capture.Sync(default);
            await syncer.SyncAsync(default);
            Assert.Equal(capture.Position, syncer.ConfirmedPosition);
        }

        Assert.Contains(log.Lines, l => l.Contains("write lock stayed busy"));
        Assert.True(!log.Lines.Any(l => l.Contains("new generation") && !l.Contains("no generation exists")), string.Join("\n", log.Lines));
        var output = Path.Combine(db.Dir, "restored.db");
        await Restore(client, output);
        Assert.Equal("ok", TestDb.IntegrityCheck(output));
        Assert.True(TestDb.Digest(db.DbPath) == TestDb.Digest(output), string.Join("\n", log.Lines));
    }

    /// <summary>Replicates 50 rows, then commits 20 more and copies them, so that a checkpoint has frames to backfill.</summary>
    private static async Task<(DatabaseCapture Capture, ReplicaSyncer Syncer, FileReplicaClient Client)> StartWithFramesToCheckpoint(TestDb db, ListLog log, CaptureOptions? options = null)
    {
        db.Insert(0, 50);
        var started = Start(db, log, options);
        try
        {
            started.Capture.Sync(default);
            await started.Syncer.SyncAsync(default);
            db.Insert(50, 20);
            started.Capture.Sync(default);
            return started;
        }
        catch
        {
            started.Capture.Dispose();
            throw;
        }
    }

    /// <summary>Rows 70 to 79, replicated: the replica is confirmed up to the capture's position.</summary>
    private static async Task ReplicateTenMore(TestDb db, DatabaseCapture capture, ReplicaSyncer syncer)
    {
        db.Insert(70, 10);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        Assert.Equal(capture.Position, syncer.ConfirmedPosition);
    }

    private static uint WalSalt1(TestDb db) => WalHeader.Parse(File.ReadAllBytes(db.DbPath + "-wal").AsSpan(0, WalHeader.Size)).Salt1;

    /// <summary>The application's commit restarted the WAL once, the capture followed it without a new generation, and the replica restores equal.</summary>
    private static async Task AssertOneRestartFollowedAndRestoresEqual(TestDb db, IReplicaClient client, ListLog log, bool restartedInTheInstant, long rows)
    {
        Assert.True(restartedInTheInstant, "the application's commit did not restart the WAL: the test did not reach its case\n" + string.Join("\n", log.Lines));
        AssertNoNewGeneration(log);
        await AssertRestoresEqual(db, client, rows);
    }

    /// <summary>No generation was started after the first one.</summary>
    private static void AssertNoNewGeneration(ListLog log) =>
        Assert.True(!log.Lines.Any(l => l.Contains("new generation") && !l.Contains("no generation exists")), string.Join("\n", log.Lines));

    /// <summary>The replica restores to a copy equal to the source, with <paramref name="rows"/> rows.</summary>
    private static async Task AssertRestoresEqual(TestDb db, IReplicaClient client, long rows)
    {
        var output = Path.Combine(db.Dir, "restored.db");
        await Restore(client, output);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
        Assert.Equal(rows, TestDb.Count(output));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task A_wal_restart_made_while_the_checkpoint_reaches_for_the_write_lock_is_followed_without_a_new_generation(int attempt)
    {
        // Phase 1 of the managed checkpoint backfills every frame while our read is held; to take
        // the write lock it lets the read go for an instant. An application that commits in that
        // instant restarts the WAL (everything is backfilled, and the checkpoint connection's guard
        // read, begun then, reads the database file alone): a preempted replicator on a loaded
        // machine makes the instant long. Had the checkpoint gone on, it
        // would have backfilled the new incarnation and our own write would have restarted the
        // WAL again, over frames nobody copied: two restarts, seen as a salt that moved by two,
        // which costs a new generation (the rare "wal restarted more than once" of the restart test).
        // Attempt 0 is phase 2's; attempt 1 the write that restarts the WAL after it, whose lock
        // is taken again once phase 2 let it go (if the application restarted the WAL and
        // checkpointed its new frames in that instant, our write would restart it a second time).
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = await StartWithFramesToCheckpoint(db, log);
        bool restartedInTheInstant = false;
        using (capture)
        {
            using var app = db.Open();
            int attempts = 0;
            capture.BeforeWriteLockAttempt = () =>
            {
                if (attempts++ != attempt)
                {
                    return;
                }

                uint salt1 = WalSalt1(db);
                TestDb.Exec(app, "BEGIN IMMEDIATE");
                TestDb.Exec(app, "INSERT INTO t (id, v, b) VALUES (1000, 'committed in the instant', randomblob(100))");
                TestDb.Exec(app, "COMMIT");
                if (attempt == 1)
                {
                    TestDb.Exec(app, "PRAGMA wal_checkpoint(PASSIVE)");
                }

                restartedInTheInstant = WalSalt1(db) == salt1 + 1;
            };
            capture.Checkpoint(CheckpointMode.Passive, default);
            capture.BeforeWriteLockAttempt = null;
            await ReplicateTenMore(db, capture, syncer);
        }

        await AssertOneRestartFollowedAndRestoresEqual(db, client, log, restartedInTheInstant, rows: 81);
    }

    [Fact]
    public async Task A_checkpoint_lock_held_for_a_moment_by_the_applications_checkpoint_does_not_keep_the_wal_from_restarting()
    {
        // An application that commits without pause runs its own (futile) autocheckpoint after
        // every commit once the WAL is past 1000 pages, each holding the checkpoint lock for a
        // moment. A PASSIVE checkpoint never waits for that lock: ours failed at almost every
        // try, backfilled nothing, so our write could not restart the WAL, which grew until the
        // shadow's cap started a new generation. Here the lock is held for 100 ms (as another
        // process would hold it) at the first try of both phases of our checkpoint.
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = await StartWithFramesToCheckpoint(db, log, new CaptureOptions { CheckpointLockPatience = TimeSpan.FromSeconds(5) });
        int contended = 0;
        using (capture)
        {
            var releases = new List<Task>();
            capture.BeforeCheckpointTry = (mode, attempt) =>
            {
                if (mode != CheckpointMode.Passive || attempt != 1 || contended == 2)
                {
                    return;
                }

                contended++;
                if (releases.All(r => r.IsCompleted))
                {
                    var taken = ShmLockByte.Take(db.DbPath, ShmLockByte.CheckpointLock);
                    releases.Add(Task.Delay(100).ContinueWith(_ => taken.Dispose(), TaskScheduler.Default));
                }
            };
            long index = capture.Position.Index;
            capture.Checkpoint(CheckpointMode.Passive, default);
            capture.BeforeCheckpointTry = null;
            await Task.WhenAll(releases);
            Assert.True(contended == 2, $"{contended} checkpoint(s) found the lock taken at their first try: the test did not reach its case\n" + string.Join("\n", log.Lines));
            Assert.True(capture.Position.Index == index + 1, "the WAL did not restart\n" + string.Join("\n", log.Lines));
            Assert.Equal(2, log.Lines.Count(l => l.Contains("checkpoint PASSIVE: busy=0") && l.Contains(" tries, ")));
            await ReplicateTenMore(db, capture, syncer);
        }

        AssertNoNewGeneration(log);
        await AssertRestoresEqual(db, client, rows: 80);
    }

    [Fact]
    public async Task A_wal_the_application_empties_then_writes_and_checkpoints_before_our_header_write_is_followed_without_a_new_generation()
    {
        // The application's TRUNCATE checkpoint empties the WAL in the instant the managed
        // checkpoint let its read go; following that restart, the capture writes to give the
        // emptied WAL its header. If the application writes first (the header, salt-1 plus one)
        // and checkpoints its frames, a write of ours that waited for the lock with the read let
        // go restarted the WAL again over those frames, which nobody had copied: a salt that
        // moved by two, and a new generation. The header is now checked under the lock.
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = await StartWithFramesToCheckpoint(db, log);
        bool emptied = false, headerWrittenByTheApplication = false;
        using (capture)
        {
            using var app = db.Open();
            int attempts = 0;
            uint salt1 = 0;
            capture.BeforeWriteLockAttempt = () =>
            {
                switch (attempts++)
                {
                    case 0:
                        // Phase 2's attempt: everything is backfilled and nobody reads.
                        salt1 = WalSalt1(db);
                        TestDb.Exec(app, "PRAGMA wal_checkpoint(TRUNCATE)");
                        emptied = new FileInfo(db.DbPath + "-wal").Length == 0;
                        break;
                    case 1:
                        // The attempt at the write that gives the emptied WAL its header.
                        TestDb.Exec(app, "INSERT INTO t (id, v, b) VALUES (1000, 'written into the emptied wal', randomblob(100))");
                        TestDb.Exec(app, "PRAGMA wal_checkpoint(PASSIVE)");
                        headerWrittenByTheApplication = WalSalt1(db) == salt1 + 1;
                        break;
                }
            };
            capture.Checkpoint(CheckpointMode.Passive, default);
            capture.BeforeWriteLockAttempt = null;
            Assert.True(emptied, "the application's TRUNCATE checkpoint did not empty the WAL: the test did not reach its case");
            Assert.True(attempts >= 2, "no attempt at the write into the emptied WAL was made: the test did not reach its case");
            await ReplicateTenMore(db, capture, syncer);
        }

        await AssertOneRestartFollowedAndRestoresEqual(db, client, log, headerWrittenByTheApplication, rows: 81);
    }

    [Fact]
    public async Task A_write_lock_held_past_the_busy_timeout_over_an_emptied_wal_is_an_error_to_retry_and_nothing_is_lost()
    {
        // The application empties the WAL, then holds the write lock without writing: the capture
        // cannot give the WAL its header, and must neither wait for ever nor go on without one.
        // After the busy timeout the look fails as busy (the replicator retries it); once the
        // application commits, a later look goes on (the emptied WAL no longer shows where the
        // old index ended, so that look starts a new generation) and nothing is lost.
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = await StartWithFramesToCheckpoint(db, log, new CaptureOptions { BusyTimeout = TimeSpan.FromMilliseconds(300) });
        using (capture)
        {
            using var app = db.Open();
            int attempts = 0;
            capture.BeforeWriteLockAttempt = () =>
            {
                if (attempts++ == 0)
                {
                    TestDb.Exec(app, "PRAGMA wal_checkpoint(TRUNCATE)");
                    TestDb.Exec(app, "BEGIN IMMEDIATE");
                }
            };
            var busy = Assert.Throws<SqliteException>(() => capture.Checkpoint(CheckpointMode.Passive, default));
            capture.BeforeWriteLockAttempt = null;
            Assert.Equal(SQLitePCL.raw.SQLITE_BUSY, busy.SqliteErrorCode);
            Assert.Contains("stayed busy", busy.Message);
            Assert.True(attempts > 2, $"{attempts} attempt(s): the capture did not keep trying without waiting");
            Assert.Equal(0, new FileInfo(db.DbPath + "-wal").Length);
            TestDb.Exec(app, "INSERT INTO t (id, v, b) VALUES (1000, 'committed after the timeout', randomblob(100))");
            TestDb.Exec(app, "COMMIT");
            await ReplicateTenMore(db, capture, syncer);
        }

        await AssertRestoresEqual(db, client, rows: 81);
    }

    [Fact]
    public async Task The_application_cannot_restart_the_wal_over_uncopied_frames_while_the_checkpoint_reaches_for_the_write_lock()
    {
        // The application commits after phase 1 moved our read (those frames are not copied
        // yet), then, in the instant our read is let go for a lock attempt, checkpoints every
        // frame and commits again. Without a read held by someone, that commit restarted the WAL
        // over the uncopied frames: a new generation. The guard read of the checkpoint
        // connection, begun while ours was held, keeps it from restarting.
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = await StartWithFramesToCheckpoint(db, log);
        bool restartedInTheInstant = true;
        using (capture)
        {
            using var app = db.Open();
            int commits = 0;
            capture.BeforeCheckpointTry = (mode, attempt) =>
            {
                if (mode == CheckpointMode.Passive && commits == 0)
                {
                    commits++;
                    TestDb.Exec(app, "INSERT INTO t (id, v, b) VALUES (1000, 'committed after phase 1 moved our read', randomblob(100))");
                }
            };
            int attempts = 0;
            capture.BeforeWriteLockAttempt = () =>
            {
                if (attempts++ == 0)
                {
                    uint salt1 = WalSalt1(db);
                    TestDb.Exec(app, "PRAGMA wal_checkpoint(PASSIVE)");
                    TestDb.Exec(app, "INSERT INTO t (id, v, b) VALUES (1001, 'committed in the instant', randomblob(100))");
                    restartedInTheInstant = WalSalt1(db) != salt1;
                }
            };
            long index = capture.Position.Index;
            capture.Checkpoint(CheckpointMode.Passive, default);
            capture.BeforeCheckpointTry = null;
            capture.BeforeWriteLockAttempt = null;
            Assert.True(attempts > 0 && commits == 1, "the test did not reach its case\n" + string.Join("\n", log.Lines));
            Assert.False(restartedInTheInstant, "the application's commit restarted the WAL in the instant\n" + string.Join("\n", log.Lines));
            Assert.Equal(index + 1, capture.Position.Index);
            await ReplicateTenMore(db, capture, syncer);
        }

        AssertNoNewGeneration(log);
        await AssertRestoresEqual(db, client, rows: 82);
    }

    [Theory]
    [InlineData(CheckpointMode.Restart)]
    [InlineData(CheckpointMode.Truncate)]
    public async Task A_wal_restart_made_before_the_fallback_checkpoints_own_write_is_followed_without_a_new_generation(CheckpointMode mode)
    {
        // The application holds the write lock past the busy timeout, so the managed checkpoint
        // falls back to SQLite's RESTART, which backfills every frame once the application
        // commits. Our write that restarts the WAL comes next, with our read let go. If the
        // application commits (restarting the WAL) and checkpoints its new frames first, a write
        // of ours that waited for the lock and went on would restart the WAL again over frames
        // nobody copied: a salt that moved by two, and a new generation.
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = await StartWithFramesToCheckpoint(db, log, new CaptureOptions { BusyTimeout = TimeSpan.FromSeconds(1) });
        bool restartedInTheInstant = false;
        using (capture)
        {
            using var app = db.Open();
            using var other = db.Open();
            int committing = 0;
            long attempts = 0, lastAttempt = 0;
            bool acted = false;
            capture.BeforeWriteLockAttempt = () =>
            {
                // Only once the application has let the write lock go: that is the fallback's attempt.
                if (Volatile.Read(ref committing) == 0 || acted)
                {
                    Interlocked.Increment(ref attempts);
                    Volatile.Write(ref lastAttempt, System.Diagnostics.Stopwatch.GetTimestamp());
                    return;
                }

                acted = true;
                uint salt1 = WalSalt1(db);
                TestDb.Exec(other, "INSERT INTO t (id, v, b) VALUES (1000, 'committed before our write', randomblob(100))");
                TestDb.Exec(other, "PRAGMA wal_checkpoint(PASSIVE)");
                restartedInTheInstant = WalSalt1(db) == salt1 + 1;
            };
            TestDb.Exec(app, "BEGIN IMMEDIATE");
            TestDb.Exec(app, "UPDATE t SET v = 'held the write lock' WHERE id = 10");
            var commit = Task.Run(async () =>
            {
                // Phase 2 tries for the lock every few milliseconds for a second; once its attempts
                // stop, SQLite's RESTART is waiting for the lock (for a second too): commit then.
                while (Interlocked.Read(ref attempts) == 0 || System.Diagnostics.Stopwatch.GetElapsedTime(Volatile.Read(ref lastAttempt)) < TimeSpan.FromMilliseconds(150))
                {
                    await Task.Delay(10);
                }

                Volatile.Write(ref committing, 1);
                TestDb.Exec(app, "COMMIT");
            });
            capture.Checkpoint(mode, default);
            await commit;
            capture.BeforeWriteLockAttempt = null;
            await ReplicateTenMore(db, capture, syncer);
        }

        Assert.Contains(log.Lines, l => l.Contains("write lock stayed busy"));
        await AssertOneRestartFollowedAndRestoresEqual(db, client, log, restartedInTheInstant, rows: 81);
    }

    [Fact]
    public async Task A_truncate_checkpoint_shrinks_a_large_wal_file_and_the_replica_restores_equal()
    {
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = Start(db, log);
        using (capture)
        {
            capture.Sync(default);
            await syncer.SyncAsync(default);
            db.Insert(0, 400, perTx: 400, blobBytes: 3000);
            capture.Sync(default);
            long before = new FileInfo(db.DbPath + "-wal").Length;
            Assert.True(before > 300 * 4096, $"the WAL is only {before} bytes");
            capture.Checkpoint(CheckpointMode.Truncate, default);
            long after = new FileInfo(db.DbPath + "-wal").Length;
            Assert.True(after <= WalHeader.Size + 4 * (4096 + 24), $"the WAL file kept {after} bytes\n{string.Join("\n", log.Lines)}");
            db.Insert(400, 10);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            Assert.Equal(capture.Position, syncer.ConfirmedPosition);
            Assert.Equal(1, capture.Position.Index);
        }

        Assert.True(!log.Lines.Any(l => l.Contains("new generation") && !l.Contains("no generation exists")), string.Join("\n", log.Lines));
        var output = Path.Combine(db.Dir, "restored.db");
        await Restore(client, output);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
    }

    [Fact]
    public async Task Restore_by_index_stops_at_that_index()
    {
        using var db = new TestDb();
        var log = new ListLog();
        var (capture, syncer, client) = Start(db, log);
        using (capture)
        {
            db.Insert(0, 10);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            capture.Checkpoint(CheckpointMode.Restart, default);
            db.Insert(10, 10);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            Assert.Equal(1, capture.Position.Index);
        }

        var output = Path.Combine(db.Dir, "at0.db");
        await Restore(client, output, index: 0);
        Assert.Equal(10, TestDb.Count(output));
    }

    [Fact]
    public async Task Resuming_capture_continues_the_same_generation()
    {
        using var db = new TestDb();
        var log = new ListLog();
        string generation;
        var client = new FileReplicaClient(db.ReplicaDir);
        // Keep an application connection open so SQLite never deletes the WAL between runs.
        using var app = db.Open();
        TestDb.Scalar(app, "SELECT COUNT(*) FROM t"); // a read takes the connection's lasting shared lock
        {
            var (capture, syncer, _) = Start(db, log);
            using (capture)
            {
                db.Insert(0, 20);
                capture.Sync(default);
                await syncer.SyncAsync(default);
                generation = capture.Position.Generation;
            }
        }

        db.Insert(20, 20);
        {
            var (capture, syncer, _) = Start(db, log);
            using (capture)
            {
                capture.Sync(default);
                await syncer.SyncAsync(default);
                Assert.Equal(generation, capture.Position.Generation);
            }
        }

        var output = Path.Combine(db.Dir, "resumed.db");
        await Restore(client, output);
        Assert.Equal(40, TestDb.Count(output));
        Assert.Single(await client.ListGenerationsAsync(default));
    }
}
