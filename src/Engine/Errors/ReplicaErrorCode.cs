namespace SqliteReplica.Engine.Errors;

/// <summary>
/// Every failure the engine reports has one of these codes. The cmdlets map each code, in one
/// table, to a stable PowerShell error id and category; the names never change once released.
/// </summary>
public enum ReplicaErrorCode
{
    /// <summary>An argument or combination of arguments is not usable.</summary>
    InvalidArgument,
    /// <summary>A replica URL could not be parsed or names an unsupported scheme.</summary>
    InvalidReplicaUrl,
    /// <summary>The database file does not exist.</summary>
    DatabaseNotFound,
    /// <summary>The database could not be opened, switched to WAL mode, or read.</summary>
    DatabaseUnusable,
    /// <summary>The replica location cannot be created or written.</summary>
    ReplicaNotWritable,
    /// <summary>The replica location cannot be read.</summary>
    ReplicaNotReadable,
    /// <summary>The replica holds no generation, or none that matches the selection.</summary>
    NoMatchingBackup,
    /// <summary>The chosen generation has no snapshot usable for the requested point.</summary>
    SnapshotMissing,
    /// <summary>A WAL segment or a whole WAL index is missing from the chain.</summary>
    SegmentMissing,
    /// <summary>An object is truncated, fails its LZ4 checksum, or its WAL bytes fail verification.</summary>
    SegmentCorrupt,
    /// <summary>Every object verified, yet the rebuilt database fails SQLite's own check: an object is missing that names cannot reveal (e.g. the last segment of an index).</summary>
    RestoredDatabaseCorrupt,
    /// <summary>The restore output already exists and -Force was not given.</summary>
    OutputExists,
    /// <summary>The restore output path cannot be written.</summary>
    OutputNotWritable,
    /// <summary>The local meta directory (shadow WAL) cannot be written.</summary>
    MetaNotWritable,
    /// <summary>Another replicator already owns this database or replica location.</summary>
    AlreadyReplicating,
    /// <summary>The store refused the credentials or the operation (HTTP 403).</summary>
    StoreAccessDenied,
    /// <summary>The bucket does not exist.</summary>
    BucketNotFound,
    /// <summary>The store refused a request as malformed or unsupported (HTTP 400, 501...): retrying would not help.</summary>
    StoreRejected,
    /// <summary>The store could not be reached or kept failing after every retry.</summary>
    StoreUnreachable,
    /// <summary>The configuration file does not exist or cannot be read.</summary>
    ConfigNotFound,
    /// <summary>The configuration file is not valid YAML, has a wrong type or a bad value.</summary>
    ConfigInvalid,
    /// <summary>The configuration file has a key SqliteReplica does not know (a typo, most likely).</summary>
    ConfigUnknownKey,
    /// <summary>The configuration uses a Litestream feature SqliteReplica does not implement.</summary>
    ConfigNotSupported,
    /// <summary>The configuration refers to an environment variable that is not set.</summary>
    ConfigUnsetVariable,
    /// <summary>The database is not in the configuration file.</summary>
    DatabaseNotConfigured,
    /// <summary>The application started by 'exec' exited with a failure code.</summary>
    ApplicationFailed,
    /// <summary>A restore drill found a problem (a check failed).</summary>
    DrillFailed,
    /// <summary>The operation was cancelled.</summary>
    Cancelled,
    /// <summary>An unexpected internal failure; the message carries the detail.</summary>
    Internal,
}
