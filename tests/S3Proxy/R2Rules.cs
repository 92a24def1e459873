using Microsoft.AspNetCore.Http;

namespace S3Proxy;

/// <summary>What R2 would answer to a request it refuses.</summary>
internal sealed record Refusal(int Status, string Code, string Reason);

/// <summary>
/// The request shapes Cloudflare R2 refuses and moto accepts: aws-chunked / streaming SigV4
/// payloads, flexible-checksum headers, bodies without Content-Length, DeleteObjects without
/// Content-MD5, and more than two concurrent parts of one multipart upload.
/// </summary>
internal sealed class R2Rules
{
    public const int MaxConcurrentParts = 2;

    private readonly Dictionary<string, int> _partsInFlight = new(StringComparer.Ordinal);

    /// <summary>Returns why R2 would refuse the request's headers, or null.</summary>
    public static Refusal? CheckHeaders(HttpRequest request, string operation)
    {
        string sha = request.Headers["x-amz-content-sha256"].ToString();
        if (sha.StartsWith("STREAMING-", StringComparison.OrdinalIgnoreCase))
        {
            return new Refusal(501, "NotImplemented", $"streaming SigV4 payload (x-amz-content-sha256: {sha})");
        }

        string encoding = request.Headers.ContentEncoding.ToString();
        if (encoding.Contains("aws-chunked", StringComparison.OrdinalIgnoreCase))
        {
            return new Refusal(501, "NotImplemented", $"aws-chunked body (Content-Encoding: {encoding})");
        }

        if (request.Headers.ContainsKey("x-amz-decoded-content-length"))
        {
            return new Refusal(501, "NotImplemented", "aws-chunked body (x-amz-decoded-content-length)");
        }

        foreach (var (name, value) in request.Headers)
        {
            if (name.StartsWith("x-amz-checksum-", StringComparison.OrdinalIgnoreCase)
                || name.Equals("x-amz-sdk-checksum-algorithm", StringComparison.OrdinalIgnoreCase)
                || name.Equals("x-amz-trailer", StringComparison.OrdinalIgnoreCase))
            {
                return new Refusal(501, "NotImplemented", $"unsupported checksum header ({name}: {value})");
            }
        }

        bool chunked = request.Headers.TransferEncoding.ToString().Contains("chunked", StringComparison.OrdinalIgnoreCase);
        if (chunked && operation is S3Operation.PutObject or S3Operation.UploadPart)
        {
            return new Refusal(411, "MissingContentLength", "body sent with Transfer-Encoding: chunked instead of a Content-Length");
        }

        if (operation == S3Operation.DeleteObjects && !request.Headers.ContainsKey("Content-MD5"))
        {
            return new Refusal(400, "InvalidRequest", "DeleteObjects without Content-MD5 (R2 needs Content-MD5 or a checksum header, and checksum headers are refused)");
        }

        return null;
    }

    /// <summary>
    /// Counts an UploadPart in flight for its upload; returns a refusal when that makes more than
    /// <see cref="MaxConcurrentParts"/>. Every call must be matched by <see cref="LeavePart"/>.
    /// </summary>
    public Refusal? EnterPart(string uploadId, out int inFlight)
    {
        lock (_partsInFlight)
        {
            int now = _partsInFlight.GetValueOrDefault(uploadId) + 1;
            _partsInFlight[uploadId] = now;
            inFlight = now;
            return now > MaxConcurrentParts
                ? new Refusal(500, "InternalError", $"{now} concurrent parts of multipart upload {uploadId} (R2 allows {MaxConcurrentParts})")
                : null;
        }
    }

    public void LeavePart(string uploadId)
    {
        lock (_partsInFlight)
        {
            int now = _partsInFlight.GetValueOrDefault(uploadId) - 1;
            if (now <= 0)
            {
                _partsInFlight.Remove(uploadId);
            }
            else
            {
                _partsInFlight[uploadId] = now;
            }
        }
    }
}
