namespace SqliteReplica.Engine.Verification;

/// <summary>Passed, Failed or Skipped: the words the drill's result uses.</summary>
public static class DrillOutcome
{
    public const string Passed = "Passed";
    public const string Failed = "Failed";
    public const string Skipped = "Skipped";
}

/// <summary>One check of a drill.</summary>
public sealed record DrillCheck(string Name, string Outcome, string Detail, TimeSpan Duration);

/// <summary>What a restore drill found. Passed only when every check ran and passed.</summary>
public sealed record DrillResult
{
    public required string ReplicaUrl { get; init; }

    public string? DatabasePath { get; init; }

    public required string Status { get; init; }

    public required string Reason { get; init; }

    public required IReadOnlyList<DrillCheck> Checks { get; init; }

    public string? RestoredPosition { get; init; }

    public DateTimeOffset? RestoredTo { get; init; }

    /// <summary>Time between the live database's newest commit and the replica holding it (0 when caught up).</summary>
    public TimeSpan? Lag { get; init; }

    public long LiveSize { get; init; }

    public long RestoredSize { get; init; }

    /// <summary>The restored copy, when it was kept.</summary>
    public string? RestoredPath { get; init; }

    public TimeSpan Duration { get; init; }

    public DateTimeOffset FinishedAt { get; init; } = DateTimeOffset.UtcNow;
}
