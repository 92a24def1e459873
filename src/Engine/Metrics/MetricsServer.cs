using System.Globalization;
using System.Net;
using System.Text;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Status;

namespace SqliteReplica.Engine.Metrics;

/// <summary>
/// Prometheus metrics on the config's <c>addr</c>: Litestream's metric names where they exist,
/// plus replica lag, the last time the store confirmed an upload, health, validation outcomes and
/// request counts by operation. Everything is computed from the same state status reports, at
/// scrape time.
/// </summary>
public sealed class MetricsServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Replicator _replicator;
    private readonly IEngineLog _log;

    private MetricsServer(HttpListener listener, Replicator replicator, IEngineLog log)
    {
        _listener = listener;
        _replicator = replicator;
        _log = log;
    }

    /// <summary>Listens on <c>host:port</c> (<c>:port</c> means every interface).</summary>
    public static MetricsServer Start(string address, Replicator replicator, IEngineLog log)
    {
        int colon = address.LastIndexOf(':');
        var host = colon <= 0 ? "+" : address[..colon];
        if (host is "0.0.0.0" or "" or "*")
        {
            host = "+";
        }

        var prefix = $"http://{host}:{address[(colon + 1)..]}/";
        var listener = new HttpListener();
        listener.Prefixes.Add(prefix);
        try
        {
            listener.Start();
        }
        catch (Exception e) when (e is HttpListenerException or System.Net.Sockets.SocketException)
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument, $"Cannot serve metrics on '{address}': {e.Message}. Choose a free port in 'addr'.", address, e);
        }

        var server = new MetricsServer(listener, replicator, log);
        _ = server.ServeAsync();
        log.Verbose($"serving metrics on {prefix.Replace("+", "localhost", StringComparison.Ordinal)}metrics");
        return server;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                if (ctx.Request.Url?.AbsolutePath is "/metrics" or "/metrics/")
                {
                    var body = Encoding.UTF8.GetBytes(Render());
                    ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                    ctx.Response.ContentLength64 = body.Length;
                    await ctx.Response.OutputStream.WriteAsync(body).ConfigureAwait(false);
                }
                else
                {
                    ctx.Response.StatusCode = 404;
                }

                ctx.Response.Close();
            }
            catch (Exception e)
            {
                _log.Debug($"metrics request failed: {e.Message}");
                try
                {
                    ctx.Response.Abort();
                }
                catch (Exception)
                {
                }
            }
        }
    }

    /// <summary>The metrics in Prometheus text exposition format.</summary>
    public string Render()
    {
        var now = DateTimeOffset.UtcNow;
        var m = new MetricWriter();
        foreach (var db in _replicator.Databases)
        {
            var state = db.BuildState();
            var dbl = $"db=\"{Escape(db.DbPath)}\"";
            m.Gauge("litestream_db_size", "The current size of the real DB", dbl, FileSize(db.DbPath));
            m.Gauge("litestream_wal_size", "The current size of the real WAL", dbl, FileSize(db.DbPath + "-wal"));
            m.Counter("litestream_total_wal_bytes", "Total number of bytes written to shadow WAL", dbl, db.Capture.TotalWalBytes);
            m.Gauge("litestream_shadow_wal_index", "The current index of the shadow WAL", dbl, state.LocalIndex);
            m.Gauge("litestream_shadow_wal_size", "Current size of shadow WAL, in bytes", dbl, state.ShadowBytes);
            m.Counter("sqlitereplica_heartbeat_url_calls_total", "Successful heartbeat URL calls (made only while every replica is caught up)", dbl, db.HeartbeatsSent);
            foreach (var r in state.Replicas)
            {
                var labels = $"{dbl},name=\"{Escape(r.Name)}\"";
                var syncer = db.Syncers.First(s => s.Name == r.Name);
                var health = HealthEvaluator.Evaluate(state, r, now, processAlive: true, TimeSpan.FromSeconds(Math.Max(3, 3 * r.SyncIntervalSeconds)));
                m.Gauge("litestream_replica_wal_index", "The current WAL index the store acknowledged", labels, r.ConfirmedIndex);
                m.Gauge("litestream_replica_wal_offset", "The current WAL offset the store acknowledged", labels, r.ConfirmedOffset);
                m.Gauge("sqlitereplica_replica_lag_seconds", "Seconds the replica has been behind the captured commits (0 when caught up)", labels, health.LagSeconds is double.NaN ? -1 : health.LagSeconds);
                m.Gauge("sqlitereplica_replica_last_confirmed_timestamp_seconds", "Unix time the store last acknowledged an upload", labels, r.LastConfirmedAt?.ToUnixTimeMilliseconds() / 1000.0 ?? 0);
                m.Gauge("sqlitereplica_replica_bytes_pending", "Captured bytes the store has not acknowledged", labels, r.BytesPending);
                m.Gauge("sqlitereplica_replica_consecutive_failures", "Failed sync attempts in a row", labels, r.ConsecutiveFailures);
                m.Gauge("sqlitereplica_replica_healthy", "1 when the store acknowledged the captured commits within the allowed lag", labels, health.Healthy ? 1 : 0);
                m.Counter("litestream_replica_validation_total", "Validation (restore drill) outcomes", $"{labels},status=\"ok\"", syncer.ValidationsPassed);
                m.Counter("litestream_replica_validation_total", "Validation (restore drill) outcomes", $"{labels},status=\"error\"", syncer.ValidationsFailed);
                var type = $"replica_type=\"{Escape(r.Type)}\"";
                foreach (var (op, n) in new[] { ("PUT", r.PutRequests + r.MultipartRequests), ("GET", r.GetRequests + r.HeadRequests), ("LIST", r.ListRequests), ("DELETE", r.DeleteRequests) })
                {
                    m.Counter("litestream_replica_operation_total", "Requests sent to the store, by operation", $"{labels},{type},operation=\"{op}\"", n);
                }
            }
        }

        return m.ToString();
    }

    private static long FileSize(string path) => new FileInfo(path) is { Exists: true } f ? f.Length : 0;

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    public void Dispose()
    {
        try
        {
            _listener.Stop();
            _listener.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Groups samples by metric name so each HELP/TYPE header appears once.</summary>
    private sealed class MetricWriter
    {
        private readonly Dictionary<string, (string Help, string Type, List<string> Samples)> _metrics = new(StringComparer.Ordinal);

        public void Gauge(string name, string help, string labels, double value) => Add(name, help, "gauge", labels, value);

        public void Counter(string name, string help, string labels, double value) => Add(name, help, "counter", labels, value);

        private void Add(string name, string help, string type, string labels, double value)
        {
            if (!_metrics.TryGetValue(name, out var m))
            {
                m = (help, type, new List<string>());
                _metrics[name] = m;
            }

            m.Samples.Add($"{name}{{{labels}}} {value.ToString("R", CultureInfo.InvariantCulture)}");
        }

        public override string ToString()
        {
            var sb = new StringBuilder();
            foreach (var (name, m) in _metrics)
            {
                sb.Append("# HELP ").Append(name).Append(' ').Append(m.Help).Append('\n');
                sb.Append("# TYPE ").Append(name).Append(' ').Append(m.Type).Append('\n');
                foreach (var s in m.Samples)
                {
                    sb.Append(s).Append('\n');
                }
            }

            return sb.ToString();
        }
    }
}
