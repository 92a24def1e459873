namespace SqliteReplica.Engine.Config;

/// <summary>A litestream.yml, read strictly: every key known, every value typed.</summary>
public sealed record ReplicatorConfig
{
    public required string SourcePath { get; init; }

    public IReadOnlyList<DatabaseConfig> Databases { get; init; } = [];

    /// <summary>Metrics listener (host:port), when set.</summary>
    public string? Address { get; init; }

    /// <summary>A command to run as a child process (sidecar mode).</summary>
    public string? Exec { get; init; }

    /// <summary>True when the file has a 'logging' section: the replicator then writes log lines itself, as Litestream does.</summary>
    public bool LoggingConfigured { get; init; }

    public string LogLevel { get; init; } = "info";

    public string LogType { get; init; } = "text";

    public bool LogToStderr { get; init; }

    /// <summary>Finds a database by path (absolute, exact), as Litestream does.</summary>
    public DatabaseConfig? Find(string dbPath)
    {
        var full = Path.GetFullPath(dbPath);
        return Databases.FirstOrDefault(d => string.Equals(d.Path, full, StringComparison.Ordinal));
    }
}

/// <summary>One <c>dbs[]</c> entry.</summary>
public sealed record DatabaseConfig
{
    public required string Path { get; init; }

    public string? MetaPath { get; init; }

    public TimeSpan MonitorInterval { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(1);

    public int MinCheckpointPageCount { get; init; } = 1000;

    public int MaxCheckpointPageCount { get; init; } = 10000;

    public IReadOnlyList<ReplicaConfig> Replicas { get; init; } = [];

    /// <summary>SqliteReplica extension: a URL called (GET) every <see cref="HeartbeatInterval"/> while every replica has confirmed everything captured.</summary>
    public string? HeartbeatUrl { get; init; }

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMinutes(1);

    public int Line { get; init; }
}

/// <summary>One <c>dbs[].replicas[]</c> entry.</summary>
public sealed record ReplicaConfig
{
    public required string Type { get; init; }

    public required string Name { get; init; }

    /// <summary>For file replicas: the directory. For s3: the key prefix.</summary>
    public string? Path { get; init; }

    public string? Bucket { get; init; }

    public string? Endpoint { get; init; }

    public string? Region { get; init; }

    public bool? ForcePathStyle { get; init; }

    public bool SkipVerify { get; init; }

    /// <summary>Static credentials, when the config gives them. Never formatted into text.</summary>
    public Credentials? Credentials { get; init; }

    public TimeSpan SyncInterval { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.Zero;

    public TimeSpan Retention { get; init; } = TimeSpan.FromHours(24);

    public TimeSpan RetentionCheckInterval { get; init; } = TimeSpan.FromHours(1);

    public TimeSpan ValidationInterval { get; init; } = TimeSpan.Zero;

    public int Line { get; init; }
}

/// <summary>An access key pair. ToString never shows the secret.</summary>
public sealed class Credentials
{
    public Credentials(string accessKeyId, string secretAccessKey)
    {
        AccessKeyId = accessKeyId;
        SecretAccessKey = secretAccessKey;
    }

    public string AccessKeyId { get; }

    public string SecretAccessKey { get; }

    public override string ToString() => $"access key {(AccessKeyId.Length > 4 ? AccessKeyId[..4] + "…" : "…")} (secret hidden)";
}
