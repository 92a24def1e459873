namespace SqliteReplica.Engine.Replication;

/// <summary>How one replica of a database is kept. Defaults are Litestream v0.3's.</summary>
public sealed record ReplicaOptions
{
    /// <summary>Name of the replica (unique per database); defaults to the store type.</summary>
    public string? Name { get; init; }

    /// <summary>At most one segment upload per interval; a change after a quiet spell is uploaded at once.</summary>
    public TimeSpan SyncInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A new snapshot this often (zero: only when a generation starts or retention needs one).</summary>
    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.Zero;

    /// <summary>Keep snapshots (and what they need) this long (zero: keep everything).</summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromHours(24);

    /// <summary>How often retention runs (it runs at min(this, Retention)).</summary>
    public TimeSpan RetentionCheckInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Run the restore drill against this replica this often (zero: off).</summary>
    public TimeSpan ValidationInterval { get; init; } = TimeSpan.Zero;

    /// <summary>How long the final sync at shutdown may take before giving up and saying so.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(20);
}
