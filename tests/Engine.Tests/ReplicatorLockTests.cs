using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// One replicator per database, whatever the meta path or the spelling of the database path, and
/// databases reached through symbolic links (the reliability campaign's two-writer findings).
/// </summary>
public class ReplicatorLockTests
{
    private static CaptureOptions Options(string? metaPath = null) => new()
    {
        CheckpointInterval = TimeSpan.Zero,
        MetaPath = metaPath,
    };

    [Fact]
    public void A_second_capture_with_another_meta_path_fails_with_AlreadyReplicating()
    {
        using var db = new TestDb();
        using var first = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
        first.AcquireLock();
        var otherMeta = Path.Combine(db.Dir, "other-meta");
        using var second = new DatabaseCapture(db.DbPath, Options(otherMeta), NullEngineLog.Instance);

        var e = Assert.Throws<ReplicaException>(() => second.AcquireLock());
        Assert.Equal(ReplicaErrorCode.AlreadyReplicating, e.Code);
        Assert.Contains("Stop that replicator first", e.Message, StringComparison.Ordinal);
        // Refused before anything was written for the second one.
        Assert.False(Directory.Exists(otherMeta));
    }

    [Fact]
    public void A_second_capture_through_a_symbolic_link_or_a_linked_directory_fails_with_AlreadyReplicating()
    {
        using var db = new TestDb();
        var link = Path.Combine(db.Dir, "link.db");
        File.CreateSymbolicLink(link, db.DbPath);
        var dirLink = Path.Combine(Path.GetTempPath(), "sr-dirlink-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateSymbolicLink(dirLink, db.Dir);
        try
        {
            using var first = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
            first.AcquireLock();
            foreach (var spelling in new[] { link, Path.Combine(dirLink, "app.db"), Path.Combine(dirLink, "link.db"), Path.Combine(db.Dir, ".", "app.db") })
            {
                using var second = new DatabaseCapture(spelling, Options(Path.Combine(db.Dir, "meta-" + Guid.NewGuid().ToString("N")[..6])), NullEngineLog.Instance);
                Assert.Equal(db.DbPath, second.DbPath);
                Assert.Equal(ReplicaErrorCode.AlreadyReplicating, Assert.Throws<ReplicaException>(() => second.AcquireLock()).Code);
            }
        }
        finally
        {
            Directory.Delete(dirLink);
        }
    }

    [Fact]
    public void The_database_lock_is_released_when_the_capture_is_disposed()
    {
        using var db = new TestDb();
        var first = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
        first.AcquireLock();
        first.Dispose();

        using var second = new DatabaseCapture(db.DbPath, Options(Path.Combine(db.Dir, "other-meta")), NullEngineLog.Instance);
        second.AcquireLock();
    }

    [Fact]
    public void The_lock_file_is_beside_the_resolved_database_and_is_not_the_database_itself()
    {
        using var db = new TestDb();
        var link = Path.Combine(db.Dir, "link.db");
        File.CreateSymbolicLink(link, db.DbPath);
        Assert.Equal(Path.Combine(db.Dir, ".app.db-sqlitereplica.lock"), DatabaseLock.LockPathFor(DatabasePath.Resolve(link)));

        // While the lock is held, SQLite (the application) and .NET readers of the database work.
        using var held = DatabaseLock.Acquire(link);
        db.Insert(0, 3);
        using (var fs = new FileStream(db.DbPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            Assert.True(fs.Length > 0);
        }

        Assert.Equal(3, TestDb.Count(db.DbPath));
    }

    [Fact]
    public void A_directory_given_as_the_database_is_refused_with_DatabaseUnusable()
    {
        using var db = new TestDb();
        var dir = Path.Combine(db.Dir, "a-directory");
        Directory.CreateDirectory(dir);
        using var capture = new DatabaseCapture(dir, Options(), NullEngineLog.Instance);

        var e = Assert.Throws<ReplicaException>(() => capture.AcquireLock());
        Assert.Equal(ReplicaErrorCode.DatabaseUnusable, e.Code);
        Assert.Contains("is a directory", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(MetaDirectory.DefaultFor(dir)));
    }

    [Fact]
    public void A_meta_lock_file_replaced_by_a_directory_is_MetaNotWritable_and_says_what_to_remove()
    {
        using var db = new TestDb();
        var meta = new MetaDirectory(MetaDirectory.DefaultFor(db.DbPath));
        var lockDir = Path.Combine(meta.Root, MetaDirectory.LockFileName);
        Directory.CreateDirectory(Path.Combine(lockDir, "inside"));
        using var capture = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);

        var e = Assert.Throws<ReplicaException>(() => capture.AcquireLock());
        Assert.Equal(ReplicaErrorCode.MetaNotWritable, e.Code);
        Assert.Contains(lockDir, e.Message, StringComparison.Ordinal);
        Assert.Contains("Remove", e.Message, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(lockDir, "inside")), "nothing is removed for the user");

        // The database lock was released with the failure: after removing the directory, a start works.
        Directory.Delete(lockDir, recursive: true);
        capture.AcquireLock();
    }

    [Fact]
    public void A_database_lock_file_replaced_by_a_directory_is_a_clear_error()
    {
        using var db = new TestDb();
        Directory.CreateDirectory(DatabaseLock.LockPathFor(db.DbPath));
        using var capture = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);

        var e = Assert.Throws<ReplicaException>(() => capture.AcquireLock());
        Assert.Equal(ReplicaErrorCode.DatabaseUnusable, e.Code);
        Assert.Contains("Remove that directory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_loop_of_symbolic_links_is_DatabaseUnusable()
    {
        using var db = new TestDb();
        var a = Path.Combine(db.Dir, "a.db");
        var b = Path.Combine(db.Dir, "b.db");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);
        Assert.Equal(ReplicaErrorCode.DatabaseUnusable, Assert.Throws<ReplicaException>(() => DatabasePath.Resolve(a)).Code);
    }

    [Fact]
    public void A_relative_link_chain_resolves_to_the_final_target_and_a_dangling_link_to_the_file_sqlite_would_create()
    {
        using var db = new TestDb();
        var sub = Directory.CreateDirectory(Path.Combine(db.Dir, "sub")).FullName;
        var first = Path.Combine(sub, "first.db");
        var second = Path.Combine(db.Dir, "second.db");
        File.CreateSymbolicLink(second, "app.db");         // relative to its own directory
        File.CreateSymbolicLink(first, "../second.db");
        Assert.Equal(db.DbPath, DatabasePath.Resolve(first));

        var dangling = Path.Combine(db.Dir, "dangling.db");
        File.CreateSymbolicLink(dangling, "not-yet.db");
        Assert.Equal(Path.Combine(db.Dir, "not-yet.db"), DatabasePath.Resolve(dangling));
    }

    [Fact]
    public async Task Replication_through_a_symbolic_link_captures_the_wal_beside_the_target_and_restores_everything()
    {
        using var db = new TestDb();
        db.Insert(0, 10);
        var link = Path.Combine(db.Dir, "link.db");
        File.CreateSymbolicLink(link, db.DbPath);

        using var capture = new DatabaseCapture(link, Options(), NullEngineLog.Instance);
        Assert.Equal(db.DbPath + "-wal", capture.WalPath);
        Assert.Equal(Path.Combine(db.Dir, ".app.db-litestream"), capture.Meta.Root);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.Zero }, NullEngineLog.Instance);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        db.Insert(10, 15, perTx: 5);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        Assert.Equal(capture.Position, syncer.ConfirmedPosition);

        var output = Path.Combine(db.Dir, "restored.db");
        await new Restorer(client, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
        Assert.Equal(25, TestDb.Count(output));
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(output));
    }

    [Fact]
    public async Task A_restore_with_Force_onto_a_symbolic_link_replaces_the_target_and_keeps_the_link()
    {
        using var db = new TestDb();
        db.Insert(0, 7);
        var capture = new DatabaseCapture(db.DbPath, Options(), NullEngineLog.Instance);
        var client = new FileReplicaClient(db.ReplicaDir);
        var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.Zero }, NullEngineLog.Instance);
        capture.Sync(default);
        await syncer.SyncAsync(default);
        capture.Dispose();

        // An older database (with a WAL of its own) reached through a link.
        var target = Path.Combine(db.Dir, "target.db");
        using (var c = db.Open(target))
        {
            TestDb.Exec(c, "PRAGMA journal_mode = wal");
            TestDb.Exec(c, "CREATE TABLE other (x)");
        }

        var link = Path.Combine(db.Dir, "out-link.db");
        File.CreateSymbolicLink(link, target);

        var restorer = new Restorer(client, NullEngineLog.Instance);
        var refused = await Assert.ThrowsAsync<ReplicaException>(() => restorer.RestoreAsync(new RestoreOptions { OutputPath = link }, null, default));
        Assert.Equal(ReplicaErrorCode.OutputExists, refused.Code);

        var result = await restorer.RestoreAsync(new RestoreOptions { OutputPath = link, Force = true }, null, default);
        Assert.Equal(target, result.OutputPath);
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal(7, TestDb.Count(link));
        Assert.Equal(TestDb.Digest(db.DbPath), TestDb.Digest(target));
    }
}
