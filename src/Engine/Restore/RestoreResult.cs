using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Restore;

/// <summary>What a restore produced.</summary>
public sealed record RestoreResult
{
    public required string OutputPath { get; init; }

    public required string ReplicaUrl { get; init; }

    public required string Generation { get; init; }

    public required long SnapshotIndex { get; init; }

    /// <summary>The position the restored database corresponds to (end of the last applied commit).</summary>
    public required Position Position { get; init; }

    public required int IndexesApplied { get; init; }

    public required int SegmentsApplied { get; init; }

    public required long BytesRead { get; init; }

    public required long DatabaseSize { get; init; }

    public required TimeSpan Duration { get; init; }

    /// <summary>Creation time of the newest object applied: the point in time restored to.</summary>
    public required DateTimeOffset RestoredTo { get; init; }

    /// <summary>True when -AllowPartial stopped before damage; <see cref="PartialReason"/> says why.</summary>
    public bool Partial { get; init; }

    public string? PartialReason { get; init; }

    /// <summary>True when nothing was done because the output existed and that was asked to be fine.</summary>
    public bool Skipped { get; init; }
}
