using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;

namespace SqliteReplica.Engine.Tests;

public class ReplicaLeaseTests
{
    [Fact]
    public async Task A_second_writer_on_the_same_file_replica_location_is_refused_until_the_first_lets_go()
    {
        using var db = new TestDb();
        var client = new FileReplicaClient(db.ReplicaDir);
        var first = await client.AcquireLeaseAsync(LeaseOwner.Current(db.DbPath), default);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => new FileReplicaClient(db.ReplicaDir).AcquireLeaseAsync(LeaseOwner.Current("/other/app.db"), default));
        Assert.Equal(ReplicaErrorCode.AlreadyReplicating, e.Code);
        Assert.Contains("/", e.Message);

        await first.DisposeAsync();
        await using var second = await new FileReplicaClient(db.ReplicaDir).AcquireLeaseAsync(LeaseOwner.Current("/other/app.db"), default);
    }
}
