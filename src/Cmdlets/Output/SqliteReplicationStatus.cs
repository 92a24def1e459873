using SqliteReplica.Engine.Status;

namespace SqliteReplica.Output;

/// <summary>
/// The health of one replica of one database, read from what its running replicator published.
/// <see cref="Healthy"/> is true only when the replicator is alive and the store has
/// acknowledged the captured commits (or is behind by less than the allowed lag).
/// </summary>
public sealed class SqliteReplicationStatus
{
    private const double ClassAPerMillion = 4.50;
    private const double ClassBPerMillion = 0.36;

    internal SqliteReplicationStatus(string databasePath, ReplicationState? state, ReplicaState? replica, ReplicaHealth health, DateTimeOffset now)
    {
        DatabasePath = databasePath;
        Healthy = health.Healthy;
        Reason = health.Reason;
        LagSeconds = health.LagSeconds;
        ReplicaName = replica?.Name;
        ReplicaUrl = replica?.Url;
        Generation = state?.Generation;
        LocalPosition = state?.LocalPosition;
        ConfirmedPosition = replica?.ConfirmedPosition;
        LastConfirmedAt = replica?.LastConfirmedAt;
        LastSnapshotAt = replica?.LastSnapshotAt;
        BytesPending = replica?.BytesPending ?? 0;
        LastError = replica?.LastError ?? state?.LastError;
        ConsecutiveFailures = replica?.ConsecutiveFailures ?? 0;
        ReplicatorProcessId = state?.ProcessId;
        HeartbeatAt = state?.HeartbeatAt;
        ShadowBytes = state?.ShadowBytes ?? 0;
        ShadowCapBytes = state?.ShadowCapBytes ?? 0;
        ContinuityGivenUpAt = state?.ContinuityGivenUpAt;
        PutRequests = replica?.PutRequests ?? 0;
        GetRequests = replica?.GetRequests ?? 0;
        ListRequests = replica?.ListRequests ?? 0;
        DeleteRequests = replica?.DeleteRequests ?? 0;
        ClassARequests = PutRequests + ListRequests + DeleteRequests + (replica?.MultipartRequests ?? 0);
        ClassBRequests = GetRequests + (replica?.HeadRequests ?? 0);
        if (state is not null && now > state.StartedAt)
        {
            double scale = TimeSpan.FromDays(30).TotalSeconds / Math.Max(60, (now - state.StartedAt).TotalSeconds);
            ProjectedMonthlyClassA = (long)(ClassARequests * scale);
            ProjectedMonthlyClassB = (long)(ClassBRequests * scale);
            ProjectedMonthlyRequestCostUsd = Math.Round(ProjectedMonthlyClassA / 1e6 * ClassAPerMillion + ProjectedMonthlyClassB / 1e6 * ClassBPerMillion, 4);
        }
    }

    public string DatabasePath { get; }

    public string? ReplicaName { get; }

    public string? ReplicaUrl { get; }

    /// <summary>True only when the replicator is alive and the store acknowledged the captured commits within the allowed lag.</summary>
    public bool Healthy { get; }

    /// <summary>Why <see cref="Healthy"/> is what it is.</summary>
    public string Reason { get; }

    public string? Generation { get; }

    /// <summary>What the replicator captured locally (shadow WAL).</summary>
    public string? LocalPosition { get; }

    /// <summary>What the store acknowledged.</summary>
    public string? ConfirmedPosition { get; }

    /// <summary>When the store last acknowledged an upload.</summary>
    public DateTimeOffset? LastConfirmedAt { get; }

    public DateTimeOffset? LastSnapshotAt { get; }

    /// <summary>Seconds the replica has been behind the captured commits (0 when caught up; NaN when unknown).</summary>
    public double LagSeconds { get; }

    /// <summary>Captured bytes the store has not acknowledged yet.</summary>
    public long BytesPending { get; }

    public string? LastError { get; }

    public int ConsecutiveFailures { get; }

    public int? ReplicatorProcessId { get; }

    public DateTimeOffset? HeartbeatAt { get; }

    /// <summary>Bytes the local shadow WAL takes now (captured commits kept until every replica confirmed them).</summary>
    public long ShadowBytes { get; }

    /// <summary>The most the shadow WAL may take; when it is reached, continuity is given up (0 when unknown).</summary>
    public long ShadowCapBytes { get; }

    /// <summary>When the shadow WAL last reached its cap, so the replicas got a new generation (null: never since start).</summary>
    public DateTimeOffset? ContinuityGivenUpAt { get; }

    public long PutRequests { get; }

    public long GetRequests { get; }

    public long ListRequests { get; }

    public long DeleteRequests { get; }

    /// <summary>Requests R2 bills as class A since the replicator started.</summary>
    public long ClassARequests { get; }

    /// <summary>Requests R2 bills as class B since the replicator started.</summary>
    public long ClassBRequests { get; }

    /// <summary>Class A requests a 30-day month would see at the rate so far.</summary>
    public long ProjectedMonthlyClassA { get; }

    public long ProjectedMonthlyClassB { get; }

    /// <summary>R2 request cost of such a month, before the free tier (US dollars).</summary>
    public double ProjectedMonthlyRequestCostUsd { get; }

    public override string ToString() => $"{DatabasePath} -> {ReplicaName}: {(Healthy ? "Healthy" : "UNHEALTHY")} ({Reason})";
}
