using System.Management.Automation;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Status;
using SqliteReplica.Infrastructure;
using SqliteReplica.Output;

namespace SqliteReplica.Commands;

/// <summary>
/// Reads the state the replicators on this box publish and judges each database and replica.
/// A configured database with no live replicator is unhealthy, and so is one whose store has
/// not acknowledged its commits within the allowed lag.
/// </summary>
[Cmdlet(VerbsCommon.Get, "SqliteReplicationStatus", DefaultParameterSetName = DatabaseSet)]
[OutputType(typeof(SqliteReplicationStatus))]
public sealed class GetSqliteReplicationStatusCommand : EngineCmdlet
{
    private const string ConfigSet = "Config";
    private const string DatabaseSet = "Database";

    /// <summary>A litestream.yml: every database it lists (or only -DatabasePath).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet)]
    [ValidateNotNullOrEmpty]
    public string ConfigPath { get; set; } = null!;

    /// <summary>One database (with -ConfigPath: as configured; alone: its meta directory is the default one or -MetaPath).</summary>
    [Parameter(ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DatabaseSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? DatabasePath { get; set; }

    /// <summary>The meta directory of -DatabasePath when it is not the default.</summary>
    [Parameter(ParameterSetName = DatabaseSet)]
    public string? MetaPath { get; set; }

    /// <summary>How far behind a replica may be and still count as healthy (default: 3 sync intervals, at least 3 s).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? MaxLag { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var (dbPath, metaRoot, configured) in Databases())
            {
                var state = StatusFile.Read(metaRoot, out var statusProblem);
                bool alive = state is not null && IsAlive(state);
                var names = configured.Count > 0 ? configured : state?.Replicas.Select(r => r.Name).ToList() ?? [];
                if (names.Count == 0)
                {
                    var verdict = HealthEvaluator.Evaluate(state, null, now, alive, MaxLag ?? TimeSpan.FromSeconds(3), statusProblem);
                    WriteObject(new SqliteReplicationStatus(dbPath, state, null, verdict, now));
                    continue;
                }

                foreach (var name in names)
                {
                    var replica = state?.Replicas.FirstOrDefault(r => r.Name == name);
                    var maxLag = MaxLag ?? TimeSpan.FromSeconds(Math.Max(3, 3 * (replica?.SyncIntervalSeconds ?? 1)));
                    var verdict = HealthEvaluator.Evaluate(state, replica, now, alive, maxLag, statusProblem);
                    WriteObject(new SqliteReplicationStatus(dbPath, state, replica ?? new ReplicaState { Name = name }, verdict, now));
                }
            }
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteEngineError(e, ConfigPath ?? DatabasePath);
        }
    }

    private IEnumerable<(string DbPath, string MetaRoot, List<string> Replicas)> Databases()
    {
        if (ParameterSetName == DatabaseSet)
        {
            var db = ResolvePath(DatabasePath!);
            yield return (db, MetaPath is null ? MetaDirectory.DefaultFor(db) : ResolvePath(MetaPath), []);
            yield break;
        }

        var config = new ConfigLoader().Load(ResolvePath(ConfigPath));
        var dbs = config.Databases.AsEnumerable();
        if (DatabasePath is not null)
        {
            var one = config.Find(ResolvePath(DatabasePath)) ?? throw new ReplicaException(ReplicaErrorCode.DatabaseNotConfigured,
                $"'{ResolvePath(DatabasePath)}' is not a database in '{config.SourcePath}'. Use the path exactly as configured.", DatabasePath);
            dbs = [one];
        }

        foreach (var d in dbs)
        {
            yield return (d.Path, d.MetaPath ?? MetaDirectory.DefaultFor(d.Path), d.Replicas.Select(r => r.Name).ToList());
        }
    }

    private static bool IsAlive(ReplicationState state) =>
        string.Equals(state.Host, Environment.MachineName, StringComparison.Ordinal) && OperatingSystem.IsLinux()
            ? Directory.Exists($"/proc/{state.ProcessId}")
            : true;
}
