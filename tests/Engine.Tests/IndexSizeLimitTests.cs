using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Litestream v0.3.13 silently drops segments past 4 GiB in an index, so no index may grow that
/// far. The limits are scaled down here; the mechanism is the same.
/// </summary>
public class IndexSizeLimitTests
{
    [Fact]
    public async Task An_index_reaching_the_soft_limit_is_closed_by_a_restart_even_with_restart_checkpoints_disabled()
    {
        using var db = new TestDb();
        var options = new CaptureOptions { MaxIndexBytes = 200 * 1024, MaxCheckpointPageCount = 0, MinCheckpointPageCount = 1_000_000, CheckpointInterval = TimeSpan.Zero };
        using var capture = new DatabaseCapture(db.DbPath, options, NullEngineLog.Instance);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero }, NullEngineLog.Instance);
        for (int i = 0; i < 12; i++)
        {
            db.Insert(i * 20, 20, perTx: 20, blobBytes: 2000);
            capture.Sync(default);
            await syncer.SyncAsync(default);
        }

        Assert.True(capture.Position.Index >= 2, $"only the size limit could close indexes here, yet the position is {capture.Position}");
        Assert.Single(await client.ListGenerationsAsync(default));
        var output = Path.Combine(db.Dir, "restored.db");
        await new Restorer(client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
    }

    [Fact]
    public async Task An_index_that_passed_the_hard_limit_is_closed_with_a_new_generation_once_the_wal_can_restart()
    {
        using var db = new TestDb();
        var log = new List<string>();
        var options = new CaptureOptions { MaxIndexBytes = 100 * 1024, HardIndexBytes = 300 * 1024, MaxCheckpointPageCount = 0, MinCheckpointPageCount = 1_000_000, CheckpointInterval = TimeSpan.Zero };
        using var capture = new DatabaseCapture(db.DbPath, options, NullEngineLog.Instance);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero }, NullEngineLog.Instance);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        var first = capture.Position.Generation;

        // A long reader pins the WAL, so no checkpoint can restart it: the index grows past the
        // hard limit, and that alone must not churn generations.
        using (var reader = db.Open())
        {
            TestDb.Exec(reader, "BEGIN");
            TestDb.Scalar(reader, "SELECT COUNT(*) FROM t");
            for (int i = 0; i < 10; i++)
            {
                db.Insert(i * 20, 20, perTx: 20, blobBytes: 2000);
                capture.Sync(default);
                await syncer.SyncAsync(default);
            }

            Assert.Equal(first, capture.Position.Generation);
            Assert.True(capture.Position.Offset > options.HardIndexBytes);
            TestDb.Exec(reader, "ROLLBACK");
        }

        // The reader is gone: the next size-triggered restart closes the oversized index with a
        // new generation rather than a next index.
        db.Insert(1000, 5);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        Assert.NotEqual(first, capture.Position.Generation);
        Assert.True(capture.Position.Offset < options.HardIndexBytes);

        var output = Path.Combine(db.Dir, "restored.db");
        await new Restorer(client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
    }
}
