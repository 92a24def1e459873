namespace SqliteReplica.Engine.Capture;

/// <summary>SQLite checkpoint modes the replicator uses.</summary>
public enum CheckpointMode
{
    Passive,
    Restart,
    Truncate,
}
