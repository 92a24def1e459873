using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Replication;

/// <summary>One database to replicate and where to.</summary>
public sealed record DatabaseSpec(string Path, CaptureOptions Capture, IReadOnlyList<(IReplicaClient Client, ReplicaOptions Options)> Replicas)
{
    /// <summary>Called (GET) every <see cref="HeartbeatInterval"/> while every replica has confirmed everything captured.</summary>
    public string? HeartbeatUrl { get; init; }

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Replicates many databases from one process. <see cref="StartAsync"/> fails fast on what can
/// be checked up front (another replicator holds a database, a replica cannot be written);
/// <see cref="RunAsync"/> then runs until cancelled and finishes with a final sync of everything.
/// </summary>
public sealed class Replicator : IAsyncDisposable
{
    private readonly IEngineLog _log;
    private readonly List<DatabaseReplicator> _databases = new();

    private readonly string? _metricsAddress;
    private Metrics.MetricsServer? _metrics;

    public Replicator(IEnumerable<DatabaseSpec> databases, IEngineLog log, string? metricsAddress = null)
    {
        _log = log;
        _metricsAddress = metricsAddress;
        foreach (var d in databases)
        {
            _databases.Add(new DatabaseReplicator(d.Path, d.Capture, d.Replicas, log) { HeartbeatUrl = d.HeartbeatUrl, HeartbeatUrlInterval = d.HeartbeatInterval });
        }
    }

    public IReadOnlyList<DatabaseReplicator> Databases => _databases;

    /// <summary>Takes every database's lock and checks every replica can be written.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        foreach (var db in _databases)
        {
            db.Capture.AcquireLock();
            if (File.Exists(db.DbPath))
            {
                // A database that exists but cannot be opened or switched to WAL is an error now,
                // not a warning repeated forever. (One that does not exist yet is waited for.)
                db.Capture.Sync(ct, force: true);
            }

            foreach (var s in db.Syncers)
            {
                await s.Client.CheckWritableAsync(ct).ConfigureAwait(false);
                s.Lease = await s.Client.AcquireLeaseAsync(LeaseOwner.Current(db.DbPath), ct).ConfigureAwait(false);
                _log.Verbose($"replicating '{db.DbPath}' to {s.Client.Type} replica '{s.Name}' at {s.Client.Url}");
            }
        }

        if (_metricsAddress is not null)
        {
            _metrics = Metrics.MetricsServer.Start(_metricsAddress, this, _log);
        }
    }

    public async Task RunAsync(CancellationToken ct)
    {
        await Task.WhenAll(_databases.Select(d => Task.Factory.StartNew(() => d.RunAsync(ct), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap())).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _metrics?.Dispose();
        foreach (var d in _databases)
        {
            await d.DisposeAsync().ConfigureAwait(false);
        }
    }
}
