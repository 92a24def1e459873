using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas.File;

namespace SqliteReplica.Engine.Replicas;

/// <summary>Turns a replica URL or directory into a client.</summary>
public static class ReplicaClientFactory
{
    /// <summary>
    /// <c>file:///abs/dir</c> (as Litestream, <c>file://a/b</c> means <c>/a/b</c>). Object-store
    /// schemes are recognised and refused with their own message until their client exists.
    /// </summary>
    public static IReplicaClient FromUrl(string url)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl, "The replica URL is empty. Use file:///path/to/dir.");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Scheme) || !url.Contains("://", StringComparison.Ordinal))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl,
                $"'{url}' is not a replica URL. Use file:///path/to/dir (or -ReplicaPath for a plain directory).", url);
        }

        switch (uri.Scheme.ToLowerInvariant())
        {
            case "file":
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
            case "gcs":
            case "abs":
            case "sftp":
                throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl,
                    $"Replica type '{uri.Scheme}' is not supported by this version; use a file:/// replica.", url);
            default:
                throw new ReplicaException(ReplicaErrorCode.InvalidReplicaUrl,
                    $"Unknown replica URL scheme '{uri.Scheme}' in '{url}'. Use file:///path/to/dir.", url);
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
}
