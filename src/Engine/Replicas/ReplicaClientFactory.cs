using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replicas.S3;

namespace SqliteReplica.Engine.Replicas;

/// <summary>S3 settings that a bare replica URL cannot carry (endpoint, region, credentials...).</summary>
public sealed record S3Settings
{
    public string? Endpoint { get; init; }

    public string? Region { get; init; }

    public bool? ForcePathStyle { get; init; }

    public bool SkipVerify { get; init; }

    public Credentials? Credentials { get; init; }
}

/// <summary>Turns a replica URL, directory or configuration entry into a client.</summary>
public static class ReplicaClientFactory
{
    /// <summary>
    /// <c>file:///abs/dir</c> (as Litestream, <c>file://a/b</c> means <c>/a/b</c>) or
    /// <c>s3://bucket/path</c> (<c>bucket.localhost:port</c> means a local endpoint, as Litestream).
    /// </summary>
    public static IReplicaClient FromUrl(string url, S3Settings? s3 = null, IEngineLog? log = null)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl, "The replica URL is empty. Use file:///path/to/dir or s3://bucket/path.");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Scheme) || !url.Contains("://", StringComparison.Ordinal))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl,
                $"'{url}' is not a replica URL. Use file:///path/to/dir, s3://bucket/path, or -ReplicaPath for a plain directory.", url);
        }

        switch (uri.Scheme.ToLowerInvariant())
        {
            case "file":
                if (s3 is not null && (s3.Endpoint is not null || s3.Region is not null || s3.Credentials is not null || s3.SkipVerify || s3.ForcePathStyle is not null))
                {
                    throw new ReplicaException(ReplicaErrorCode.InvalidArgument,
                        $"-Endpoint, -Region, -Credential, -SkipVerify and -ForcePathStyle apply to s3:// replicas only; '{url}' is a file replica. Remove them.", url);
                }

                var path = Uri.UnescapeDataString(uri.AbsolutePath);
                if (!string.IsNullOrEmpty(uri.Host))
                {
                    path = "/" + uri.Host + path;
                }

                if (path.Length <= 1)
                {
                    throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl, $"'{url}' names no directory. Use file:///path/to/dir.", url);
                }

                return new FileReplicaClient(path.TrimEnd('/'));
            case "s3":
                var bucket = uri.Host;
                string? endpoint = s3?.Endpoint;
                string? region = s3?.Region;
                int dot = bucket.IndexOf(".localhost", StringComparison.OrdinalIgnoreCase);
                if (dot > 0 && endpoint is null)
                {
                    endpoint = $"http://localhost{(uri.IsDefaultPort ? "" : ":" + uri.Port)}";
                    bucket = bucket[..dot];
                }

                if (string.IsNullOrEmpty(bucket))
                {
                    throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl, $"'{url}' names no bucket. Use s3://bucket/path.", url);
                }

                return new S3ReplicaClient(new S3ReplicaOptions
                {
                    Bucket = bucket,
                    Path = Uri.UnescapeDataString(uri.AbsolutePath).TrimStart('/'),
                    Endpoint = endpoint,
                    Region = region,
                    ForcePathStyle = s3?.ForcePathStyle ?? (endpoint is not null ? true : null),
                    SkipVerify = s3?.SkipVerify ?? false,
                    Credentials = s3?.Credentials,
                }, log ?? NullEngineLog.Instance);
            case "gcs":
            case "abs":
            case "sftp":
                throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl,
                    $"Replica type '{uri.Scheme}' is not supported; use file:/// or s3://.", url);
            default:
                throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl,
                    $"Unknown replica URL scheme '{uri.Scheme}' in '{url}'. Use file:///path/to/dir or s3://bucket/path.", url);
        }
    }

    public static IReplicaClient FromDirectory(string directory)
    {
        if (string.IsNullOrWhiteSpace(directory))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument, "The replica path is empty.");
        }

        return new FileReplicaClient(directory);
    }

    /// <summary>A client for one replica entry of a litestream.yml.</summary>
    public static IReplicaClient FromConfig(ReplicaConfig replica, IEngineLog log) => replica.Type switch
    {
        "file" => new FileReplicaClient(replica.Path!),
        "s3" => new S3ReplicaClient(new S3ReplicaOptions
        {
            Bucket = replica.Bucket!,
            Path = replica.Path ?? "",
            Endpoint = replica.Endpoint,
            Region = replica.Region,
            ForcePathStyle = replica.ForcePathStyle ?? (replica.Endpoint is not null ? true : null),
            SkipVerify = replica.SkipVerify,
            Credentials = replica.Credentials,
        }, log),
        _ => throw new ReplicaException(ReplicaErrorCode.ConfigNotSupported, $"Replica type '{replica.Type}' is not supported.", replica.Name),
    };
}
