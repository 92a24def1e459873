using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Verification;

namespace SqliteReplica.Engine.Tests;

public class RestoreDrillTests
{
    private static async Task<(DatabaseCapture Capture, ReplicaSyncer Syncer, FileReplicaClient Client)> ReplicateAsync(TestDb db, int rows)
    {
        var capture = new DatabaseCapture(db.DbPath, new CaptureOptions(), NullEngineLog.Instance);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero }, NullEngineLog.Instance);
        db.Insert(0, rows);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        return (capture, syncer, client);
    }

    [Fact]
    public async Task Drill_passes_when_the_replica_holds_the_live_point_and_the_content_is_equal()
    {
        using var db = new TestDb();
        var (capture, _, client) = await ReplicateAsync(db, 30);
        using (capture)
        {
            var result = await RestoreDrill.RunAsync(client, new DrillOptions { LiveDatabasePath = db.DbPath, MaxLag = TimeSpan.FromSeconds(5) }, NullEngineLog.Instance, default);
            Assert.Equal(DrillOutcome.Passed, result.Status);
            Assert.Contains(result.Checks, c => c.Name == "Freshness" && c.Outcome == DrillOutcome.Passed);
            Assert.Contains(result.Checks, c => c.Name == "Content" && c.Outcome == DrillOutcome.Passed);
            Assert.True(result.Lag < TimeSpan.FromSeconds(1), $"lag {result.Lag}");
        }
    }

    [Fact]
    public async Task Drill_waits_for_the_replica_and_restores_exactly_the_live_point()
    {
        using var db = new TestDb();
        var (capture, syncer, client) = await ReplicateAsync(db, 10);
        using (capture)
        {
            db.Insert(100, 10);
            capture.Sync(default);

            // The replica catches up while the drill waits.
            var drill = RestoreDrill.RunAsync(client, new DrillOptions { LiveDatabasePath = db.DbPath, MaxLag = TimeSpan.FromSeconds(20) }, NullEngineLog.Instance, default);
            await Task.Delay(700);
            await syncer.SyncAsync(default);
            var result = await drill;
            Assert.Equal(DrillOutcome.Passed, result.Status);
            Assert.True(result.Lag > TimeSpan.FromMilliseconds(300), $"lag {result.Lag}");
        }
    }

    [Fact]
    public async Task Drill_fails_as_stale_when_the_replica_never_reaches_the_live_point()
    {
        using var db = new TestDb();
        var (capture, _, client) = await ReplicateAsync(db, 10);
        using (capture)
        {
            db.Insert(100, 10);
            capture.Sync(default); // captured locally, never uploaded
            var result = await RestoreDrill.RunAsync(client, new DrillOptions { LiveDatabasePath = db.DbPath, MaxLag = TimeSpan.FromSeconds(1) }, NullEngineLog.Instance, default);
            Assert.Equal(DrillOutcome.Failed, result.Status);
            Assert.Contains(result.Checks, c => c.Name == "Freshness" && c.Outcome == DrillOutcome.Failed);
            Assert.Contains(result.Checks, c => c.Name == "Content" && c.Outcome == DrillOutcome.Failed);
        }
    }

    [Fact]
    public async Task Drill_without_a_replicator_passes_for_an_unchanged_database_and_fails_once_it_moved_on()
    {
        using var db = new TestDb();
        var (capture, _, client) = await ReplicateAsync(db, 10);
        capture.Dispose();
        Directory.Delete(capture.Meta.Root, recursive: true); // no replicator state on this box

        var same = await RestoreDrill.RunAsync(client, new DrillOptions { LiveDatabasePath = db.DbPath, MaxLag = TimeSpan.FromSeconds(1) }, NullEngineLog.Instance, default);
        Assert.Equal(DrillOutcome.Passed, same.Status);

        db.Insert(500, 3);
        var moved = await RestoreDrill.RunAsync(client, new DrillOptions { LiveDatabasePath = db.DbPath, MaxLag = TimeSpan.FromSeconds(1) }, NullEngineLog.Instance, default);
        Assert.Equal(DrillOutcome.Failed, moved.Status);
        Assert.Contains(moved.Checks, c => c.Name == "Content" && c.Outcome == DrillOutcome.Failed && c.Detail.Contains("stale"));
    }

    [Fact]
    public async Task Drill_without_a_live_database_is_skipped_not_passed()
    {
        using var db = new TestDb();
        var (capture, _, client) = await ReplicateAsync(db, 5);
        using (capture)
        {
            var result = await RestoreDrill.RunAsync(client, new DrillOptions(), NullEngineLog.Instance, default);
            Assert.Equal(DrillOutcome.Skipped, result.Status);
            Assert.Contains(result.Checks, c => c.Name == "Integrity" && c.Outcome == DrillOutcome.Passed);
        }
    }

    [Fact]
    public async Task Drill_fails_on_a_missing_segment_and_cleans_its_scratch_directory()
    {
        using var db = new TestDb();
        var (capture, syncer, client) = await ReplicateAsync(db, 5);
        using (capture)
        {
            db.Insert(100, 5);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            db.Insert(200, 5);
            capture.Sync(default);
            await syncer.SyncAsync(default);
            var segments = await client.ListSegmentsAsync(capture.Position.Generation, default);
            var middle = segments[1];
            File.Delete(client.SegmentPath(middle.Generation, middle.Index, middle.Offset));
            var scratch = Path.Combine(db.Dir, "scratch");
            Directory.CreateDirectory(scratch);
            var result = await RestoreDrill.RunAsync(client, new DrillOptions { LiveDatabasePath = db.DbPath, MaxLag = TimeSpan.FromSeconds(1), ScratchDirectory = scratch }, NullEngineLog.Instance, default);
            Assert.Equal(DrillOutcome.Failed, result.Status);
            Assert.Contains(result.Checks, c => c.Name == "Restore" && c.Outcome == DrillOutcome.Failed && c.Detail.Contains("SegmentMissing"));
            Assert.Empty(Directory.GetFileSystemEntries(scratch));
        }
    }
}
