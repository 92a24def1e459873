namespace SqliteReplica.Engine.Restore;

/// <summary>What to restore and where. Selection follows Litestream's meaning of each option.</summary>
public sealed record RestoreOptions
{
    /// <summary>The database file to create.</summary>
    public required string OutputPath { get; init; }

    /// <summary>Restore from this generation only.</summary>
    public string? Generation { get; init; }

    /// <summary>Restore up to and including this WAL index (from the highest snapshot at or below it).</summary>
    public long? Index { get; init; }

    /// <summary>With <see cref="Index"/>: stop at this offset of that index (an exact position, as recorded by a replicator).</summary>
    public long? Offset { get; init; }

    /// <summary>Restore the state as of this time (objects created at or before it).</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>How many WAL indexes are downloaded and verified at once.</summary>
    public int Parallelism { get; init; } = 8;

    /// <summary>Replace an existing output file.</summary>
    public bool Force { get; init; }

    /// <summary>On a damaged chain, restore the last consistent point before the damage instead of failing.</summary>
    public bool AllowPartial { get; init; }

    /// <summary>
    /// Run SQLite's <c>PRAGMA quick_check</c> on the rebuilt file before it is renamed into place
    /// (default on). It catches what object names cannot show, such as a missing last segment
    /// of a WAL index.
    /// </summary>
    public bool QuickCheck { get; init; } = true;

    /// <summary>Where temporary files go; defaults to the output's directory (so the final rename is atomic).</summary>
    public string? TempDirectory { get; init; }
}
