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

    [Fact]
    public async Task With_the_store_down_the_shadow_wal_stays_under_its_cap_and_the_application_is_not_blocked()
    {
        using var db = new TestDb();
        var log = new ListLog();
        const long cap = 128 * 1024;
        var options = new CaptureOptions { ShadowCapMinimumBytes = cap, ShadowCapDatabaseMultiple = 0, MonitorInterval = TimeSpan.FromMilliseconds(50), CheckpointInterval = TimeSpan.Zero };
        await using var replicator = new DatabaseReplicator(db.DbPath, options, [(new DownStore(), new ReplicaOptions { SyncInterval = TimeSpan.FromMilliseconds(50) })], log);
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
}
