namespace SqliteReplica.Engine.Capture;

/// <summary>SQLite checkpoint modes the replicator uses.</summary>
public enum CheckpointMode
{
    Passive,
    Restart,

    /// <summary>
    /// A RESTART whose restarting write of ours also cuts the WAL file to the frames it holds
    /// (journal_size_limit 0 for that write). SQLite's own TRUNCATE mode is not used: it empties
    /// the WAL after our read was let go and reports 0 frames, so a commit that landed while it
    /// waited for the write lock could not be told from nothing.
    /// </summary>
    Truncate,
}
