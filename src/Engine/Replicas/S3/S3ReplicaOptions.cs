using SqliteReplica.Engine.Config;

namespace SqliteReplica.Engine.Replicas.S3;

/// <summary>Where and how to reach an S3-compatible bucket.</summary>
public sealed record S3ReplicaOptions
{
    public required string Bucket { get; init; }

    /// <summary>Key prefix (Litestream's <c>path</c>), cleaned like Go's path.Join.</summary>
    public string Path { get; init; } = "";

    /// <summary>Endpoint URL used verbatim (e.g. https://&lt;account&gt;.r2.cloudflarestorage.com); null means AWS.</summary>
    public string? Endpoint { get; init; }

    /// <summary>Signing region; <c>auto</c> for R2. Default: us-east-1.</summary>
    public string? Region { get; init; }

    /// <summary>Path-style addressing; default true when an endpoint is set.</summary>
    public bool? ForcePathStyle { get; init; }

    public bool SkipVerify { get; init; }

    /// <summary>Static credentials; null means LITESTREAM_* variables, then the AWS default chain.</summary>
    public Credentials? Credentials { get; init; }

    /// <summary>Attempts per request before a failure is reported (with exponential backoff and jitter).</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>Per-request timeout.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Objects larger than this are uploaded in parts.</summary>
    public long MultipartThreshold { get; init; } = 16L << 20;

    /// <summary>How long a replica-location lease lives without a renewal (renewals ride along with uploads).</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where objects are staged before upload (default: the system temp directory).</summary>
    public string? SpoolDirectory { get; init; }
}
