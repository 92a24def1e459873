using SqliteReplica.Engine.Verification;

namespace SqliteReplica.Output;

/// <summary>One check of a restore drill.</summary>
public sealed class ReplicaDrillCheck
{
    internal ReplicaDrillCheck(DrillCheck c)
    {
        Name = c.Name;
        Outcome = c.Outcome;
        Detail = c.Detail;
        Duration = c.Duration;
    }

    public string Name { get; }

    /// <summary>Passed, Failed or Skipped.</summary>
    public string Outcome { get; }

    public string Detail { get; }

    public TimeSpan Duration { get; }

    public override string ToString() => $"{Name}: {Outcome} ({Detail})";
}

/// <summary>
/// What Test-ReplicaRestore found for one database. <see cref="Status"/> is exactly Passed,
/// Failed or Skipped; Passed only when the restore verified, the integrity check passed and the
/// content equals the live database at the same point.
/// </summary>
public sealed class ReplicaDrillResult
{
    internal ReplicaDrillResult(DrillResult r)
    {
        ReplicaUrl = r.ReplicaUrl;
        DatabasePath = r.DatabasePath;
        Status = r.Status;
        Reason = r.Reason;
        Checks = r.Checks.Select(c => new ReplicaDrillCheck(c)).ToArray();
        RestoredPosition = r.RestoredPosition;
        RestoredTo = r.RestoredTo;
        Lag = r.Lag;
        LiveSize = r.LiveSize;
        RestoredSize = r.RestoredSize;
        RestoredPath = r.RestoredPath;
        Duration = r.Duration;
    }

    public string ReplicaUrl { get; }

    /// <summary>The live database compared with (null when none was given).</summary>
    public string? DatabasePath { get; }

    /// <summary>Passed, Failed or Skipped.</summary>
    public string Status { get; }

    public string Reason { get; }

    public ReplicaDrillCheck[] Checks { get; }

    public string? RestoredPosition { get; }

    public DateTimeOffset? RestoredTo { get; }

    /// <summary>Time between the live database's newest commit and the replica holding it (0 when caught up).</summary>
    public TimeSpan? Lag { get; }

    public long LiveSize { get; }

    public long RestoredSize { get; }

    /// <summary>The scratch copy, kept with -KeepRestoredDatabase.</summary>
    public string? RestoredPath { get; }

    public TimeSpan Duration { get; }

    public override string ToString() => $"{Status}: {DatabasePath ?? ReplicaUrl} ({Reason})";
}
