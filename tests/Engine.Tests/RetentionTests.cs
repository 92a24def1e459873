using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Engine.Tests;

public class RetentionTests
{
    private static void Age(string path, TimeSpan age) => File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);

    private static async Task<(DatabaseCapture Capture, ReplicaSyncer Syncer, FileReplicaClient Client)> ReplicaWithThreeIndexesAsync(TestDb db)
    {
        var capture = new DatabaseCapture(db.DbPath, new CaptureOptions(), NullEngineLog.Instance);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.FromHours(24) }, NullEngineLog.Instance);
        for (int i = 0; i < 3; i++)
        {
            db.Insert(i * 10, 10);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            capture.Checkpoint(CheckpointMode.Restart, default);
            capture.Sync(default);
            await syncer.SyncAsync(default);
        }

        return (capture, syncer, client);
    }

    [Fact]
    public async Task Retention_deletes_whole_indexes_below_the_oldest_retained_snapshot_and_restore_still_works()
    {
        using var db = new TestDb();
        var (capture, syncer, client) = await ReplicaWithThreeIndexesAsync(db);
        using (capture)
        {
            var gen = capture.Position.Generation;
            var newSnapshot = await syncer.SnapshotAsync(default);
            Assert.True(newSnapshot.Index >= 2);

            // Everything but the new snapshot and its index's segments is three days old.
            foreach (var s in await client.ListSnapshotsAsync(gen, default))
            {
                if (s.Index < newSnapshot.Index) Age(client.SnapshotPath(gen, s.Index), TimeSpan.FromDays(3));
            }

            foreach (var s in await client.ListSegmentsAsync(gen, default))
            {
                if (s.Index < newSnapshot.Index) Age(client.SegmentPath(gen, s.Index, s.Offset), TimeSpan.FromDays(3));
            }

            await syncer.EnforceRetentionAsync(default);

            var snapshots = await client.ListSnapshotsAsync(gen, default);
            var segments = await client.ListSegmentsAsync(gen, default);
            Assert.All(snapshots, s => Assert.True(s.Index >= newSnapshot.Index));
            Assert.All(segments, s => Assert.True(s.Index >= newSnapshot.Index));
            Assert.Contains(segments, s => s.Index == newSnapshot.Index && s.Offset == 0);
        }

        var output = Path.Combine(db.Dir, "after-retention.db");
        await new Restorer(client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
    }

    [Fact]
    public async Task Retention_takes_a_snapshot_when_none_is_young_enough_and_deletes_old_generations()
    {
        using var db = new TestDb();
        var (capture, syncer, client) = await ReplicaWithThreeIndexesAsync(db);
        using (capture)
        {
            var gen = capture.Position.Generation;

            // A stale generation from an earlier life of the database.
            var oldGen = "0123456789abcdef";
            Directory.CreateDirectory(Path.Combine(db.ReplicaDir, "generations", oldGen, "snapshots"));
            File.Copy(client.SnapshotPath(gen, 0), client.SnapshotPath(oldGen, 0));
            Age(client.SnapshotPath(oldGen, 0), TimeSpan.FromDays(5));

            foreach (var s in await client.ListSnapshotsAsync(gen, default))
            {
                Age(client.SnapshotPath(gen, s.Index), TimeSpan.FromDays(3));
            }

            await syncer.EnforceRetentionAsync(default);

            Assert.DoesNotContain(oldGen, await client.ListGenerationsAsync(default));
            var snapshots = await client.ListSnapshotsAsync(gen, default);
            var fresh = Assert.Single(snapshots);
            Assert.True(fresh.CreatedAt > DateTimeOffset.UtcNow.AddHours(-1));
            Assert.Equal(capture.Position.Index, fresh.Index);
        }

        var output = Path.Combine(db.Dir, "after.db");
        await new Restorer(client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
    }

    [Fact]
    public async Task Retention_of_zero_keeps_everything()
    {
        using var db = new TestDb();
        var capture = new DatabaseCapture(db.DbPath, new CaptureOptions(), NullEngineLog.Instance);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.Zero }, NullEngineLog.Instance);
        using (capture)
        {
            db.Insert(0, 5);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            var gen = capture.Position.Generation;
            Age(client.SnapshotPath(gen, 0), TimeSpan.FromDays(30));
            await syncer.EnforceRetentionAsync(default);
            Assert.Single(await client.ListSnapshotsAsync(gen, default));
        }
    }
}
