namespace SqliteReplica.Output;

/// <summary>What Restore-SqliteReplica produced.</summary>
public sealed class SqliteRestoreResult
{
    internal SqliteRestoreResult(Engine.Restore.RestoreResult r)
    {
        OutputPath = r.OutputPath;
        ReplicaUrl = r.ReplicaUrl;
        Generation = r.Generation;
        SnapshotIndex = r.SnapshotIndex;
        Index = r.Position.Index;
        Offset = r.Position.Offset;
        Position = r.Position.ToString();
        IndexesApplied = r.IndexesApplied;
        SegmentsApplied = r.SegmentsApplied;
        BytesRead = r.BytesRead;
        DatabaseSize = r.DatabaseSize;
        Duration = r.Duration;
        RestoredTo = r.RestoredTo;
        Partial = r.Partial;
        PartialReason = r.PartialReason;
    }

    /// <summary>The database file written.</summary>
    public string OutputPath { get; }

    public string ReplicaUrl { get; }

    public string Generation { get; }

    /// <summary>Index of the snapshot the restore started from.</summary>
    public long SnapshotIndex { get; }

    /// <summary>The last WAL index applied.</summary>
    public long Index { get; }

    /// <summary>Offset in that index just past the last applied commit.</summary>
    public long Offset { get; }

    /// <summary>The restored position as generation/index:offset.</summary>
    public string Position { get; }

    public int IndexesApplied { get; }

    public int SegmentsApplied { get; }

    /// <summary>Stored bytes read from the replica.</summary>
    public long BytesRead { get; }

    /// <summary>Size of the restored database file in bytes.</summary>
    public long DatabaseSize { get; }

    public TimeSpan Duration { get; }

    /// <summary>Creation time of the newest object applied: the point in time the database now reflects.</summary>
    public DateTimeOffset RestoredTo { get; }

    /// <summary>True when -AllowPartial stopped before damage in the chain.</summary>
    public bool Partial { get; }

    public string? PartialReason { get; }

    public override string ToString() => Partial
        ? $"{OutputPath} restored PARTIALLY to {Position} ({PartialReason})"
        : $"{OutputPath} restored to {Position} as of {RestoredTo:u}";
}
