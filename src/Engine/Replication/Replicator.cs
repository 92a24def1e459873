using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Engine.Replication;

/// <summary>One database to replicate and where to.</summary>
public sealed record DatabaseSpec(string Path, CaptureOptions Capture, IReadOnlyList<(IReplicaClient Client, ReplicaOptions Options)> Replicas);

/// <summary>
/// Replicates many databases from one process. <see cref="StartAsync"/> fails fast on what can
/// be checked up front (another replicator holds a database, a replica cannot be written);
/// <see cref="RunAsync"/> then runs until cancelled and finishes with a final sync of everything.
/// </summary>
public sealed class Replicator : IAsyncDisposable
{
    private readonly IEngineLog _log;
    private readonly List<DatabaseReplicator> _databases = new();

    public Replicator(IEnumerable<DatabaseSpec> databases, IEngineLog log)
    {
        _log = log;
        foreach (var d in databases)
        {
            _databases.Add(new DatabaseReplicator(d.Path, d.Capture, d.Replicas, log));
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
                _log.Verbose($"replicating '{db.DbPath}' to {s.Client.Type} replica '{s.Name}' at {s.Client.Url}");
            }
        }
    }

    public async Task RunAsync(CancellationToken ct)
    {
        await Task.WhenAll(_databases.Select(d => Task.Factory.StartNew(() => d.RunAsync(ct), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap())).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var d in _databases)
        {
            await d.DisposeAsync().ConfigureAwait(false);
        }
    }
}
