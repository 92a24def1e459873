using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;

namespace SqliteReplica.Engine.Replicas.S3;

/// <summary>
/// A replica in an S3-compatible bucket, with the request shape Cloudflare R2 accepts: the
/// endpoint verbatim, path-style, no aws-chunked or streaming signatures, no checksum headers
/// beyond Content-MD5. Objects are staged (memory, then a temp file) so an upload can be retried
/// from the start and is never held whole in memory; large ones go in equal parts, two at a
/// time. Every request is retried with exponential backoff and jitter on 5xx, 429/SlowDown,
/// timeouts and dropped connections, and counted by kind.
/// </summary>
public sealed class S3ReplicaClient : IReplicaClient, IDisposable
{
    private const int MemorySpoolLimit = 8 << 20;
    private const int MaxParts = 10000;
    private const long MinPartSize = 8L << 20;
    private readonly S3ReplicaOptions _options;
    private readonly IEngineLog _log;
    private readonly AmazonS3Client _s3;
    private readonly bool _https;
    private readonly string _prefix;

    public S3ReplicaClient(S3ReplicaOptions options, IEngineLog log)
    {
        _options = options;
        _log = log;
        _prefix = GoPath.Join(options.Path);
        if (options.Endpoint is not null &&
            (!Uri.TryCreate(options.Endpoint, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttps && endpoint.Scheme != Uri.UriSchemeHttp) || string.IsNullOrEmpty(endpoint.Host)))
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument,
                $"The S3 endpoint '{options.Endpoint}' is not an http:// or https:// URL. Give the store's S3 API URL, for Cloudflare R2: https://<accountid>.r2.cloudflarestorage.com (-Endpoint, or 'endpoint' in the configuration).", options.Endpoint);
        }

        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle ?? !string.IsNullOrEmpty(options.Endpoint),
            MaxErrorRetry = 0,
            Timeout = options.RequestTimeout,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        try
        {
            if (!string.IsNullOrEmpty(options.Endpoint))
            {
                config.ServiceURL = options.Endpoint;
                config.AuthenticationRegion = options.Region ?? "us-east-1";
            }
            else
            {
                config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region ?? "us-east-1");
            }
        }
        catch (Exception e) when (e is AmazonClientException or ArgumentException or UriFormatException)
        {
            // The SDK's own message names the bad value (an endpoint, never a secret).
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument,
                $"The S3 endpoint or region is not usable: {e.Message}. Give an http:// or https:// endpoint URL and a region name such as 'auto' or 'us-east-1'.", options.Endpoint, e);
        }

        if (options.SkipVerify)
        {
            config.HttpClientFactory = new InsecureHttpClientFactory();
        }

        _https = string.IsNullOrEmpty(options.Endpoint) || options.Endpoint.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        var creds = options.Credentials ?? FromEnvironment();
        if (creds is not null && (string.IsNullOrEmpty(creds.AccessKeyId) || string.IsNullOrEmpty(creds.SecretAccessKey)))
        {
            // Never formatted: neither the key id nor the secret appears in the message.
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument,
                $"The S3 credentials for bucket '{options.Bucket}' have an empty {(string.IsNullOrEmpty(creds.AccessKeyId) ? "access key id" : "secret access key")}. Give -Credential with the access key id as the user name and the secret access key as the password (or set access-key-id and secret-access-key in the configuration, or the LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY variables).", options.Bucket);
        }

        try
        {
            _s3 = creds is null ? new AmazonS3Client(config) : new AmazonS3Client(new BasicAWSCredentials(creds.AccessKeyId, creds.SecretAccessKey), config);
        }
        catch (AmazonClientException e)
        {
            throw new ReplicaException(ReplicaErrorCode.InvalidArgument,
                $"The S3 client cannot be configured: {e.Message}. Give an http:// or https:// endpoint URL and a region name such as 'auto' or 'us-east-1'.", options.Endpoint, e);
        }
        Url = $"s3://{options.Bucket}/{_prefix.TrimStart('/')}";
    }

    public string Type => "s3";

    public string Url { get; }

    public RequestCounters Counters { get; } = new();

    private static Config.Credentials? FromEnvironment()
    {
        var id = Environment.GetEnvironmentVariable("LITESTREAM_ACCESS_KEY_ID");
        var secret = Environment.GetEnvironmentVariable("LITESTREAM_SECRET_ACCESS_KEY");
        return !string.IsNullOrEmpty(id) && !string.IsNullOrEmpty(secret) ? new Config.Credentials(id, secret) : null;
    }

    private string Key(params string[] parts) => GoPath.Join([_prefix, .. parts]);

    private string GenerationsPrefix => Key("generations") + "/";

    private string LeaseKey => Key("sqlitereplica-lease.json");

    private sealed record LeaseRecord(string Host, int ProcessId, string DatabasePath, DateTimeOffset ExpiresAt);

    public async Task<IReplicaLease> AcquireLeaseAsync(LeaseOwner owner, CancellationToken ct)
    {
        var lease = new S3Lease(this, owner);
        await lease.AcquireAsync(ct).ConfigureAwait(false);
        return lease;
    }

    /// <summary>
    /// The lease object (outside generations/, so Litestream never sees it), written with
    /// conditional PUTs: If-None-Match:* to create, If-Match:&lt;etag&gt; to renew or take over an
    /// expired (or our own) lease. A 412 means someone else holds or took it.
    /// </summary>
    private sealed class S3Lease(S3ReplicaClient client, LeaseOwner owner) : IReplicaLease
    {
        private string? _etag;
        private DateTimeOffset _renewedAt;

        public async Task AcquireAsync(CancellationToken ct)
        {
            if (await TryPutAsync(ifNoneMatch: true, null, ct).ConfigureAwait(false))
            {
                return;
            }

            var (current, etag) = await ReadAsync(ct).ConfigureAwait(false);
            if (current is not null && current.ExpiresAt > DateTimeOffset.UtcNow && !owner.SameReplicator(new LeaseOwner(current.Host, current.ProcessId, current.DatabasePath)))
            {
                throw new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
                    $"Replica '{client.Url}' is held by process {current.ProcessId} on {current.Host} replicating '{current.DatabasePath}' until {current.ExpiresAt:u}. Two replicators on one location would interleave histories: stop the other one (its lease lapses {client._options.LeaseDuration.TotalSeconds:F0} s after its last upload) or use another path.", client.LeaseKey);
            }

            if (etag is null || !await TryPutAsync(ifNoneMatch: false, etag, ct).ConfigureAwait(false))
            {
                throw new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
                    $"Another replicator took the lease on '{client.Url}' at the same moment. Stop the other replicator first.", client.LeaseKey);
            }

            client._log.Verbose(current is null ? $"lease on {client.Url} taken" : $"lease on {client.Url} taken over from {current.Host} (process {current.ProcessId}, {(current.ExpiresAt <= DateTimeOffset.UtcNow ? "expired" : "the same replicator restarted")})");
        }

        public async Task RenewIfDueAsync(CancellationToken ct)
        {
            if (DateTimeOffset.UtcNow - _renewedAt < client._options.LeaseDuration / 3)
            {
                return;
            }

            bool renewed;
            try
            {
                renewed = await TryPutAsync(ifNoneMatch: false, _etag, ct).ConfigureAwait(false);
            }
            catch (ReplicaException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.NotFound } s3 && s3.ErrorCode != "NoSuchBucket")
            {
                // The lease object is gone (the bucket was recreated, a lifecycle rule...): take
                // it again, unless someone else already has.
                client._log.Warning($"the lease on {client.Url} disappeared; taking it again");
                renewed = await TryPutAsync(ifNoneMatch: true, null, ct).ConfigureAwait(false);
            }

            if (!renewed)
            {
                var (current, _) = await ReadAsync(ct).ConfigureAwait(false);
                throw new ReplicaException(ReplicaErrorCode.AlreadyReplicating,
                    $"The lease on '{client.Url}' was taken by {(current is null ? "another replicator" : $"process {current.ProcessId} on {current.Host}")} while this replicator was idle. This replicator stops uploading to it; restart it once the other one is stopped.", client.LeaseKey);
            }
        }

        private async Task<bool> TryPutAsync(bool ifNoneMatch, string? ifMatch, CancellationToken ct)
        {
            var record = new LeaseRecord(owner.Host, owner.ProcessId, owner.DatabasePath, DateTimeOffset.UtcNow + client._options.LeaseDuration);
            var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(record);
            try
            {
                var response = await client.Retry("write lease", client.LeaseKey, async t =>
                {
                    client.Counters.CountPut();
                    var request = new PutObjectRequest
                    {
                        BucketName = client._options.Bucket,
                        Key = client.LeaseKey,
                        InputStream = new MemoryStream(body),
                        MD5Digest = Convert.ToBase64String(MD5.HashData(body)),
                        UseChunkEncoding = false,
                        DisablePayloadSigning = client._https,
                        DisableDefaultChecksumValidation = true,
                    };
                    if (ifNoneMatch)
                    {
                        request.IfNoneMatch = "*";
                    }
                    else
                    {
                        request.IfMatch = ifMatch;
                    }

                    return await client._s3.PutObjectAsync(request, t).ConfigureAwait(false);
                }, ct).ConfigureAwait(false);
                _etag = response.ETag;
                _renewedAt = DateTimeOffset.UtcNow;
                return true;
            }
            catch (ReplicaException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict })
            {
                return false;
            }
        }

        private async Task<(LeaseRecord? Record, string? ETag)> ReadAsync(CancellationToken ct)
        {
            try
            {
                using var response = await client.OpenRangeAsync(client.LeaseKey, 0, null, ct).ConfigureAwait(false);
                var record = await System.Text.Json.JsonSerializer.DeserializeAsync<LeaseRecord>(response.ResponseStream, cancellationToken: ct).ConfigureAwait(false);
                return (record, response.ETag);
            }
            catch (ReplicaException e) when (e.Code == ReplicaErrorCode.SegmentMissing)
            {
                return (null, null);
            }
            catch (System.Text.Json.JsonException)
            {
                return (new LeaseRecord("unknown", 0, "unknown", DateTimeOffset.MinValue), null);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_etag is null)
            {
                return;
            }

            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                client.Counters.CountDelete();
                await client._s3.DeleteObjectAsync(new DeleteObjectRequest { BucketName = client._options.Bucket, Key = client.LeaseKey, IfMatch = _etag }, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                client._log.Debug($"could not release the lease on {client.Url}: {e.Message}; it lapses by itself");
            }
        }
    }

    public async Task CheckWritableAsync(CancellationToken ct)
    {
        var probe = Key($".sqlitereplica-probe-{Environment.MachineName}-{Environment.ProcessId}");
        await PutAsync(probe, new MemoryStream(new byte[] { 0 }), ct).ConfigureAwait(false);
        await Retry("delete", probe, async t =>
        {
            Counters.CountDelete();
            await _s3.DeleteObjectAsync(_options.Bucket, probe, t).ConfigureAwait(false);
            return 0;
        }, ct).ConfigureAwait(false);
        await AbortStaleUploadsAsync(ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct)
    {
        var result = new List<string>();
        await ListAsync(GenerationsPrefix, "/", r =>
        {
            foreach (var p in r.CommonPrefixes ?? [])
            {
                var name = p.TrimEnd('/');
                name = name[(name.LastIndexOf('/') + 1)..];
                if (ReplicaNames.IsGeneration(name))
                {
                    result.Add(name);
                }
            }
        }, ct).ConfigureAwait(false);
        result.Sort(StringComparer.Ordinal);
        return result;
    }

    public async Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct)
    {
        var list = new List<SnapshotInfo>();
        await ListAsync(Key("generations", generation, "snapshots") + "/", null, r =>
        {
            foreach (var o in r.S3Objects ?? [])
            {
                var name = o.Key[(o.Key.LastIndexOf('/') + 1)..];
                if (ReplicaNames.TryParseSnapshot(name, out var index))
                {
                    list.Add(new SnapshotInfo(generation, index, o.Size ?? 0, Modified(o)));
                }
            }
        }, ct).ConfigureAwait(false);
        list.Sort((a, b) => a.Index.CompareTo(b.Index));
        return list;
    }

    public async Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct)
    {
        var list = new List<SegmentInfo>();
        await ListAsync(Key("generations", generation, "wal") + "/", null, r =>
        {
            foreach (var o in r.S3Objects ?? [])
            {
                var name = o.Key[(o.Key.LastIndexOf('/') + 1)..];
                if (ReplicaNames.TryParseSegment(name, out var index, out var offset))
                {
                    list.Add(new SegmentInfo(generation, index, offset, o.Size ?? 0, Modified(o)));
                }
            }
        }, ct).ConfigureAwait(false);
        list.Sort((a, b) => a.Index != b.Index ? a.Index.CompareTo(b.Index) : a.Offset.CompareTo(b.Offset));
        return list;
    }

    public Task<Stream> OpenSnapshotAsync(string generation, long index, CancellationToken ct) =>
        GetAsync(Key("generations", generation, "snapshots", ReplicaNames.SnapshotName(index)), ct);

    public Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct) =>
        GetAsync(Key("generations", generation, "wal", ReplicaNames.SegmentName(index, offset)), ct);

    public Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) =>
        WriteAsync(Key("generations", generation, "snapshots", ReplicaNames.SnapshotName(index)), writeFramed, ct);

    public Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) =>
        WriteAsync(Key("generations", generation, "wal", ReplicaNames.SegmentName(index, offset)), writeFramed, ct);

    public Task DeleteSnapshotAsync(string generation, long index, CancellationToken ct) =>
        DeleteKeysAsync([Key("generations", generation, "snapshots", ReplicaNames.SnapshotName(index))], ct);

    public Task DeleteSegmentsAsync(IReadOnlyList<SegmentInfo> segments, CancellationToken ct) =>
        DeleteKeysAsync(segments.Select(s => Key("generations", s.Generation, "wal", ReplicaNames.SegmentName(s.Index, s.Offset))).ToList(), ct);

    public async Task DeleteGenerationAsync(string generation, CancellationToken ct)
    {
        var keys = new List<string>();
        await ListAsync(Key("generations", generation) + "/", null, r => keys.AddRange((r.S3Objects ?? []).Select(o => o.Key)), ct).ConfigureAwait(false);
        // Snapshots first, then segments from the newest index down, offset 0 of each index last.
        var ordered = keys.OrderBy(k => k.Contains("/snapshots/", StringComparison.Ordinal) ? 0 : 1).ThenByDescending(k => k, StringComparer.Ordinal).ToList();
        await DeleteKeysAsync(ordered, ct).ConfigureAwait(false);
    }

    private async Task<long> WriteAsync(string key, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct)
    {
        await using var spool = new SpoolStream(MemorySpoolLimit, _options.SpoolDirectory ?? Path.GetTempPath());
        await writeFramed(spool, ct).ConfigureAwait(false);
        long length = spool.Length;
        if (length <= _options.MultipartThreshold)
        {
            await PutAsync(key, spool, ct).ConfigureAwait(false);
        }
        else
        {
            await MultipartAsync(key, spool, length, ct).ConfigureAwait(false);
        }

        return length;
    }

    private Task PutAsync(string key, Stream body, CancellationToken ct)
    {
        long length = body.Length;
        return Retry("upload", key, async t =>
        {
            var md5 = Md5(body, 0, length);
            var request = new PutObjectRequest
            {
                BucketName = _options.Bucket,
                Key = key,
                InputStream = Slice(body, 0, length),
                AutoCloseStream = true,
                MD5Digest = md5,
                UseChunkEncoding = false,
                DisablePayloadSigning = _https,
                DisableDefaultChecksumValidation = true,
            };
            Counters.CountPut();
            await _s3.PutObjectAsync(request, t).ConfigureAwait(false);
            return 0;
        }, ct);
    }

    private async Task MultipartAsync(string key, SpoolStream body, long length, CancellationToken ct)
    {
        long partSize = Math.Max(MinPartSize, (length + MaxParts - 1) / MaxParts);
        partSize = (partSize + (1 << 20) - 1) / (1 << 20) * (1 << 20);
        int parts = (int)((length + partSize - 1) / partSize);
        var init = await Retry("start multipart upload", key, t =>
        {
            Counters.CountMultipart();
            return _s3.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _options.Bucket, Key = key }, t);
        }, ct).ConfigureAwait(false);
        var etags = new PartETag[parts];
        try
        {
            // At most two parts of one upload in flight (R2 answers 500s beyond two or three).
            using var gate = new SemaphoreSlim(2);
            var tasks = Enumerable.Range(0, parts).Select(async i =>
            {
                await gate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    long offset = i * partSize;
                    long size = Math.Min(partSize, length - offset);
                    var response = await Retry($"upload part {i + 1}/{parts}", key, async t =>
                    {
                        Counters.CountMultipart();
                        return await _s3.UploadPartAsync(new UploadPartRequest
                        {
                            BucketName = _options.Bucket,
                            Key = key,
                            UploadId = init.UploadId,
                            PartNumber = i + 1,
                            PartSize = size,
                            InputStream = body.Slice(offset, size),
                            MD5Digest = Md5(body, offset, size),
                            UseChunkEncoding = false,
                            DisablePayloadSigning = _https,
                            DisableDefaultChecksumValidation = true,
                        }, t).ConfigureAwait(false);
                    }, ct).ConfigureAwait(false);
                    etags[i] = new PartETag(i + 1, response.ETag);
                }
                finally
                {
                    gate.Release();
                }
            }).ToList();
            await Task.WhenAll(tasks).ConfigureAwait(false);
            await Retry("complete multipart upload", key, t =>
            {
                Counters.CountMultipart();
                return _s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                {
                    BucketName = _options.Bucket,
                    Key = key,
                    UploadId = init.UploadId,
                    PartETags = etags.ToList(),
                }, t);
            }, ct).ConfigureAwait(false);
        }
        catch
        {
            try
            {
                Counters.CountMultipart();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _s3.AbortMultipartUploadAsync(_options.Bucket, key, init.UploadId, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _log.Debug($"could not abort multipart upload of {key}: {e.Message}; it will be cleaned up at the next start");
            }

            throw;
        }
    }

    private async Task AbortStaleUploadsAsync(CancellationToken ct)
    {
        try
        {
            Counters.CountList();
            var uploads = await _s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = _options.Bucket, Prefix = GenerationsPrefix }, ct).ConfigureAwait(false);
            foreach (var u in uploads.MultipartUploads ?? [])
            {
                if (u.Initiated is { } started && DateTime.UtcNow - started.ToUniversalTime() < TimeSpan.FromHours(1))
                {
                    continue;
                }

                Counters.CountMultipart();
                await _s3.AbortMultipartUploadAsync(_options.Bucket, u.Key, u.UploadId, ct).ConfigureAwait(false);
                _log.Verbose($"aborted a stale multipart upload of {u.Key}");
            }
        }
        catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.NotImplemented or HttpStatusCode.Forbidden)
        {
            _log.Debug($"listing unfinished multipart uploads is not possible here: {e.Message}");
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is AmazonClientException or HttpRequestException or IOException or OperationCanceledException)
        {
            // Best-effort cleanup, not retried: a store that really fails says so on the next request.
            _log.Debug($"could not look for unfinished multipart uploads: {Describe(e)}; tried again at the next start");
        }
    }

    private async Task<Stream> GetAsync(string key, CancellationToken ct)
    {
        var response = await OpenRangeAsync(key, 0, null, ct).ConfigureAwait(false);
        return new ResumingStream(this, key, response);
    }

    /// <summary>GetObject from <paramref name="from"/> to the end (retried); an ETag pins the same object when resuming.</summary>
    /// <remarks>
    /// Even a whole object is asked for as the range "bytes=0-": for a plain GET the SDK hashes
    /// the body with its own managed MD5 to compare with the ETag, which cost more CPU than the
    /// rest of a restore (1.7 s per GB measured here). Every replica object proves itself
    /// anyway: LZ4 content checksums, WAL checksum chains. An empty object cannot be asked for by
    /// range (416), so it is fetched again with a plain GET.
    /// </remarks>
    private Task<GetObjectResponse> OpenRangeAsync(string key, long from, string? etag, CancellationToken ct) =>
        Retry("download", key, async t =>
        {
            Counters.CountGet();
            try
            {
                var request = new GetObjectRequest { BucketName = _options.Bucket, Key = key, ByteRange = new ByteRange($"bytes={from}-") };
                if (from > 0)
                {
                    request.EtagToMatch = etag;
                }

                try
                {
                    return await _s3.GetObjectAsync(request, t).ConfigureAwait(false);
                }
                catch (AmazonS3Exception e) when (from == 0 && e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    Counters.CountGet();
                    return await _s3.GetObjectAsync(new GetObjectRequest { BucketName = _options.Bucket, Key = key }, t).ConfigureAwait(false);
                }
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket")
            {
                throw new ReplicaException(ReplicaErrorCode.SegmentMissing, $"Replica object '{key}' does not exist in bucket '{_options.Bucket}'.", key, e);
            }
        }, ct);

    private async Task ListAsync(string prefix, string? delimiter, Action<ListObjectsV2Response> page, CancellationToken ct)
    {
        string? token = null;
        do
        {
            var response = await Retry("list", prefix, t =>
            {
                Counters.CountList();
                return _s3.ListObjectsV2Async(new ListObjectsV2Request
                {
                    BucketName = _options.Bucket,
                    Prefix = prefix,
                    Delimiter = delimiter,
                    ContinuationToken = token,
                }, t);
            }, ct).ConfigureAwait(false);
            page(response);
            token = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (token is not null);
    }

    /// <summary>
    /// Deletes with single DeleteObject calls, a few at a time. (DeleteObjects needs a body
    /// checksum, and the SDK's default CRC headers are ones R2 refuses; single deletes carry no
    /// body and are free on R2.) Offset-0 segments go in a last pass, so an interrupted run never
    /// leaves an index that looks as if its start were missing.
    /// </summary>
    private async Task DeleteKeysAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        static bool IsIndexStart(string key) => key.EndsWith("_00000000.wal.lz4", StringComparison.Ordinal);
        foreach (var pass in new[] { keys.Where(k => !IsIndexStart(k)).ToList(), keys.Where(IsIndexStart).ToList() })
        {
            await Parallel.ForEachAsync(pass, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (key, token) =>
            {
                await Retry("delete", key, async t =>
                {
                    Counters.CountDelete();
                    await _s3.DeleteObjectAsync(_options.Bucket, key, t).ConfigureAwait(false);
                    return 0;
                }, token).ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
    }

    private async Task<T> Retry<T>(string what, string key, Func<CancellationToken, Task<T>> op, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_options.RequestTimeout);
            Exception failure;
            try
            {
                return await op(timeout.Token).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (Fatal(e) is { } fatal)
            {
                throw fatal;
            }
            catch (AmazonClientException e) when (e.Message.Contains("credentials", StringComparison.OrdinalIgnoreCase))
            {
                throw new ReplicaException(ReplicaErrorCode.StoreAccessDenied,
                    $"No S3 credentials were found for bucket '{_options.Bucket}'. Set LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), give -Credential, or put access-key-id and secret-access-key in the configuration.", _options.Bucket, e);
            }
            catch (AmazonServiceException e) when (!IsTransient(e))
            {
                // Any other answer that retrying cannot change (a 404 without an S3 error code from
                // a server that is not S3, an unexpected status): never let it escape unclassified.
                throw Rejected(what, key, e);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && IsUnreadableReply(e))
            {
                failure = e;
                if (attempt >= Math.Min(3, _options.MaxAttempts))
                {
                    // A reply cut short is retried; one that stays unreadable is not S3 speaking
                    // (an HTML page, a proxy's error page...).
                    throw Rejected(what, key, e);
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested && IsTransient(e))
            {
                failure = e;
            }

            if (attempt >= _options.MaxAttempts)
            {
                throw new ReplicaException(ReplicaErrorCode.StoreUnreachable,
                    $"Could not {what} '{key}' in bucket '{_options.Bucket}' after {attempt} attempts: {Describe(failure)}. Check the endpoint and network; replication retries by itself.", key, failure);
            }

            var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 250 * Math.Pow(2, attempt - 1)) * (0.5 + Random.Shared.NextDouble()));
            _log.Debug($"s3 {what} {key} failed (attempt {attempt}: {Describe(failure)}); retrying in {delay.TotalMilliseconds:F0} ms");
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
    }

    private ReplicaException? Fatal(AmazonS3Exception e)
    {
        if (e.StatusCode == HttpStatusCode.Forbidden || e.ErrorCode is "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "AccessDenied")
        {
            return new ReplicaException(ReplicaErrorCode.StoreAccessDenied,
                $"Bucket '{_options.Bucket}' refused the request ({e.ErrorCode ?? "403"}). Check the access key and that the token may read and write this bucket.", _options.Bucket, e);
        }

        if (e.ErrorCode == "NoSuchBucket")
        {
            return new ReplicaException(ReplicaErrorCode.BucketNotFound,
                $"Bucket '{_options.Bucket}' does not exist at {_options.Endpoint ?? "AWS"}. Create it, or fix 'bucket' in the configuration.", _options.Bucket, e);
        }

        if (e.StatusCode is HttpStatusCode.NotImplemented or HttpStatusCode.BadRequest or HttpStatusCode.MethodNotAllowed or HttpStatusCode.LengthRequired or HttpStatusCode.PreconditionFailed)
        {
            return new ReplicaException(ReplicaErrorCode.StoreRejected,
                $"The store at {_options.Endpoint ?? "AWS"} rejected a request on bucket '{_options.Bucket}' (HTTP {(int)e.StatusCode} {e.ErrorCode}: {e.Message}). It does not accept this request shape; check that the endpoint is an S3-compatible store and report this with the error code.", _options.Bucket, e);
        }

        return null;
    }

    /// <summary>
    /// A reply the SDK could not read as S3's (a body that is not S3 XML, a header it cannot
    /// parse): whatever exception type the SDK lets through for it, it must not escape unclassified.
    /// </summary>
    private static bool IsUnreadableReply(Exception e) =>
        e is AmazonUnmarshallingException or System.Xml.XmlException ||
        (e is not AmazonServiceException and not AmazonClientException and not OperationCanceledException and not ReplicaException &&
         e.Source is { } source && source.StartsWith("AWSSDK", StringComparison.Ordinal));

    private ReplicaException Rejected(string what, string key, Exception failure)
    {
        var endpoint = _options.Endpoint ?? "AWS";
        if (failure is not AmazonServiceException e || failure is AmazonUnmarshallingException)
        {
            var answer = failure is AmazonServiceException se ? $"HTTP {(int)se.StatusCode}" : "unreadable";
            return new ReplicaException(ReplicaErrorCode.StoreRejected,
                $"The store at {endpoint} answered the {what} of '{key}' in bucket '{_options.Bucket}' with a reply that is not an S3 response ({answer}: {failure.GetType().Name}: {failure.Message}). Check that -Endpoint is the S3 API of the store (for Cloudflare R2: https://<accountid>.r2.cloudflarestorage.com, no bucket in the URL).", key, failure);
        }

        var status = (int)e.StatusCode;

        bool s3Code = !string.IsNullOrEmpty(e.ErrorCode) && !string.Equals(e.ErrorCode, e.StatusCode.ToString(), StringComparison.Ordinal);
        if (!s3Code)
        {
            return new ReplicaException(ReplicaErrorCode.StoreRejected,
                $"The store at {endpoint} answered the {what} of '{key}' in bucket '{_options.Bucket}' with HTTP {status} and no S3 error code: it does not look like an S3-compatible store (or it does not serve this bucket). Check -Endpoint (the S3 API URL, for Cloudflare R2: https://<accountid>.r2.cloudflarestorage.com) and the bucket name.", key, e);
        }

        return new ReplicaException(ReplicaErrorCode.StoreRejected,
            $"The store at {endpoint} rejected the {what} of '{key}' in bucket '{_options.Bucket}' (HTTP {status} {e.ErrorCode}: {e.Message}). Retrying would not help; check the endpoint, the bucket and its settings, and report this with the error code if the store is S3-compatible.", key, e);
    }

    private static bool IsTransient(Exception e) => e switch
    {
        AmazonS3Exception s3 when s3.StatusCode is HttpStatusCode.NotImplemented or HttpStatusCode.HttpVersionNotSupported => false,
        AmazonS3Exception s3 => (int)s3.StatusCode >= 500 || (int)s3.StatusCode == 429 || s3.ErrorCode is "SlowDown" or "RequestTimeout" or "InternalError" || s3.StatusCode == 0,
        AmazonServiceException => true,
        HttpRequestException or IOException or SocketException or OperationCanceledException => true,
        AmazonClientException => true,
        _ => false,
    };

    private static string Describe(Exception e) => e switch
    {
        AmazonS3Exception s3 => $"HTTP {(int)s3.StatusCode} {s3.ErrorCode}",
        OperationCanceledException => "timed out",
        _ => e.GetType().Name + ": " + e.Message,
    };

    private static DateTimeOffset Modified(S3Object o) =>
        o.LastModified is { } lm ? new DateTimeOffset(DateTime.SpecifyKind(lm.ToUniversalTime(), DateTimeKind.Utc)) : DateTimeOffset.MinValue;

    private static Stream Slice(Stream body, long offset, long length) =>
        body is SpoolStream spool ? spool.Slice(offset, length) : new MemoryStream(((MemoryStream)body).ToArray(), (int)offset, (int)length, writable: false);

    private static string Md5(Stream body, long offset, long length)
    {
        using var s = Slice(body, offset, length);
        return Convert.ToBase64String(MD5.HashData(s));
    }

    public void Dispose() => _s3.Dispose();

    /// <summary>
    /// An object's body that survives a dropped connection or a body cut short: it counts the
    /// bytes against Content-Length and, on a failure, asks again from where it stopped
    /// (a ranged GET pinned to the same ETag), with the client's retry policy.
    /// </summary>
    private sealed class ResumingStream : IO.ReadOnlyStream
    {
        private readonly S3ReplicaClient _owner;
        private readonly string _key;
        private readonly long _length;
        private readonly string? _etag;
        private GetObjectResponse _response;
        private Stream _body;
        private long _position;

        public ResumingStream(S3ReplicaClient owner, string key, GetObjectResponse response)
        {
            _owner = owner;
            _key = key;
            _response = response;
            _body = response.ResponseStream;
            _length = response.ContentLength;
            _etag = response.ETag;
        }

        public override long Length => _length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            var rented = new byte[buffer.Length];
            int n = ReadAsync(rented).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Length == 0 || _position >= _length)
            {
                return 0;
            }

            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    // A body that stalls is a dropped connection too: each read gets the request timeout.
                    using var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    readTimeout.CancelAfter(_owner._options.RequestTimeout);
                    int n = await _body.ReadAsync(buffer, readTimeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IOException($"the body ended after {_position} of {_length} bytes");
                    }

                    _position += n;
                    return n;
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException && attempt < _owner._options.MaxAttempts)
                {
                    _owner._log.Debug($"s3 download of {_key} broke at byte {_position} of {_length} ({e.Message}); resuming");
                    _response.Dispose();
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), cancellationToken).ConfigureAwait(false);
                    _response = await _owner.OpenRangeAsync(_key, _position, _etag, cancellationToken).ConfigureAwait(false);
                    _body = _response.ResponseStream;
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is IOException or HttpRequestException)
                {
                    throw new ReplicaException(ReplicaErrorCode.StoreUnreachable,
                        $"Download of '{_key}' kept breaking (at byte {_position} of {_length}): {e.Message}. Check the network and try again.", _key, e);
                }
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _response.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>For <c>skip-verify</c>: TLS without certificate checks (test endpoints, self-signed stores).</summary>
    private sealed class InsecureHttpClientFactory : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
            new(new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator });
    }
}
