using System.Management.Automation;
using System.Runtime.InteropServices;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>
/// Streams every committed change of a database to its replicas until Ctrl+C or SIGTERM, then
/// copies the last commits, flushes every replica and returns. Writes one summary per replica
/// when it ends.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "SqliteReplication", DefaultParameterSetName = UrlSet)]
[OutputType(typeof(ReplicationSummary))]
public sealed class StartSqliteReplicationCommand : EngineCmdlet
{
    private const string UrlSet = "Url";
    private const string PathSet = "Path";

    /// <summary>The live database; it is waited for if it does not exist yet.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [Alias("Path")]
    [ValidateNotNullOrEmpty]
    public string DatabasePath { get; set; } = null!;

    /// <summary>One or more replica URLs, e.g. file:///var/backups/app.db.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = UrlSet)]
    [ValidateNotNullOrEmpty]
    public string[] ReplicaUrl { get; set; } = null!;

    /// <summary>The replica as a plain directory.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string ReplicaPath { get; set; } = null!;

    /// <summary>At most one upload per replica per interval (default 1s); a change after a quiet spell goes at once.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Take a snapshot this often (default: off, only when a generation starts or retention needs one).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.Zero;

    /// <summary>Keep snapshots and the WAL they need this long (default 24h; 0 keeps everything).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often retention runs (default 1h).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan RetentionCheckInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Fallback poll of the WAL (default 1s); file-change notifications wake it sooner.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan MonitorInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>PASSIVE checkpoint when the database file has been quiet this long (default 1m; 0 disables).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>PASSIVE checkpoint at this many WAL pages (default 1000).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MinCheckpointPageCount { get; set; } = 1000;

    /// <summary>RESTART checkpoint at this many WAL pages (default 10000; 0 disables).</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int MaxCheckpointPageCount { get; set; } = 10000;

    /// <summary>Where the shadow WAL lives (default: .&lt;db&gt;-litestream beside the database, as Litestream).</summary>
    [Parameter]
    public string? MetaPath { get; set; }

    protected override void ProcessRecord()
    {
        var dbPath = ResolvePath(DatabasePath);
        Replicator replicator;
        try
        {
            var clients = ParameterSetName == PathSet
                ? new[] { ReplicaClientFactory.FromDirectory(ResolvePath(ReplicaPath)) }
                : ReplicaUrl.Select(ReplicaClientFactory.FromUrl).ToArray();
            var replicaOptions = new ReplicaOptions
            {
                SyncInterval = SyncInterval,
                SnapshotInterval = SnapshotInterval,
                Retention = Retention,
                RetentionCheckInterval = RetentionCheckInterval,
            };
            var replicas = clients.Select((c, i) => (c, replicaOptions with { Name = clients.Length == 1 ? c.Type : $"{c.Type}{i + 1}" })).ToList();
            var capture = new CaptureOptions
            {
                MetaPath = MetaPath is null ? null : ResolvePath(MetaPath),
                MonitorInterval = MonitorInterval,
                CheckpointInterval = CheckpointInterval,
                MinCheckpointPageCount = MinCheckpointPageCount,
                MaxCheckpointPageCount = MaxCheckpointPageCount,
            };
            replicator = new Replicator([new DatabaseSpec(dbPath, capture, replicas)], Messages);
        }
        catch (Exception e)
        {
            ThrowEngineError(e, dbPath);
            return;
        }

        // systemd stops services with SIGTERM: finish the final sync and return normally, so
        // `pwsh -Command` exits 0. (Ctrl+C reaches StopProcessing through PowerShell itself.)
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            Messages.Write(EngineLogLevel.Verbose, "signal received (SIGTERM), shutting down after a final sync");
            Cancel();
        });

        try
        {
            try
            {
                Run(ct => replicator.StartAsync(ct));
            }
            catch (Exception e)
            {
                ThrowEngineError(e, dbPath);
            }

            Run(ct => replicator.RunAsync(ct));
            Messages.Write(EngineLogLevel.Verbose, "replication stopped");
            Run(_ => Task.CompletedTask);
            foreach (var db in replicator.Databases)
            {
                var local = db.Capture.Position;
                foreach (var s in db.Syncers)
                {
                    var confirmed = s.ConfirmedPosition;
                    WriteSummary(new ReplicationSummary(db.DbPath, s.Name, s.Client.Url, local.ToString(), confirmed.ToString(), !local.IsNone && confirmed == local, s.LastError));
                }
            }
        }
        finally
        {
            replicator.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private void WriteSummary(ReplicationSummary summary)
    {
        try
        {
            WriteObject(summary);
        }
        catch (PipelineStoppedException)
        {
            // Stopped with Ctrl+C: the pipeline takes no more output.
        }
    }
}
