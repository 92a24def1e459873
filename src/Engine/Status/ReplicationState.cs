using System.Text.Json;
using System.Text.Json.Serialization;

namespace SqliteReplica.Engine.Status;

/// <summary>
/// What a running replicator publishes about one database (a small JSON file in the meta
/// directory, replaced atomically at every heartbeat). Every "confirmed" field comes from an
/// acknowledgement by the store, never from an upload merely started.
/// </summary>
public sealed record ReplicationState
{
    public const string FileName = "sqlitereplica-status.json";

    public int Version { get; init; } = 1;

    public int ProcessId { get; init; }

    public string Host { get; init; } = "";

    public DateTimeOffset StartedAt { get; init; }

    /// <summary>When the replicator last wrote this file; a stale heartbeat means a dead or frozen replicator.</summary>
    public DateTimeOffset HeartbeatAt { get; init; }

    /// <summary>How often the heartbeat is written.</summary>
    public double HeartbeatSeconds { get; init; }

    /// <summary>Set when the replicator shut down cleanly (after its final sync).</summary>
    public DateTimeOffset? StoppedAt { get; init; }

    public string DatabasePath { get; init; } = "";

    public string? Generation { get; init; }

    /// <summary>Position of the shadow WAL (committed frames captured locally).</summary>
    public string? LocalPosition { get; init; }

    public long LocalIndex { get; init; }

    public long LocalOffset { get; init; }

    public long ShadowBytes { get; init; }

    /// <summary>The most the shadow WAL may take before continuity is given up.</summary>
    public long ShadowCapBytes { get; init; }

    /// <summary>When the shadow WAL last hit its cap (replicas got a new generation).</summary>
    public DateTimeOffset? ContinuityGivenUpAt { get; init; }

    /// <summary>The capture's last failure (opening the database, writing the shadow WAL...).</summary>
    public string? LastError { get; init; }

    public List<ReplicaState> Replicas { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ReplicationState? FromJson(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<ReplicationState>(json, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>One replica of a database, as its syncer sees it.</summary>
public sealed record ReplicaState
{
    public string Name { get; init; } = "";

    public string Type { get; init; } = "";

    public string Url { get; init; } = "";

    /// <summary>The newest position the store acknowledged.</summary>
    public string? ConfirmedPosition { get; init; }

    public string? ConfirmedGeneration { get; init; }

    public long ConfirmedIndex { get; init; }

    public long ConfirmedOffset { get; init; }

    /// <summary>When the store last acknowledged an object.</summary>
    public DateTimeOffset? LastConfirmedAt { get; init; }

    public DateTimeOffset? LastSnapshotAt { get; init; }

    /// <summary>Since when the replica has been behind the local position (null: caught up).</summary>
    public DateTimeOffset? BehindSince { get; init; }

    /// <summary>
    /// Bytes not yet acknowledged by the store: the shadow WAL past the confirmed position, plus
    /// the database file while the current generation's snapshot is not in the replica.
    /// </summary>
    public long BytesPending { get; init; }

    public string? LastError { get; init; }

    public int ConsecutiveFailures { get; init; }

    public double SyncIntervalSeconds { get; init; }

    public long PutRequests { get; init; }

    public long GetRequests { get; init; }

    public long ListRequests { get; init; }

    public long DeleteRequests { get; init; }

    public long HeadRequests { get; init; }

    public long MultipartRequests { get; init; }

    /// <summary>When the last validation (in-process restore drill) ran, and what it found.</summary>
    public DateTimeOffset? LastValidationAt { get; init; }

    public string? LastValidationStatus { get; init; }

    public string? LastValidationReason { get; init; }

    public long ValidationsPassed { get; init; }

    public long ValidationsFailed { get; init; }
}
