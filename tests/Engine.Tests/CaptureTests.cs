using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// DatabaseCapture against real SQLite databases, driven step by step (capture.Sync,
/// capture.Checkpoint, syncer.SyncAsync) and checked by restoring the replica.
/// </summary>
public class CaptureTests
{
    /// <summary>No time-based checkpoints, so every test is driven only by its own steps.</summary>
    private static CaptureOptions Options(int minPages = 1000, int maxPages = 10000) => new()
    {
        CheckpointInterval = TimeSpan.Zero,
        MinCheckpointSpacing = TimeSpan.Zero,
        MinCheckpointPageCount = minPages,
        MaxCheckpointPageCount = maxPages,
    };

    /// <summary>A capture and one file replica of a database.</summary>
    private sealed class Harness : IDisposable
    {
        public Harness(TestDb db, CaptureOptions? options = null, string? dbPath = null)
        {
            Db = db;
            Capture = new DatabaseCapture(dbPath ?? db.DbPath, options ?? Options(), Log);
            Client = new FileReplicaClient(db.ReplicaDir);
            Syncer = new ReplicaSyncer(Capture, Client, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.Zero }, Log);
        }

        public TestDb Db { get; }

        public ListLog Log { get; } = new();

        public DatabaseCapture Capture { get; }

        public FileReplicaClient Client { get; }

        public ReplicaSyncer Syncer { get; }

        public async Task SyncAsync()
        {
            Capture.Sync(default);
            await Syncer.SyncAsync(default);
            Assert.Equal(Capture.Position, Syncer.ConfirmedPosition);
        }

        public async Task<(string Output, RestoreResult Result)> RestoreAsync(string name = "restored.db")
        {
            var output = Path.Combine(Db.Dir, name);
            var result = await new Restorer(Client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
            return (output, result);
        }

        public void Dispose() => Capture.Dispose();
    }

    private static byte[] ReadShared(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var bytes = new byte[fs.Length];
        fs.ReadExactly(bytes);
        return bytes;
    }

    private static SqliteConnection OpenPath(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    private static List<string> Schema(string path)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name";
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read())
        {
            list.Add(r.GetString(0));
        }

        return list;
    }

    private static long Pragma(string path, string pragma)
    {
        using var c = OpenPath(path);
        return Convert.ToInt64(TestDb.Scalar(c, $"PRAGMA {pragma}"));
    }

    private static void AssertRestoredEqual(string source, string restored)
    {
        Assert.Equal("ok", TestDb.IntegrityCheck(restored));
        Assert.Equal(TestDb.Digest(source), TestDb.Digest(restored));
        Assert.Equal(Schema(source), Schema(restored));
    }

    private static void AssertShadowIsLiveWalPrefix(DatabaseCapture capture, string walPath)
    {
        var pos = capture.Position;
        var shadow = File.ReadAllBytes(capture.Meta.ShadowPath(pos.Generation, pos.Index));
        var wal = ReadShared(walPath);
        Assert.Equal(pos.Offset, shadow.Length);
        Assert.True(wal.Length >= shadow.Length, $"live WAL {wal.Length} shorter than shadow {shadow.Length}");
        Assert.True(wal.AsSpan(0, shadow.Length).SequenceEqual(shadow), "shadow differs from the live WAL prefix");

        // No committed frame of the live WAL's current incarnation is missing from the shadow:
        // whatever follows the position does not continue the chain to a commit (stale frames
        // of an earlier incarnation remain in the file after a restart).
        var header = WalHeader.Parse(shadow);
        var verifier = pos.Offset == WalHeader.Size
            ? new WalChainVerifier(header)
            : new WalChainVerifier(header, WalFrameHeader.Parse(shadow.AsSpan((int)pos.Offset - header.FrameSize)).Checksum, pos.Offset, 0);
        for (long off = pos.Offset; off + header.FrameSize <= wal.Length && verifier.Accept(wal.AsSpan((int)off, header.FrameSize)) is null; off += header.FrameSize)
        {
        }

        Assert.Equal(pos.Offset, verifier.LastCommitOffset);
    }

    // (a)
    [Fact]
    public async Task After_sync_the_shadow_wal_equals_the_live_wal_prefix_up_to_the_position()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 30, perTx: 3);
        h.Capture.Sync(default);
        var first = h.Capture.Position;
        Assert.False(first.IsNone);
        Assert.True(first.Offset > WalHeader.Size);
        AssertShadowIsLiveWalPrefix(h.Capture, db.DbPath + "-wal");

        // Litestream's meta layout: .<db>-litestream/generation holds "<gen>\n".
        Assert.Equal(Path.Combine(db.Dir, ".app.db-litestream"), h.Capture.Meta.Root);
        Assert.Equal(first.Generation + "\n", File.ReadAllText(h.Capture.Meta.GenerationFile));

        db.Insert(30, 30, perTx: 1, blobBytes: 3000);
        h.Capture.Sync(default);
        Assert.True(h.Capture.Position.Offset > first.Offset);
        Assert.Equal(first.Generation, h.Capture.Position.Generation);
        AssertShadowIsLiveWalPrefix(h.Capture, db.DbPath + "-wal");

        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        db.Insert(60, 10);
        h.Capture.Sync(default);
        Assert.Equal(1, h.Capture.Position.Index);
        AssertShadowIsLiveWalPrefix(h.Capture, db.DbPath + "-wal");

        // The finished index 0 is still a whole verified chain ending on a commit.
        var shadow0 = File.ReadAllBytes(h.Capture.Meta.ShadowPath(first.Generation, 0));
        var header0 = WalHeader.TryParseValid(shadow0);
        Assert.NotNull(header0);
        var verifier = new WalChainVerifier(header0);
        for (long off = WalHeader.Size; off < shadow0.Length; off += header0.FrameSize)
        {
            Assert.Null(verifier.Accept(shadow0.AsSpan((int)off, header0.FrameSize)));
        }

        Assert.Equal(shadow0.Length, verifier.LastCommitOffset);
    }

    // (b)
    [Fact]
    public async Task An_uncommitted_transaction_spilled_into_the_wal_is_never_copied()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 10);
        await h.SyncAsync();
        var before = h.Capture.Position;
        var shadowPath = h.Capture.Meta.ShadowPath(before.Generation, before.Index);
        long shadowBefore = new FileInfo(shadowPath).Length;

        using var writer = db.Open();
        TestDb.Exec(writer, "PRAGMA cache_size = 1");
        using (var tx = writer.BeginTransaction())
        {
            for (int i = 1000; i < 1400; i++)
            {
                using var cmd = writer.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"INSERT INTO t (id, v, b) VALUES ({i}, 'uncommitted', randomblob(1500))";
                cmd.ExecuteNonQuery();
            }

            // SQLite spilled pages of the open transaction into the WAL: valid frames, no commit.
            var wal = ReadShared(db.DbPath + "-wal");
            var header = WalHeader.Parse(wal);
            Assert.True(wal.Length >= before.Offset + 10L * header.FrameSize, $"expected spilled frames past {before.Offset}, WAL is {wal.Length}");
            var verifier = new WalChainVerifier(header, WalFrameHeader.Parse(wal.AsSpan((int)before.Offset - header.FrameSize)).Checksum, before.Offset, 0);
            int spilled = 0;
            for (long off = before.Offset; off + header.FrameSize <= wal.Length && verifier.Accept(wal.AsSpan((int)off, header.FrameSize)) is null; off += header.FrameSize)
            {
                spilled++;
            }

            Assert.True(spilled >= 10, $"only {spilled} spilled frames verify");
            Assert.Equal(before.Offset, verifier.LastCommitOffset);

            h.Capture.Sync(default);
            Assert.Equal(before, h.Capture.Position);
            Assert.Equal(shadowBefore, new FileInfo(shadowPath).Length);
            await h.Syncer.SyncAsync(default);
            Assert.Equal(before, h.Syncer.ConfirmedPosition);

            tx.Commit();
        }

        await h.SyncAsync();
        Assert.True(h.Capture.Position.Offset > before.Offset);
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(410, TestDb.Count(output));
    }

    // (b, rolled back)
    [Fact]
    public async Task A_spilled_transaction_that_is_rolled_back_never_reaches_the_replica()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 10);
        await h.SyncAsync();
        var before = h.Capture.Position;

        using (var writer = db.Open())
        {
            TestDb.Exec(writer, "PRAGMA cache_size = 1");
            using var tx = writer.BeginTransaction();
            for (int i = 1000; i < 1300; i++)
            {
                using var cmd = writer.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"INSERT INTO t (id, v, b) VALUES ({i}, 'rolled back', randomblob(1500))";
                cmd.ExecuteNonQuery();
            }

            h.Capture.Sync(default);
            Assert.Equal(before, h.Capture.Position);
            tx.Rollback();
        }

        // The next transactions overwrite the spilled frames in place.
        db.Insert(10, 3);
        await h.SyncAsync();
        db.Insert(13, 3, perTx: 3, blobBytes: 2000);
        await h.SyncAsync();

        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(16, TestDb.Count(output));
    }

    // (c)
    [Fact]
    public async Task A_database_file_replaced_underneath_starts_a_new_generation_on_the_next_sync()
    {
        using var db = new TestDb();
        using var other = new TestDb();
        other.Insert(5000, 40, perTx: 10);
        using (var c = other.Open())
        {
            TestDb.Exec(c, "CREATE TABLE only_in_other (x)");
            TestDb.Exec(c, "INSERT INTO only_in_other VALUES (42)");
        }

        using var h = new Harness(db);
        db.Insert(0, 20);
        await h.SyncAsync();
        var oldGeneration = h.Capture.Position.Generation;

        // Replace the file the way a careless restore would: rename another file over it.
        var staging = Path.Combine(db.Dir, "app.db.incoming");
        File.Copy(other.DbPath, staging);
        File.Move(staging, db.DbPath, overwrite: true);
        File.Delete(db.DbPath + "-wal");
        File.Delete(db.DbPath + "-shm");

        h.Capture.Sync(default);
        var now = h.Capture.Position;
        Assert.False(now.IsNone, h.Log.ToString());
        Assert.NotEqual(oldGeneration, now.Generation);
        Assert.Equal(0, now.Index);
        Assert.Equal(now.Generation + "\n", File.ReadAllText(h.Capture.Meta.GenerationFile));
        Assert.False(Directory.Exists(Path.Combine(h.Capture.Meta.GenerationsDir, oldGeneration)));

        await h.Syncer.SyncAsync(default);
        db.Insert(10_000, 5);
        await h.SyncAsync();

        var gens = await h.Client.ListGenerationsAsync(default);
        Assert.Contains(oldGeneration, gens);
        Assert.Contains(now.Generation, gens);
        var (output, result) = await h.RestoreAsync();
        Assert.Equal(now.Generation, result.Generation);
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(45, TestDb.Count(output));
        using var check = OpenPath(output);
        Assert.Equal(42L, Convert.ToInt64(TestDb.Scalar(check, "SELECT x FROM only_in_other")));
    }

    // (d)
    [Fact]
    public async Task A_database_in_rollback_journal_mode_is_switched_to_wal_by_capture()
    {
        using var db = new TestDb();
        using (var c = db.Open())
        {
            Assert.Equal("delete", TestDb.Scalar(c, "PRAGMA journal_mode = delete")?.ToString());
        }

        db.Insert(0, 25, perTx: 5);
        Assert.False(File.Exists(db.DbPath + "-wal"));
        Assert.Equal(1, File.ReadAllBytes(db.DbPath)[18]); // legacy (rollback) file format

        using var h = new Harness(db);
        await h.SyncAsync();
        Assert.False(h.Capture.Position.IsNone);
        using (var c = db.Open())
        {
            Assert.Equal("wal", TestDb.Scalar(c, "PRAGMA journal_mode")?.ToString());
        }

        var header = ReadShared(db.DbPath)[18..20];
        Assert.Equal(new byte[] { 2, 2 }, header);

        db.Insert(25, 5);
        await h.SyncAsync();
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(30, TestDb.Count(output));
        using var restored = OpenPath(output);
        Assert.Equal("wal", TestDb.Scalar(restored, "PRAGMA journal_mode")?.ToString());
    }

    // (e)
    [Fact]
    public void A_second_capture_of_the_same_database_fails_with_AlreadyReplicating()
    {
        using var db = new TestDb();
        using var first = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
        first.AcquireLock();
        using var second = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);

        var e = Assert.Throws<ReplicaException>(() => second.AcquireLock());
        Assert.Equal(ReplicaErrorCode.AlreadyReplicating, e.Code);
        e = Assert.Throws<ReplicaException>(() => second.Sync(default));
        Assert.Equal(ReplicaErrorCode.AlreadyReplicating, e.Code);
        Assert.True(second.Position.IsNone);

        // The first capture is unaffected.
        db.Insert(0, 5);
        first.Sync(default);
        Assert.False(first.Position.IsNone);
    }

    [Fact]
    public void A_capture_that_is_syncing_holds_the_lock_and_releases_it_when_disposed()
    {
        using var db = new TestDb();
        var first = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
        db.Insert(0, 5);
        first.Sync(default); // takes the lock on initialisation
        using (var second = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance))
        {
            Assert.Equal(ReplicaErrorCode.AlreadyReplicating, Assert.Throws<ReplicaException>(() => second.AcquireLock()).Code);
        }

        var generation = first.Position.Generation;
        first.Dispose();

        using var third = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
        third.AcquireLock();
        third.Sync(default);
        Assert.Equal(generation, third.Position.Generation);
    }

    // (f)
    [Fact]
    public async Task A_database_that_does_not_exist_yet_is_waited_for_and_then_captured()
    {
        using var db = new TestDb();
        var path = Path.Combine(db.Dir, "later.db");
        using var h = new Harness(db, dbPath: path);

        Assert.False(h.Capture.Sync(default));
        Assert.True(h.Capture.Position.IsNone);
        Assert.False(h.Capture.IsInitialized);
        Assert.False(File.Exists(path));
        Assert.True((await h.Syncer.SyncAsync(default)).IsNone);
        Assert.False(Directory.Exists(db.ReplicaDir));

        using (var c = OpenPath(path))
        {
            TestDb.Exec(c, "PRAGMA journal_mode = wal");
            TestDb.Exec(c, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
            TestDb.Exec(c, "INSERT INTO t (id, v) VALUES (1, 'one'), (2, 'two')");
        }

        Assert.True(h.Capture.Sync(default));
        var pos = h.Capture.Position;
        Assert.False(pos.IsNone);
        Assert.True(ReplicaNames.IsGeneration(pos.Generation));
        Assert.Equal(0, pos.Index);

        await h.SyncAsync();
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(path, output);
        Assert.Equal(2, TestDb.Count(output));
    }

    // (g)
    [Fact]
    public async Task A_64_KiB_page_database_replicates_and_restores_equal()
    {
        using var db = new TestDb(pageSize: 65536);
        Assert.Equal(65536, Pragma(db.DbPath, "page_size"));
        using var h = new Harness(db);
        db.Insert(0, 30, perTx: 3, blobBytes: 10_000);
        await h.SyncAsync();
        Assert.Equal(65536, h.Capture.PageSize);
        var header = WalHeader.Parse(ReadShared(db.DbPath + "-wal"));
        Assert.Equal(65536, header.PageSize);

        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        db.Insert(30, 20, perTx: 1, blobBytes: 70_000); // overflow pages
        await h.SyncAsync();
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        db.Insert(50, 5);
        await h.SyncAsync();
        Assert.Equal(2, h.Capture.Position.Index);

        var (output, result) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(65536, Pragma(output, "page_size"));
        Assert.Equal(Pragma(db.DbPath, "page_count"), Pragma(output, "page_count"));
        Assert.Equal(3, result.IndexesApplied);
    }

    // (h)
    [Fact]
    public async Task A_single_transaction_larger_than_the_max_checkpoint_page_count_replicates_and_restores_equal()
    {
        using var db = new TestDb();
        using var h = new Harness(db, Options(minPages: 10, maxPages: 50));
        db.Insert(0, 3);
        await h.SyncAsync();
        Assert.Equal(0, h.Capture.Position.Index);

        // One transaction of about 200 pages (one 4000-byte row per 4 KiB page).
        db.Insert(100, 200, perTx: 200, blobBytes: 4000);
        long walPages = (new FileInfo(db.DbPath + "-wal").Length - WalHeader.Size) / (4096 + 24);
        Assert.True(walPages >= 200, $"transaction wrote only {walPages} pages");

        await h.SyncAsync();
        Assert.True(h.Capture.Position.Index >= 1, "the oversized index was not checkpointed: " + h.Log);

        var big = (await h.Client.ListSegmentsAsync(h.Capture.Position.Generation, default)).Where(s => s.Index == 0).ToList();
        var shadow0 = new FileInfo(h.Capture.Meta.ShadowPath(h.Capture.Position.Generation, 0));
        Assert.True(shadow0.Length >= WalHeader.Size + 200L * (4096 + 24), $"index 0 shadow holds {shadow0.Length} bytes");
        Assert.NotEmpty(big);

        db.Insert(300, 200, perTx: 200, blobBytes: 4000);
        await h.SyncAsync();
        db.Insert(500, 5);
        await h.SyncAsync();
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(408, TestDb.Count(output));
    }

    // (i)
    [Theory]
    [InlineData("TRUNCATE")]
    [InlineData("RESTART")]
    [InlineData("PASSIVE")]
    public async Task The_application_running_its_own_checkpoint_does_not_break_replication(string mode)
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        using var app = db.Open();
        TestDb.Exec(app, "PRAGMA busy_timeout = 0");
        db.Insert(0, 20, perTx: 2);
        await h.SyncAsync();
        var generation = h.Capture.Position.Generation;

        // Frames the capture has not copied yet, then the application's checkpoint.
        db.Insert(20, 20, perTx: 4, blobBytes: 1000);
        long walBefore = new FileInfo(db.DbPath + "-wal").Length;
        using (var cmd = app.CreateCommand())
        {
            cmd.CommandText = $"PRAGMA wal_checkpoint({mode})";
            using var r = cmd.ExecuteReader();
            Assert.True(r.Read());
        }

        // The capture's read transaction keeps the WAL from being reset or truncated.
        Assert.True(new FileInfo(db.DbPath + "-wal").Length >= walBefore);
        db.Insert(40, 10);
        await h.SyncAsync();
        Assert.Equal(generation, h.Capture.Position.Generation);
        Assert.Equal(0, h.Capture.Position.Index);

        // And again right after a sync, then more writes and the capture's own restart.
        TestDb.Scalar(app, $"PRAGMA wal_checkpoint({mode})");
        db.Insert(50, 10);
        await h.SyncAsync();
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        db.Insert(60, 10);
        TestDb.Scalar(app, $"PRAGMA wal_checkpoint({mode})");
        db.Insert(70, 10);
        await h.SyncAsync();
        Assert.Equal(generation, h.Capture.Position.Generation);

        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(80, TestDb.Count(output));
        Assert.Single(await h.Client.ListGenerationsAsync(default));
    }

    // (j)
    [Fact]
    public async Task Vacuum_and_schema_changes_replicate_and_restore_equal()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 300, perTx: 30, blobBytes: 500);
        await h.SyncAsync();

        using (var c = db.Open())
        {
            TestDb.Exec(c, "ALTER TABLE t ADD COLUMN extra TEXT DEFAULT 'x'");
            TestDb.Exec(c, "UPDATE t SET extra = 'e' || id WHERE id % 3 = 0");
            TestDb.Exec(c, "CREATE INDEX t_v ON t (v)");
            TestDb.Exec(c, "CREATE TABLE other (a INTEGER, b TEXT)");
            TestDb.Exec(c, "INSERT INTO other SELECT id, v FROM t");
        }

        await h.SyncAsync();
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        long pagesBeforeVacuum = Pragma(db.DbPath, "page_count");

        using (var c = db.Open())
        {
            TestDb.Exec(c, "DELETE FROM t WHERE id % 2 = 0");
            TestDb.Exec(c, "DROP TABLE other");
            TestDb.Exec(c, "VACUUM");
        }

        Assert.True(Pragma(db.DbPath, "page_count") < pagesBeforeVacuum, "VACUUM did not shrink the database");
        await h.SyncAsync();

        var (afterVacuum, _) = await h.RestoreAsync("after-vacuum.db");
        AssertRestoredEqual(db.DbPath, afterVacuum);
        Assert.Equal(Pragma(db.DbPath, "page_count"), Pragma(afterVacuum, "page_count"));
        Assert.Equal(Pragma(db.DbPath, "page_count") * 4096, new FileInfo(afterVacuum).Length);

        using (var c = db.Open())
        {
            TestDb.Exec(c, "CREATE TABLE later (k TEXT PRIMARY KEY, n INTEGER)");
            TestDb.Exec(c, "INSERT INTO later VALUES ('a', 1), ('b', 2)");
            TestDb.Exec(c, "DROP INDEX t_v");
        }

        db.Insert(1000, 10);
        await h.SyncAsync();

        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.DoesNotContain(Schema(output), s => s.Contains("other"));
        Assert.DoesNotContain(Schema(output), s => s.Contains("t_v"));
        Assert.Equal(160, TestDb.Count(output));
        Assert.Equal(Pragma(db.DbPath, "page_count"), Pragma(output, "page_count"));
    }

    [Fact]
    public async Task A_wal_restarted_while_nobody_captured_starts_a_new_generation_and_restores_equal()
    {
        using var db = new TestDb();
        using var app = db.Open();
        TestDb.Scalar(app, "SELECT COUNT(*) FROM t"); // keeps the database open so the WAL survives
        string firstGeneration;
        using (var h = new Harness(db))
        {
            db.Insert(0, 20);
            await h.SyncAsync();
            firstGeneration = h.Capture.Position.Generation;
        }

        // While nothing replicates, the application checkpoints and SQLite restarts the WAL.
        db.Insert(20, 20);
        Assert.Equal(0L, Convert.ToInt64(TestDb.Scalar(app, "PRAGMA wal_checkpoint(RESTART)")));
        db.Insert(40, 5);

        using (var h = new Harness(db))
        {
            await h.SyncAsync();
            Assert.NotEqual(firstGeneration, h.Capture.Position.Generation);
            db.Insert(45, 5);
            await h.SyncAsync();
            var (output, result) = await h.RestoreAsync();
            Assert.Equal(h.Capture.Position.Generation, result.Generation);
            AssertRestoredEqual(db.DbPath, output);
            Assert.Equal(50, TestDb.Count(output));
        }
    }

    /// <summary>120 rows in 2-row transactions with a look after every 10: many checkpoints' worth of pages at small thresholds.</summary>
    private static async Task WriteTwelveSyncedRoundsAsync(TestDb db, Harness h)
    {
        await h.SyncAsync();
        for (int round = 0; round < 12; round++)
        {
            db.Insert(round * 10, 10, perTx: 2, blobBytes: 1500);
            await h.SyncAsync();
        }
    }

    [Fact]
    public async Task Automatic_checkpoints_at_small_thresholds_keep_every_commit()
    {
        using var db = new TestDb();
        using var h = new Harness(db, Options(minPages: 5, maxPages: 12));
        await WriteTwelveSyncedRoundsAsync(db, h);

        Assert.True(h.Capture.Position.Index >= 3, h.Log.ToString());
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(120, TestDb.Count(output));
        Assert.Single(await h.Client.ListGenerationsAsync(default));
    }

    [Fact]
    public async Task Page_count_checkpoints_wait_for_their_spacing_and_every_commit_is_kept()
    {
        // The same writes as above, with the checkpoints of a whole hour allowed only once: one
        // checkpoint (one new index) and nothing else, whatever the page counts say.
        using var db = new TestDb();
        using var h = new Harness(db, Options(minPages: 5, maxPages: 12) with { MinCheckpointSpacing = TimeSpan.FromHours(1) });
        await WriteTwelveSyncedRoundsAsync(db, h);

        Assert.True(h.Capture.Position.Index <= 1, $"index {h.Capture.Position.Index}\n{h.Log}");
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(120, TestDb.Count(output));
    }

    [Fact]
    public async Task Consecutive_restart_checkpoints_without_writes_in_between_keep_the_generation()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 5);
        await h.SyncAsync();
        var generation = h.Capture.Position.Generation;

        // Index 1 then holds only the capture's own one-frame sequence write; restarting again
        // writes exactly one frame into the new incarnation, which overwrites nothing uncopied.
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        Assert.Equal(1, h.Capture.Position.Index);
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        Assert.True(generation == h.Capture.Position.Generation, h.Log.ToString());
        Assert.Equal(2, h.Capture.Position.Index);

        db.Insert(5, 5);
        await h.SyncAsync();
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Single(await h.Client.ListGenerationsAsync(default));
    }

    [Fact]
    public async Task A_commit_written_in_place_after_a_restart_is_copied_even_when_the_wal_mtime_did_not_move()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 30, perTx: 1);
        await h.SyncAsync();
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        db.Insert(30, 1);
        await h.SyncAsync();
        var before = h.Capture.Position;
        var walPath = db.DbPath + "-wal";
        var wal = new FileInfo(walPath);
        long length = wal.Length;
        var mtime = wal.LastWriteTimeUtc;

        // After a restart SQLite rewrites the WAL in place: a new commit does not change its length.
        db.Insert(31, 1);
        Assert.Equal(length, new FileInfo(walPath).Length);

        // On a filesystem with coarse timestamps (e.g. jiffy-grained mtime) the commit can land
        // in the same tick as the capture's last look.
        File.SetLastWriteTimeUtc(walPath, mtime);
        h.Capture.Sync(default);
        Assert.True(h.Capture.Position.Offset > before.Offset, $"commit not copied: still at {h.Capture.Position}");

        await h.Syncer.SyncAsync(default);
        var (output, _) = await h.RestoreAsync();
        Assert.Equal(32, TestDb.Count(output));
    }

    [Fact]
    public async Task A_forced_sync_copies_a_commit_written_in_place_even_when_the_wal_mtime_did_not_move()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 30, perTx: 1);
        await h.SyncAsync();
        h.Capture.Checkpoint(CheckpointMode.Restart, default);
        db.Insert(30, 1);
        await h.SyncAsync();
        var before = h.Capture.Position;
        var walPath = db.DbPath + "-wal";
        var mtime = new FileInfo(walPath).LastWriteTimeUtc;
        long length = new FileInfo(walPath).Length;

        db.Insert(31, 1);
        Assert.Equal(length, new FileInfo(walPath).Length);
        File.SetLastWriteTimeUtc(walPath, mtime);

        // What a file-change notification and the final sync at shutdown do.
        Assert.True(h.Capture.Sync(default, force: true));
        Assert.True(h.Capture.Position.Offset > before.Offset);
        await h.Syncer.SyncAsync(default);
        var (output, _) = await h.RestoreAsync();
        Assert.Equal(32, TestDb.Count(output));
    }

    /// <summary>
    /// Writes to the live WAL what a writer killed between writing its frames and publishing them
    /// in the wal-index leaves behind: a transaction of <paramref name="frames"/> frames that
    /// continues the checksum chain and ends with a commit frame, but that no reader will ever
    /// see. Its pages are copies of the newest published page holding "row " text, with that text
    /// changed to "ROW ", so a restore that applied it would differ from the live database.
    /// Returns the bytes written.
    /// </summary>
    private static byte[] AppendUnpublishedCommit(string dbPath, int frames)
    {
        var shm = ReadWalIndex(dbPath);
        Assert.NotNull(shm);
        using var fs = new FileStream(dbPath + "-wal", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        var raw = new byte[WalHeader.Size];
        fs.ReadExactly(raw);
        var header = WalHeader.Parse(raw);
        Assert.True(shm!.Describes(header), "the wal-index describes the live WAL");
        long end = shm.PublishedEnd(header);
        var frame = new byte[header.FrameSize];
        fs.Position = end - header.FrameSize;
        fs.ReadExactly(frame);
        var last = WalFrameHeader.Parse(frame);
        Assert.True(last.IsCommit, "the published end is a commit frame");

        var marker = System.Text.Encoding.ASCII.GetBytes("row ");
        byte[]? page = null;
        uint pageNumber = 0;
        for (long off = end - header.FrameSize; off >= WalHeader.Size && page is null; off -= header.FrameSize)
        {
            fs.Position = off;
            fs.ReadExactly(frame);
            if (frame.AsSpan(WalFrameHeader.Size).IndexOf(marker) >= 0)
            {
                page = frame[WalFrameHeader.Size..];
                pageNumber = WalFrameHeader.Parse(frame).PageNumber;
            }
        }

        Assert.NotNull(page);
        for (int i = page!.AsSpan().IndexOf(marker); i >= 0; i = page.AsSpan().IndexOf(marker))
        {
            System.Text.Encoding.ASCII.GetBytes("ROW ").CopyTo(page, i);
        }

        var written = new byte[frames * header.FrameSize];
        var sum = last.Checksum;
        for (int n = 0; n < frames; n++)
        {
            var f = written.AsSpan(n * header.FrameSize, header.FrameSize);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f[..4], pageNumber);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.Slice(4, 4), n == frames - 1 ? last.CommitSize : 0);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.Slice(8, 4), header.Salt1);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.Slice(12, 4), header.Salt2);
            page.CopyTo(f[WalFrameHeader.Size..]);
            sum = sum.Continue(f[..8], header.BigEndianChecksum).Continue(f[WalFrameHeader.Size..], header.BigEndianChecksum);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.Slice(16, 4), sum.S0);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.Slice(20, 4), sum.S1);
        }

        // The forged frames verify exactly like a real transaction's.
        var verifier = new WalChainVerifier(header, last.Checksum, end, last.CommitSize);
        for (int n = 0; n < frames; n++)
        {
            Assert.Null(verifier.Accept(written.AsSpan(n * header.FrameSize, header.FrameSize)));
        }

        Assert.Equal(end + written.Length, verifier.LastCommitOffset);
        fs.Position = end;
        fs.Write(written);
        fs.Flush(flushToDisk: true);
        return written;
    }

    /// <summary>The wal-index header through a connection of this process (never by opening the -shm file).</summary>
    private static WalIndexHeader? ReadWalIndex(string dbPath)
    {
        using var c = OpenPath(dbPath);
        TestDb.Scalar(c, "SELECT COUNT(*) FROM sqlite_master");
        return WalIndexHeader.Read(c);
    }

    // Invariant 1: the replica never holds a transaction the live database did not commit.
    [Fact]
    public async Task A_commit_frame_a_dead_writer_never_published_is_never_copied()
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 10);
        await h.SyncAsync();
        db.Insert(10, 1);
        await h.SyncAsync();
        var before = h.Capture.Position;
        var shadowPath = h.Capture.Meta.ShadowPath(before.Generation, before.Index);
        long shadowBefore = new FileInfo(shadowPath).Length;

        AppendUnpublishedCommit(db.DbPath, frames: 3);
        using (var reader = db.Open())
        {
            Assert.Equal(0L, TestDb.Scalar(reader, "SELECT COUNT(*) FROM t WHERE v GLOB 'ROW *'"));
        }


        h.Capture.Sync(default, force: true);
        Assert.Equal(before, h.Capture.Position);
        Assert.Equal(shadowBefore, new FileInfo(shadowPath).Length);
        Assert.True(h.Capture.AwaitingPublication, "frames past the published point make the monitor look again soon");
        await h.Syncer.SyncAsync(default);
        Assert.Equal(before, h.Syncer.ConfirmedPosition);
        var (first, _) = await h.RestoreAsync("first.db");
        AssertRestoredEqual(db.DbPath, first);

        // The next writer appends at the published point, over the dead writer's frames; the
        // generation goes on and the replica equals the live database.
        db.Insert(11, 1);
        await h.SyncAsync();
        Assert.Equal(before.Generation, h.Capture.Position.Generation);
        Assert.True(h.Capture.Position.Offset > before.Offset);
        var (second, _) = await h.RestoreAsync("second.db");
        AssertRestoredEqual(db.DbPath, second);
        Assert.Equal(12, TestDb.Count(second));
        Assert.DoesNotContain("past the database's published commit point", h.Log.ToString());
    }

    [Fact]
    public async Task A_dead_writers_frames_left_behind_by_our_own_wal_restart_keep_the_generation()
    {
        using var db = new TestDb();
        using var app = db.Open();
        TestDb.Scalar(app, "SELECT COUNT(*) FROM t");
        using var h = new Harness(db);
        db.Insert(0, 10);
        await h.SyncAsync();
        db.Insert(10, 1);
        await h.SyncAsync();
        var before = h.Capture.Position;

        // The writer died mid-commit; the next thing to happen is our own checkpoint, whose WAL
        // restart leaves the dead frames behind, past the new incarnation's first frame. Seen
        // under the write lock they are known for what they are: no new generation is needed.
        AppendUnpublishedCommit(db.DbPath, frames: 4);
        h.Capture.Checkpoint(CheckpointMode.Passive, default);
        Assert.True(h.Capture.Position.Index > before.Index, h.Log.ToString());
        Assert.True(before.Generation == h.Capture.Position.Generation, h.Log.ToString());

        db.Insert(11, 1);
        await h.SyncAsync();
        Assert.Equal(before.Generation, h.Capture.Position.Generation);
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(12, TestDb.Count(output));
    }

    [Fact]
    public async Task A_shadow_wal_holding_frames_the_database_never_published_is_not_resumed()
    {
        using var db = new TestDb();
        // The application keeps the database open (as a live app does), so the wal-index is not
        // rebuilt from the WAL file between the two runs.
        using var app = db.Open();
        TestDb.Scalar(app, "SELECT COUNT(*) FROM t");
        Position before;
        string shadowPath;
        using (var h = new Harness(db))
        {
            db.Insert(0, 10);
            await h.SyncAsync();
            db.Insert(10, 1);
            await h.SyncAsync();
            before = h.Capture.Position;
            shadowPath = h.Capture.Meta.ShadowPath(before.Generation, before.Index);
        }

        // What a run that trusted the WAL file alone would have left: the forged commit in the shadow.
        var forged = AppendUnpublishedCommit(db.DbPath, frames: 2);
        using (var shadow = new FileStream(shadowPath, FileMode.Append, FileAccess.Write))
        {
            shadow.Write(forged);
        }

        using var again = new Harness(db);
        await again.SyncAsync();
        Assert.NotEqual(before.Generation, again.Capture.Position.Generation);
        Assert.Contains("past the database's published commit point", again.Log.ToString());
        var (output, _) = await again.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(11, TestDb.Count(output));
    }

    [Fact]
    public void The_wal_index_header_publishes_every_commit_of_the_live_wal()
    {
        using var db = new TestDb();
        using var keep = db.Open();
        TestDb.Exec(keep, "PRAGMA wal_autocheckpoint = 0");
        TestDb.Scalar(keep, "SELECT COUNT(*) FROM t");  // holds the database open: the WAL stays
        db.Insert(0, 20, perTx: 2);
        var wal = ReadShared(db.DbPath + "-wal");
        var header = WalHeader.Parse(wal);
        var shm = WalIndexHeader.Read(keep);
        Assert.NotNull(shm);
        Assert.True(shm!.Describes(header));
        Assert.Equal(wal.Length, shm.PublishedEnd(header));

        var raw = new byte[2 * WalIndexHeader.CopySize];
        Assert.True(SqliteReplica.Engine.Native.SqliteNative.TryReadWalIndex(keep, raw));
        Assert.NotNull(WalIndexHeader.TryParse(raw));
        var torn = (byte[])raw.Clone();
        torn[16] ^= 1;  // mxFrame of the first copy changed, as while a writer is mid-update
        Assert.Null(WalIndexHeader.TryParse(torn));
        var both = (byte[])raw.Clone();
        both[16] ^= 1;
        both[WalIndexHeader.CopySize + 16] ^= 1;  // both copies agree but the checksum does not
        Assert.Null(WalIndexHeader.TryParse(both));
    }

    /// <summary>
    /// Five rows replicated, then <paramref name="application"/> run against the database by
    /// another process (sqlite3: SQLite sees the locks of its own process's connections through
    /// its own bookkeeping, so only another process shows what the capture's locks really do in
    /// the kernel). Checks the generation was kept and the restore equals the source with
    /// <paramref name="expectedRows"/> rows; returns the positions before and after.
    /// </summary>
    private static async Task<(Position Start, Position End)> RunApplicationProcessAsync(Func<Harness, Sqlite3Process, Task> application, int expectedRows)
    {
        using var db = new TestDb();
        using var h = new Harness(db);
        db.Insert(0, 5);
        await h.SyncAsync();
        var start = h.Capture.Position;
        using (var app = new Sqlite3Process(db.DbPath))
        {
            await application(h, app);
        }

        await h.SyncAsync();
        var end = h.Capture.Position;
        Assert.True(start.Generation == end.Generation, h.Log.ToString());
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(expectedRows, TestDb.Count(output));
        return (start, end);
    }

    [Fact]
    public async Task An_application_checkpointing_after_every_commit_cannot_restart_the_wal_under_the_held_read()
    {
        // The application runs its own PASSIVE checkpoint after every commit. SQLite restarts a
        // WAL only when every frame is checkpointed and no reader holds a WAL snapshot; the
        // capture's read transaction keeps that from happening more than once between its own
        // checkpoints (so nothing is overwritten before it is copied, and no generation is lost).
        var (start, end) = await RunApplicationProcessAsync((h, app) =>
        {
            app.Run("PRAGMA wal_autocheckpoint = 0;");
            for (int i = 0; i < 30; i++)
            {
                app.Run($"INSERT INTO t (id, v) VALUES ({100 + i}, 'app {i}'); PRAGMA wal_checkpoint(PASSIVE);");
                h.Capture.Sync(default, force: true);
            }

            return Task.CompletedTask;
        }, expectedRows: 35);
        Assert.True(end.Index <= start.Index + 1, $"the WAL restarted {end.Index - start.Index} times under the held read");
    }

    [Fact]
    public async Task An_application_that_restarts_its_wal_quickly_while_our_checkpoint_waits_for_the_write_lock_keeps_the_generation()
    {
        // Our checkpoint needs the write lock for a moment. While it waits for the application to
        // let go of it, the application may commit, checkpoint and restart its WAL again and
        // again in a few milliseconds (a fast writer at SQLite's default autocheckpoint does).
        // Waiting with our read let go allowed two restarts unseen: a new generation. The read
        // may go only for the instant of each attempt.
        await RunApplicationProcessAsync(async (h, app) =>
        {
            app.Run("PRAGMA wal_autocheckpoint = 0; PRAGMA busy_timeout = 5000;");
            for (int round = 0; round < 3; round++)
            {
                app.Run($"BEGIN IMMEDIATE; INSERT INTO t (id, v) VALUES ({100 + round * 10}, 'held');");
                var checkpoint = Task.Run(() => h.Capture.Checkpoint(CheckpointMode.Passive, default));
                Thread.Sleep(150);
                var burst = new System.Text.StringBuilder("COMMIT;");
                for (int i = 1; i <= 4; i++)
                {
                    burst.Append($" PRAGMA wal_checkpoint(PASSIVE); INSERT INTO t (id, v) VALUES ({100 + round * 10 + i}, 'burst');");
                }

                app.Run(burst.ToString());
                await checkpoint;
                h.Capture.Sync(default, force: true);
            }
        }, expectedRows: 20);
    }

    [Theory]
    [InlineData("TRUNCATE")]
    [InlineData("RESTART")]
    [InlineData("PASSIVE")]
    public async Task Another_process_running_its_own_checkpoints_keeps_the_generation_and_every_commit(string mode)
    {
        await RunApplicationProcessAsync(async (h, app) =>
        {
            app.Run("PRAGMA wal_autocheckpoint = 0; PRAGMA busy_timeout = 200;");
            for (int i = 0; i < 12; i++)
            {
                app.Run($"INSERT INTO t (id, v) VALUES ({100 + i}, 'app {i}'); PRAGMA wal_checkpoint({mode});");
                h.Capture.Sync(default, force: i % 2 == 0);
                if (i % 4 == 3)
                {
                    await h.SyncAsync();
                }
            }
        }, expectedRows: 17);
    }

    [Fact]
    public async Task Committed_frames_that_break_the_checksum_chain_are_never_skipped_silently()
    {
        using var db = new TestDb();
        using var app = db.Open();
        TestDb.Scalar(app, "SELECT COUNT(*) FROM t");
        using var h = new Harness(db);
        db.Insert(0, 5);
        await h.SyncAsync();
        var first = h.Capture.Position.Generation;

        // A commit SQLite published, then damaged in the WAL file (a bad disk): one byte of its
        // page flipped, so its checksum no longer continues the chain.
        db.Insert(5, 1);
        var wal = ReadShared(db.DbPath + "-wal");
        var header = WalHeader.Parse(wal);
        using (var fs = new FileStream(db.DbPath + "-wal", FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            fs.Position = wal.Length - 100;
            fs.WriteByte((byte)(wal[^100] ^ 0x5a));
        }

        // The capture does not sit still looking caught up: a new generation first; when even
        // that stops at the damage, its own TRUNCATE checkpoint moves the committed pages into
        // the database file and a new generation's snapshot holds them.
        h.Capture.Sync(default, force: true);
        var second = h.Capture.Position.Generation;
        Assert.NotEqual(first, second);
        Assert.Contains("do not continue the shadow wal's checksum chain", h.Log.ToString());
        h.Capture.Sync(default, force: true);
        Assert.NotEqual(second, h.Capture.Position.Generation);
        Assert.Contains("checkpointed past committed frames that failed their checksum chain", h.Log.ToString());
        db.Insert(6, 1);
        await h.SyncAsync();
        var (output, _) = await h.RestoreAsync();
        AssertRestoredEqual(db.DbPath, output);
        Assert.Equal(7, TestDb.Count(output));
        Assert.True(header.FrameSize > 100);
    }

    /// <summary>A long-running sqlite3 shell as the application: one process, one connection.</summary>
    private sealed class Sqlite3Process : IDisposable
    {
        private readonly System.Diagnostics.Process _p;

        public Sqlite3Process(string dbPath)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("sqlite3") { RedirectStandardOutput = true, RedirectStandardInput = true };
            psi.ArgumentList.Add("-bail");
            psi.ArgumentList.Add(dbPath);
            _p = System.Diagnostics.Process.Start(psi)!;
        }

        /// <summary>Runs statements and waits until the shell has finished them.</summary>
        public void Run(string sql)
        {
            _p.StandardInput.WriteLine(sql);
            _p.StandardInput.WriteLine("SELECT 'done-marker';");
            _p.StandardInput.Flush();
            string? line;
            while ((line = _p.StandardOutput.ReadLine()) is not null && line != "done-marker")
            {
            }

            Assert.True(line is not null, "sqlite3 ended early");
        }

        public void Dispose()
        {
            _p.StandardInput.Close();
            _p.WaitForExit(10_000);
            _p.Dispose();
        }
    }
}
