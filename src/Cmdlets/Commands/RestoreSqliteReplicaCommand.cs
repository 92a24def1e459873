using System.Management.Automation;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Restore;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>
/// Rebuilds a database from a replica, latest or at a point in time. The whole chain is verified
/// before the output appears (atomically, by rename); an existing file is never replaced
/// without -Force.
/// </summary>
[Cmdlet(VerbsData.Restore, "SqliteReplica", DefaultParameterSetName = UrlSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(SqliteRestoreResult))]
public sealed class RestoreSqliteReplicaCommand : ReplicaCmdlet
{
    /// <summary>With -ConfigPath: the database, as its path appears in the config.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ConfiguredDatabaseCompleter))]
    public override string DatabasePath { get; set; } = null!;

    /// <summary>The database file to create (with -ConfigPath, defaults to the configured database path).</summary>
    [Parameter(Mandatory = true, ParameterSetName = UrlSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string OutputPath { get; set; } = null!;

    /// <summary>Restore from this generation (default: the one with the newest object).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-f]{16}$")]
    [ArgumentCompleter(typeof(GenerationCompleter))]
    public string? Generation { get; set; }

    /// <summary>Restore up to and including this WAL index (0x1f works as PowerShell hex).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 0x7FFFFFFF)]
    public long? Index { get; set; }

    /// <summary>Restore the state as of this time; a string with Z or an offset is read as such.</summary>
    [Parameter]
    public DateTimeOffset? Timestamp { get; set; }

    /// <summary>WAL indexes downloaded and verified at once (default 8).</summary>
    [Parameter]
    [ValidateRange(1, 64)]
    public int Parallelism { get; set; } = 8;

    /// <summary>Replace an existing output file (and remove its stale -wal and -shm).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Do nothing, successfully, when the output already exists (for provisioning scripts).</summary>
    [Parameter]
    public SwitchParameter IfDbNotExists { get; set; }

    /// <summary>Do nothing, successfully, when the replica holds no backup (for provisioning scripts).</summary>
    [Parameter]
    public SwitchParameter IfReplicaExists { get; set; }

    /// <summary>On a damaged chain, restore the last consistent point before the damage (says so in the result and a warning).</summary>
    [Parameter]
    public SwitchParameter AllowPartial { get; set; }

    /// <summary>Skip SQLite's quick_check of the rebuilt file before it is renamed into place (faster, less safe).</summary>
    [Parameter]
    public SwitchParameter SkipIntegrityCheck { get; set; }

    protected override void ProcessRecord()
    {
        string output = ResolvePath(OutputPath ?? DatabasePath);
        if (Index is not null && Timestamp is not null)
        {
            ThrowEngineError(new ReplicaException(ReplicaErrorCode.InvalidArgument, "Give either -Index or -Timestamp, not both."), output);
        }

        if (IfDbNotExists && File.Exists(output))
        {
            WriteVerbose($"'{output}' already exists; nothing to restore (-IfDbNotExists).");
            return;
        }

        IReplicaClient client;
        RestorePlan plan;
        string? damage;
        try
        {
            client = CreateClient();
            var planned = Run(ct => RestorePlanner.PlanAsync(client, Generation, Index, Timestamp, AllowPartial, ct));
            (plan, damage) = planned;
        }
        catch (Exception e) when (IfReplicaExists && Unwrap(e) is ReplicaException { Code: ReplicaErrorCode.NoMatchingBackup })
        {
            WriteVerbose($"'{ReplicaTarget}' holds no backup; nothing to restore (-IfReplicaExists).");
            return;
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteEngineError(e, ReplicaTarget);
            return;
        }

        var what = $"Restore generation {plan.Generation} from snapshot {plan.Snapshot.Index:x8} plus {plan.Segments.Count} WAL segment(s) " +
                   $"(indexes {plan.Snapshot.Index:x8}..{(plan.Segments.Count > 0 ? plan.Segments[^1].Index : plan.Snapshot.Index):x8}, {EngineCmdlet.FormatBytes(plan.TotalStoredBytes)}) from {client.Url}" +
                   (File.Exists(output) ? ", replacing the existing file" : "");
        if (!ShouldProcess(output, what))
        {
            return;
        }

        try
        {
            var options = new RestoreOptions
            {
                OutputPath = output,
                Generation = Generation,
                Index = Index,
                Timestamp = Timestamp,
                Parallelism = Parallelism,
                Force = Force,
                AllowPartial = AllowPartial,
                QuickCheck = !SkipIntegrityCheck,
            };
            var result = Run(ct => new Restorer(client, Messages).ExecuteAsync(plan, damage, options, Messages, ct), $"Restoring {output}");
            if (result.Partial)
            {
                WriteWarning($"Partial restore of '{output}': {result.PartialReason}. It holds the last consistent point before the damage, {result.Position}.");
            }

            WriteObject(new SqliteRestoreResult(result));
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteEngineError(e, output);
        }
    }
}
