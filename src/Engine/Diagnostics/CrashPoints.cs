namespace SqliteReplica.Engine.Diagnostics;

/// <summary>
/// Named points where the reliability campaign can make the replicator die on the spot, as a
/// kill -9 would: set <c>SQLITEREPLICA_CRASH_AT</c> to one of the names below. The process
/// writes one line to stderr (the evidence that the point was reached) and kills itself with
/// SIGKILL: no cleanup, no final sync. Unset, it costs one string comparison.
/// </summary>
public static class CrashPoints
{
    public const string SnapshotUpload = "snapshot-upload";
    public const string SegmentUpload = "segment-upload";
    public const string Checkpoint = "checkpoint";
    public const string WalIndexChange = "wal-index-change";
    public const string GenerationChange = "generation-change";
    public const string RetentionDelete = "retention-delete";

    public const string EnvironmentVariable = "SQLITEREPLICA_CRASH_AT";

    private static readonly string? Target = Environment.GetEnvironmentVariable(EnvironmentVariable);

    public static void Hit(string name)
    {
        if (Target is null || !string.Equals(Target, name, StringComparison.Ordinal))
        {
            return;
        }

        Console.Error.WriteLine($"CRASHPOINT {name} reached: killing process {Environment.ProcessId}");
        Console.Error.Flush();
        Native.Libc.Signal(Environment.ProcessId, 9);
        Environment.FailFast($"crash point {name}");
    }
}
