namespace SqliteReplica.Engine.Replicas;

/// <summary>Who holds a replica location: enough to tell "myself, restarted" from "someone else".</summary>
public sealed record LeaseOwner(string Host, int ProcessId, string DatabasePath)
{
    public static LeaseOwner Current(string databasePath) => new(Environment.MachineName, Environment.ProcessId, databasePath);

    /// <summary>The same replicator on the same host (possibly restarted after a crash) may take its own lease back at once.</summary>
    public bool SameReplicator(LeaseOwner other) =>
        string.Equals(Host, other.Host, StringComparison.Ordinal) && string.Equals(DatabasePath, other.DatabasePath, StringComparison.Ordinal);

    public override string ToString() => $"process {ProcessId} on {Host} replicating '{DatabasePath}'";
}

/// <summary>
/// One writer per replica location. Held for the replicator's lifetime; renewals ride along with
/// uploads (an idle database makes no requests), so a lease lapses when its holder dies or
/// stays idle past the expiry, and a replicator that finds its lease taken stops uploading.
/// </summary>
public interface IReplicaLease : IAsyncDisposable
{
    /// <summary>Renews the lease if enough of its lifetime has passed; throws AlreadyReplicating if it was taken.</summary>
    Task RenewIfDueAsync(CancellationToken ct);
}
