namespace SqliteReplica.Engine.Restore;

/// <summary>How far a restore is: stored bytes read out of the plan's total.</summary>
public readonly record struct RestoreProgress(string Phase, long BytesDone, long BytesTotal);
