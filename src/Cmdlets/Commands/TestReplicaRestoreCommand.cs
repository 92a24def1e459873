using System.Management.Automation;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Verification;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>
/// The restore drill: restores a replica into scratch, checks its integrity and compares every
/// table with the live database at the same logical point. Writes one result per database as
/// soon as it is done; a failure is also a non-terminating error (so a scheduled
/// `pwsh -Command` exits non-zero). A skipped or partial check is never Passed.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "ReplicaRestore", DefaultParameterSetName = UrlSet)]
[OutputType(typeof(ReplicaDrillResult), typeof(bool))]
public sealed class TestReplicaRestoreCommand : ReplicaCmdlet
{
    /// <summary>
    /// The live database to compare with (with -ConfigPath: as configured). A piped restore
    /// result binds its OutputPath here, so the drill compares that copy with a fresh restore of
    /// the same point.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = UrlSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("OutputPath")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ConfiguredDatabaseCompleter))]
    public override string DatabasePath { get; set; } = null!;

    /// <summary>Check this generation (from Get-ReplicaSnapshot); the live comparison is then skipped.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-f]{16}$")]
    [ArgumentCompleter(typeof(GenerationCompleter))]
    public string? Generation { get; set; }

    /// <summary>Check up to this WAL index (from Get-ReplicaSnapshot); the live comparison is then skipped.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 0x7FFFFFFF)]
    public long? Index { get; set; }

    /// <summary>With -Index: stop at this offset of that index (an exact restored position, from a piped restore result).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, long.MaxValue)]
    public long? Offset { get; set; }

    /// <summary>How long the replica may take to hold the live point, and how stale it may be (default 1 minute).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan MaxLag { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Keep the scratch copy (its path is in RestoredPath).</summary>
    [Parameter]
    public SwitchParameter KeepRestoredDatabase { get; set; }

    /// <summary>Return only $true (Passed) or $false.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        DrillResult result;
        try
        {
            var client = CreateClient();
            string? live = DatabasePath is null ? null : ResolvePath(DatabasePath);
            string? meta = null;
            if (ParameterSetName == ConfigSet && live is not null)
            {
                meta = new ConfigLoader().Load(ResolvePath(ConfigPath)).Find(live)?.MetaPath;
            }

            var options = new DrillOptions
            {
                LiveDatabasePath = live,
                MetaPath = meta,
                Generation = Generation,
                Index = Index,
                Offset = Index is null ? null : Offset,
                MaxLag = MaxLag,
                KeepRestoredDatabase = KeepRestoredDatabase,
            };
            result = Run(ct => RestoreDrill.RunAsync(client, options, Messages, ct));
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            // The drill could not even start (bad URL, unreadable config...): that is a failure too.
            WriteEngineError(e, ReplicaTarget);
            if (Quiet)
            {
                WriteObject(false);
            }

            return;
        }

        if (result.Status == DrillOutcome.Failed)
        {
            WriteError(new ErrorRecord(
                new ReplicaException(ReplicaErrorCode.DrillFailed, $"Restore drill failed for {result.DatabasePath ?? result.ReplicaUrl}: {result.Reason}"),
                "DrillFailed", ErrorCategory.InvalidResult, result.DatabasePath ?? result.ReplicaUrl));
        }

        WriteObject(Quiet ? result.Status == DrillOutcome.Passed : new ReplicaDrillResult(result));
    }
}
