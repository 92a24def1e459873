using System.Management.Automation;
using System.Runtime.InteropServices;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
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
[OutputType(typeof(ReplicationSummary), typeof(Jobs.ReplicationJob))]
public sealed class StartSqliteReplicationCommand : S3ParametersCmdlet
{
    private const string PathSet = "Path";
    private const string ConfigSet = "Config";
    private string? _exec;
    private string? _metricsAddress;
    private IEngineLog? _log;
    private ExecSupervisor? _application;

    /// <summary>The live database; it is waited for if it does not exist yet. With -ConfigPath: only this database of the file.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = UrlSet)]
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet)]
    [Parameter(ParameterSetName = ConfigSet)]
    [Alias("Path")]
    [ValidateNotNullOrEmpty]
    public string DatabasePath { get; set; } = null!;

    /// <summary>A litestream.yml: replicate every database it lists, each to its replicas.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet)]
    [ValidateNotNullOrEmpty]
    public string ConfigPath { get; set; } = null!;

    /// <summary>One or more replica URLs, e.g. file:///var/backups/app.db.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = UrlSet)]
    [ValidateNotNullOrEmpty]
    public string[] ReplicaUrl { get; set; } = null!;

    /// <summary>The replica as a plain directory.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string ReplicaPath { get; set; } = null!;

    /// <summary>At most one upload per replica per interval (default 1s); a change after a quiet spell goes at once.</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [DurationTransformation]
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Take a snapshot this often (default: off, only when a generation starts or retention needs one).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [DurationTransformation]
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.Zero;

    /// <summary>Keep snapshots and the WAL they need this long (default 24h; 0 keeps everything).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [DurationTransformation]
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often retention runs (default 1h).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [DurationTransformation]
    public TimeSpan RetentionCheckInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Fallback poll of the WAL (default 1s); file-change notifications wake it sooner.</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [DurationTransformation]
    public TimeSpan MonitorInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>PASSIVE checkpoint when the database file has been quiet this long (default 1m; 0 disables).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [DurationTransformation]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>PASSIVE checkpoint at this many WAL pages (default 1000).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [ValidateRange(1, int.MaxValue)]
    public int MinCheckpointPageCount { get; set; } = 1000;

    /// <summary>RESTART checkpoint at this many WAL pages (default 10000; 0 disables).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    [ValidateRange(0, int.MaxValue)]
    public int MaxCheckpointPageCount { get; set; } = 10000;

    /// <summary>Where the shadow WAL lives (default: .&lt;db&gt;-litestream beside the database, as Litestream).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Parameter(ParameterSetName = PathSet)]
    public string? MetaPath { get; set; }

    /// <summary>Run in the background as a PowerShell job; Stop-Job does the final sync.</summary>
    [Parameter]
    public SwitchParameter AsJob { get; set; }

    /// <summary>With -AsJob: the job's name.</summary>
    [Parameter]
    public string? JobName { get; set; }

    protected override void ProcessRecord()
    {
        var target = ParameterSetName == ConfigSet ? ConfigPath : DatabasePath;
        if (AsJob)
        {
            StartJob(target);
            return;
        }

        Replicator replicator;
        try
        {
            var specs = ParameterSetName == ConfigSet ? SpecsFromConfig().ToList() : [SpecFromParameters()];
            replicator = new Replicator(specs, Log, _metricsAddress);
        }
        catch (Exception e)
        {
            ThrowEngineError(e, target);
            return;
        }

        // systemd stops services with SIGTERM: finish the final sync and return normally, so
        // `pwsh -Command` exits 0. (Ctrl+C reaches StopProcessing through PowerShell itself.)
        // In exec (sidecar) mode the signal goes to the application first; replication stops
        // with a final sync once the application has exited and written its last commits.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            if (_application is { } app)
            {
                app.ForwardTerminate();
                return;
            }

            Log.Write(EngineLogLevel.Verbose, "signal received (SIGTERM), shutting down after a final sync");
            Cancel();
        });

        int? applicationExit = null;
        try
        {
            try
            {
                Run(ct => replicator.StartAsync(ct));
                if (_exec is not null)
                {
                    _application = ExecSupervisor.Start(_exec, Log);
                }
            }
            catch (Exception e)
            {
                ThrowEngineError(e, target);
            }

            Run(async ct =>
            {
                var replication = replicator.RunAsync(ct);
                if (_application is { } app)
                {
                    applicationExit = await app.WaitForExitAsync(ct).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : (int?)null, TaskScheduler.Default).ConfigureAwait(false);
                    if (applicationExit is not null)
                    {
                        Log.Write(EngineLogLevel.Verbose, "the application exited; stopping replication after a final sync");
                        Cancel();
                    }
                }

                await replication.ConfigureAwait(false);
            });
            Log.Write(EngineLogLevel.Verbose, "replication stopped");
            Run(_ => Task.CompletedTask);
            foreach (var db in replicator.Databases)
            {
                var local = db.Capture.Position;
                foreach (var s in db.Syncers)
                {
                    var confirmed = s.ConfirmedPosition;
                    WriteSummary(new ReplicationSummary(db.DbPath, s.Name, s.Client.Url, local.ToString(), confirmed.ToString(), !local.IsNone && confirmed == local, s.LastError, (s.Client as Engine.Replicas.S3.S3ReplicaClient)?.Counters));
                }
            }

            if (applicationExit is { } code && code != 0)
            {
                WriteEngineError(new ReplicaException(ReplicaErrorCode.ApplicationFailed, $"The application started by 'exec' exited with code {code}; replication was stopped after a final sync.", _exec));
            }
        }
        finally
        {
            _application?.Dispose();
            replicator.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private void StartJob(string target)
    {
        var job = new Jobs.ReplicationJob(MyInvocation.Line, JobName);
        Replicator replicator;
        try
        {
            var specs = ParameterSetName == ConfigSet ? SpecsFromConfig().ToList() : [SpecFromParameters()];
            if (_exec is not null)
            {
                throw new ReplicaException(ReplicaErrorCode.InvalidArgument, "-AsJob cannot run a configuration with 'exec': the application's lifetime would not be tied to the session. Run it in the foreground (as a service).", ConfigPath);
            }

            replicator = new Replicator(specs, _log ?? job.Log, _metricsAddress);
        }
        catch (Exception e)
        {
            ThrowEngineError(e, target);
            return;
        }

        try
        {
            // Fail fast, before there is a job: a second replicator, an unwritable replica...
            Run(ct => replicator.StartAsync(ct));
        }
        catch (Exception e)
        {
            replicator.DisposeAsync().AsTask().GetAwaiter().GetResult();
            ThrowEngineError(e, target);
        }

        JobRepository.Add(job);
        job.Start(replicator);
        WriteObject(job);
    }

    /// <summary>Where engine messages go: PowerShell's streams, or the console log a config's 'logging' section asks for.</summary>
    private IEngineLog Log => _log ?? Messages;

    protected override void StopProcessing()
    {
        // Ctrl+C in sidecar mode: let the application stop first, replication follows it.
        if (_application is { } app)
        {
            app.ForwardInterrupt();
            return;
        }

        base.StopProcessing();
    }

    private DatabaseSpec SpecFromParameters()
    {
        var s3 = S3Settings();
        var clients = ParameterSetName == PathSet
            ? new[] { ReplicaClientFactory.FromDirectory(ResolvePath(ReplicaPath)) }
            : ReplicaUrl.Select(u => ReplicaClientFactory.FromUrl(u, s3, Messages)).ToArray();
        var replicaOptions = new ReplicaOptions
        {
            SyncInterval = SyncInterval,
            SnapshotInterval = SnapshotInterval,
            Retention = Retention,
            RetentionCheckInterval = RetentionCheckInterval,
        };
        var replicas = clients.Select((c, i) => (c, replicaOptions with { Name = clients.Count(x => x.Type == c.Type) == 1 ? c.Type : $"{c.Type}-{i + 1}" })).ToList();
        var capture = new CaptureOptions
        {
            MetaPath = MetaPath is null ? null : ResolvePath(MetaPath),
            MonitorInterval = MonitorInterval,
            CheckpointInterval = CheckpointInterval,
            MinCheckpointPageCount = MinCheckpointPageCount,
            MaxCheckpointPageCount = MaxCheckpointPageCount,
        };
        return new DatabaseSpec(ResolvePath(DatabasePath), capture, replicas);
    }

    private IEnumerable<DatabaseSpec> SpecsFromConfig()
    {
        var config = new ConfigLoader().Load(ResolvePath(ConfigPath));
        ConfigLoader.EnsureSupported(config);
        _exec = config.Exec;
        _metricsAddress = config.Address;
        if (config.LoggingConfigured)
        {
            _log = new ConsoleLog(config.LogLevel, config.LogType, config.LogToStderr);
        }
        var databases = config.Databases;
        if (DatabasePath is not null)
        {
            var one = config.Find(ResolvePath(DatabasePath)) ?? throw new ReplicaException(ReplicaErrorCode.DatabaseNotConfigured,
                $"'{ResolvePath(DatabasePath)}' is not a database in '{config.SourcePath}'. Use the path exactly as configured.", DatabasePath);
            databases = [one];
        }

        if (databases.Count == 0)
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigInvalid, $"'{config.SourcePath}' lists no databases under 'dbs'.", config.SourcePath);
        }

        var specs = new List<DatabaseSpec>();
        foreach (var db in databases)
        {
            if (db.Replicas.Count == 0)
            {
                throw new ReplicaException(ReplicaErrorCode.ConfigInvalid, $"{config.SourcePath}:{db.Line}: database '{db.Path}' has no replicas.", config.SourcePath);
            }

            var replicas = db.Replicas.Select(r => (ReplicaClientFactory.FromConfig(r, Log), new ReplicaOptions
            {
                Name = r.Name,
                SyncInterval = r.SyncInterval,
                SnapshotInterval = r.SnapshotInterval,
                Retention = r.Retention,
                RetentionCheckInterval = r.RetentionCheckInterval,
                ValidationInterval = r.ValidationInterval,
            })).ToList();
            var capture = new CaptureOptions
            {
                MetaPath = db.MetaPath,
                MonitorInterval = db.MonitorInterval,
                CheckpointInterval = db.CheckpointInterval,
                MinCheckpointPageCount = db.MinCheckpointPageCount,
                MaxCheckpointPageCount = db.MaxCheckpointPageCount,
            };
            specs.Add(new DatabaseSpec(db.Path, capture, replicas) { HeartbeatUrl = db.HeartbeatUrl, HeartbeatInterval = db.HeartbeatInterval });
        }

        return specs;
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
