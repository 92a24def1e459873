using SqliteReplica.Engine.Status;

namespace SqliteReplica.Engine.Tests;

public class HealthEvaluatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    private static (ReplicationState State, ReplicaState Replica) CaughtUp()
    {
        var replica = new ReplicaState { Name = "s3", ConfirmedGeneration = "0123456789abcdef", ConfirmedPosition = "0123456789abcdef/00000001:4152", SyncIntervalSeconds = 1 };
        var state = new ReplicationState
        {
            ProcessId = 42,
            Host = "box",
            StartedAt = Now.AddHours(-1),
            HeartbeatAt = Now.AddMilliseconds(-500),
            HeartbeatSeconds = 1,
            Generation = "0123456789abcdef",
            LocalPosition = "0123456789abcdef/00000001:4152",
            Replicas = [replica],
        };
        return (state, replica);
    }

    [Fact]
    public void A_live_caught_up_replica_is_healthy_with_zero_lag_however_old_its_last_write()
    {
        var (state, replica) = CaughtUp();
        var h = HealthEvaluator.Evaluate(state, replica with { LastConfirmedAt = Now.AddDays(-3) }, Now, processAlive: true, TimeSpan.FromSeconds(3));
        Assert.True(h.Healthy, h.Reason);
        Assert.Equal(0, h.LagSeconds);
    }

    [Fact]
    public void No_status_means_no_replicator_and_is_unhealthy()
    {
        var h = HealthEvaluator.Evaluate(null, null, Now, processAlive: false, TimeSpan.FromSeconds(3));
        Assert.False(h.Healthy);
        Assert.Contains("no replicator", h.Reason);
    }

    [Fact]
    public void A_dead_process_a_stale_heartbeat_or_a_clean_stop_is_unhealthy()
    {
        var (state, replica) = CaughtUp();
        Assert.False(HealthEvaluator.Evaluate(state, replica, Now, processAlive: false, TimeSpan.FromSeconds(3)).Healthy);
        Assert.False(HealthEvaluator.Evaluate(state with { HeartbeatAt = Now.AddSeconds(-10) }, replica, Now, processAlive: true, TimeSpan.FromSeconds(3)).Healthy);
        Assert.False(HealthEvaluator.Evaluate(state with { StoppedAt = Now.AddSeconds(-1) }, replica, Now, processAlive: true, TimeSpan.FromSeconds(3)).Healthy);
    }

    [Fact]
    public void A_replica_behind_longer_than_the_allowed_lag_is_unhealthy_and_says_why()
    {
        var (state, replica) = CaughtUp();
        var behind = replica with { BehindSince = Now.AddSeconds(-10), BytesPending = 4120, LastError = "HTTP 403 AccessDenied", ConsecutiveFailures = 2 };
        var h = HealthEvaluator.Evaluate(state, behind, Now, processAlive: true, TimeSpan.FromSeconds(3));
        Assert.False(h.Healthy);
        Assert.Contains("403", h.Reason);
        Assert.Equal(10, h.LagSeconds, 1);
    }

    [Fact]
    public void A_replica_that_has_not_confirmed_the_current_generation_is_unhealthy()
    {
        var (state, replica) = CaughtUp();
        var h = HealthEvaluator.Evaluate(state with { Generation = "fedcba9876543210" }, replica, Now, processAlive: true, TimeSpan.FromSeconds(3));
        Assert.False(h.Healthy);
    }

    [Fact]
    public void Briefly_behind_without_errors_is_healthy()
    {
        var (state, replica) = CaughtUp();
        var h = HealthEvaluator.Evaluate(state, replica with { BehindSince = Now.AddSeconds(-1) }, Now, processAlive: true, TimeSpan.FromSeconds(3));
        Assert.True(h.Healthy, h.Reason);
    }
}
