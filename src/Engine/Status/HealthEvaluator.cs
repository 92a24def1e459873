namespace SqliteReplica.Engine.Status;

/// <summary>The verdict on one replica of one database.</summary>
public sealed record ReplicaHealth(bool Healthy, string Reason, double LagSeconds);

/// <summary>
/// Judges published state. Healthy means: a replicator is alive (its process exists and its
/// heartbeat is fresh), and the replica's store has acknowledged everything captured, or is
/// behind by less than the allowed lag. Nothing else counts: not a running process, not an
/// upload in flight.
/// </summary>
public static class HealthEvaluator
{
    /// <param name="statusProblem">Why the status file could not be used although it exists (see <see cref="StatusFile.Read(string, out string?)"/>).</param>
    public static ReplicaHealth Evaluate(ReplicationState? state, ReplicaState? replica, DateTimeOffset now, bool processAlive, TimeSpan maxLag, string? statusProblem = null)
    {
        if (state is null && statusProblem is not null)
        {
            return new(false, statusProblem, double.NaN);
        }

        if (state is null)
        {
            return new(false, "no replicator is running for this database (no status published)", double.NaN);
        }

        if (state.StoppedAt is { } stopped)
        {
            return new(false, $"the replicator stopped at {stopped:u}", double.NaN);
        }

        if (!processAlive)
        {
            return new(false, $"the replicator (process {state.ProcessId} on {state.Host}) is not running", double.NaN);
        }

        var heartbeatAge = now - state.HeartbeatAt;
        var staleAfter = TimeSpan.FromSeconds(Math.Max(3 * state.HeartbeatSeconds, maxLag.TotalSeconds));
        if (heartbeatAge > staleAfter)
        {
            return new(false, $"the replicator's heartbeat is {heartbeatAge.TotalSeconds:F0} s old (frozen, or its meta directory cannot be written)", double.NaN);
        }

        if (replica is null)
        {
            return new(false, "the replicator does not report this replica", double.NaN);
        }

        if (state.Generation is not null && state.LastError is not null)
        {
            return new(false, $"the replicator cannot capture the database: {state.LastError}", double.NaN);
        }

        if (state.Generation is null)
        {
            return new(false, state.LastError is null ? "the database is not being captured yet" : $"the database cannot be captured: {state.LastError}", double.NaN);
        }

        double lag = replica.BehindSince is { } since ? Math.Max(0, (now - since).TotalSeconds) : 0;
        if (replica.ConfirmedGeneration != state.Generation || replica.ConfirmedPosition is null)
        {
            return new(false, replica.LastError is null ? "the replica has not confirmed the current generation yet" : $"the replica has not confirmed the current generation: {replica.LastError}", lag);
        }

        if (lag > maxLag.TotalSeconds)
        {
            var why = replica.LastError is null ? "" : $" (last error, {replica.ConsecutiveFailures} in a row: {replica.LastError})";
            return new(false, $"the replica is {lag:F0} s behind ({replica.BytesPending} bytes not acknowledged){why}", lag);
        }

        if (replica.LastValidationStatus == Verification.DrillOutcome.Failed)
        {
            return new(false, $"the last validation (restore drill at {replica.LastValidationAt:u}) failed: {replica.LastValidationReason}", lag);
        }

        if (replica.ConsecutiveFailures > 0 && replica.LastError is not null && lag > 0)
        {
            return new(false, $"uploads are failing ({replica.ConsecutiveFailures} in a row): {replica.LastError}", lag);
        }

        return new(true, lag == 0 ? "caught up: the store acknowledged every captured commit" : $"{lag:F1} s behind, within the allowed {maxLag.TotalSeconds:F0} s", lag);
    }
}
