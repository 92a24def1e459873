using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security;
using System.Text;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace S3Proxy;

/// <summary>
/// Handles one client request: records it, refuses it as R2 would, injects a fault if a rule
/// hits it, and otherwise forwards it verbatim (raw target, headers, streamed body) to the
/// upstream and streams the answer back.
/// </summary>
internal sealed class Forwarder : IDisposable
{
    private static readonly HashSet<string> NotForwarded = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Proxy-Connection",
        "Proxy-Authorization", "Proxy-Authenticate", "Expect", "Host", "Content-Length",
    };

    private readonly Uri _upstream;
    private readonly RequestLog _log;
    private readonly FaultInjector _faults;
    private readonly R2Rules _rules = new();
    private readonly TextWriter? _out;
    private readonly HttpClient _client;

    public Forwarder(Uri upstream, RequestLog log, FaultInjector faults, TextWriter? output)
    {
        _upstream = upstream;
        _log = log;
        _faults = faults;
        _out = output;
        _client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public async Task HandleAsync(HttpContext context)
    {
        var watch = Stopwatch.StartNew();
        var request = context.Request;
        string path = request.Path.Value ?? "/";
        string rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? path + request.QueryString;
        string operation = S3Operation.Classify(request.Method, path, request.Query);
        var record = _log.Begin(context, operation, rawTarget);
        string? uploadId = operation == S3Operation.UploadPart ? request.Query["uploadId"].ToString() : null;
        bool partEntered = false;
        int status = 0;
        long sent = 0;
        try
        {
            var refusal = R2Rules.CheckHeaders(request, operation);
            if (refusal is null && uploadId is not null)
            {
                partEntered = true;
                refusal = _rules.EnterPart(uploadId, out int inFlight);
                _log.NotePartsInFlight(inFlight);
            }

            if (refusal is not null)
            {
                _log.Reject(record, refusal);
                (status, sent) = (refusal.Status, await WriteErrorAsync(context, refusal.Status, refusal.Code, "Refused by the S3 test proxy as Cloudflare R2 would: " + refusal.Reason));
                return;
            }

            var fault = _faults.Take(operation, request.Method, path, beforeForwarding: true);
            if (fault is not null)
            {
                record.Fault = fault.ToString();
                switch (fault.Kind)
                {
                    case "status":
                        (status, sent) = (fault.Status!.Value, await WriteErrorAsync(context, fault.Status.Value, fault.Code!, fault.Message ?? "Injected by the S3 test proxy."));
                        return;
                    case "reset":
                        Reset(context);
                        record.Note = "connection reset by the proxy";
                        return;
                    case "stall":
                        try
                        {
                            await Task.Delay(TimeSpan.FromSeconds(fault.Seconds), context.RequestAborted);
                        }
                        catch (OperationCanceledException)
                        {
                            record.Note = "the client gave up during the stall";
                            return;
                        }

                        record.Note = "forwarded after the stall";
                        break;
                }
            }

            (status, sent) = await ForwardAsync(context, record, operation, path);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested)
        {
            record.Note ??= "the client went away: " + e.GetType().Name;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException)
        {
            record.Note = "upstream failed: " + e.Message;
            if (!context.Response.HasStarted)
            {
                (status, sent) = (502, await WriteErrorAsync(context, 502, "BadGateway", "The S3 test proxy could not reach its upstream: " + e.Message));
            }
            else
            {
                context.Abort();
            }
        }
        finally
        {
            if (partEntered)
            {
                _rules.LeavePart(uploadId!);
            }

            _log.End(record, status, sent, watch.Elapsed.TotalMilliseconds);
            _out?.WriteLine(Describe(record));
        }
    }

    public void Dispose() => _client.Dispose();

    private async Task<(int Status, long Sent)> ForwardAsync(HttpContext context, RequestRecord record, string operation, string path)
    {
        var request = context.Request;
        var ct = context.RequestAborted;
        using var upstream = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(_upstream.GetLeftPart(UriPartial.Authority) + record.Target));
        bool chunked = request.Headers.TransferEncoding.ToString().Contains("chunked", StringComparison.OrdinalIgnoreCase);
        if (request.ContentLength > 0 || chunked)
        {
            upstream.Content = new StreamContent(request.Body, 1 << 16);
            if (request.ContentLength is long length)
            {
                upstream.Content.Headers.ContentLength = length;
            }
        }
        else if (request.ContentLength == 0)
        {
            upstream.Content = new ByteArrayContent([]);
        }

        foreach (var (name, value) in request.Headers)
        {
            if (NotForwarded.Contains(name))
            {
                continue;
            }

            if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) && upstream.Content is not null)
            {
                upstream.Content.Headers.TryAddWithoutValidation(name, value.ToArray());
            }
            else
            {
                upstream.Headers.TryAddWithoutValidation(name, value.ToArray());
            }
        }

        upstream.Headers.Host = request.Host.Value;
        using var response = await _client.SendAsync(upstream, HttpCompletionOption.ResponseHeadersRead, ct);
        int status = (int)response.StatusCode;
        context.Response.StatusCode = status;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            if (!NotForwarded.Contains(name))
            {
                context.Response.Headers[name] = values.ToArray();
            }
        }

        long? declared = response.Content.Headers.ContentLength;
        if (declared is not null)
        {
            context.Response.ContentLength = declared;
        }

        if (HttpMethods.IsHead(request.Method) || status is 204 or 304)
        {
            return (status, 0);
        }

        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var truncate = status is 200 or 206 && declared >= 2 ? _faults.Take(operation, request.Method, path, beforeForwarding: false) : null;
        if (truncate is not null)
        {
            long cut = declared!.Value / 2;
            record.Fault = truncate.ToString();
            long copied = await CopyAsync(body, context.Response.Body, cut, ct);
            await context.Response.Body.FlushAsync(ct);
            // Let the bytes leave, then close the connection in order (FIN, no TLS close_notify):
            // the client sees the body end early, as when a store or a middlebox drops a download.
            // With seconds, the connection first stays open, silent, that long (a stalled body).
            await Task.Delay(100, ct);
            record.Note = $"body cut after {copied} of {declared} bytes";
            if (truncate.Seconds > 0)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(truncate.Seconds), ct);
                }
                catch (OperationCanceledException)
                {
                    record.Note += $"; the client gave up during the {truncate.Seconds} s stall";
                    return (status, copied);
                }

                record.Note += $", after a {truncate.Seconds} s stall";
            }

            Close(context);
            return (status, copied);
        }

        return (status, await CopyAsync(body, context.Response.Body, long.MaxValue, ct));
    }

    private static async Task<long> CopyAsync(Stream from, Stream to, long limit, CancellationToken ct)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        while (total < limit)
        {
            int n = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit - total)), ct);
            if (n == 0)
            {
                break;
            }

            await to.WriteAsync(buffer.AsMemory(0, n), ct);
            total += n;
        }

        return total;
    }

    private static async Task<long> WriteErrorAsync(HttpContext context, int status, string code, string message)
    {
        var response = context.Response;
        response.StatusCode = status;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return 0;
        }

        var xml = Encoding.UTF8.GetBytes(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
            $"<Error><Code>{SecurityElement.Escape(code)}</Code><Message>{SecurityElement.Escape(message)}</Message>" +
            $"<RequestId>s3proxy-{Guid.NewGuid():N}</RequestId></Error>");
        response.ContentType = "application/xml";
        response.ContentLength = xml.Length;
        await response.Body.WriteAsync(xml, context.RequestAborted);
        return xml.Length;
    }

    /// <summary>Ends the connection with a FIN after what was sent so far.</summary>
    private static void Close(HttpContext context)
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        try
        {
            socket?.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closing: the abort below does the rest.
        }

        context.Abort();
    }

    /// <summary>Drops the connection with a TCP RST (linger 0) instead of an answer.</summary>
    private static void Reset(HttpContext context)
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        try
        {
            if (socket is not null)
            {
                socket.LingerState = new LingerOption(true, 0);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closing: the abort below does the rest.
        }

        context.Abort();
    }

    private static string Describe(RequestRecord r)
    {
        var line = new StringBuilder();
        line.Append(CultureInfo.InvariantCulture, $"{r.Time:HH:mm:ss.fff} #{r.Id} {r.Operation} {r.Method} {r.Target} -> {(r.Status == 0 ? "-" : r.Status.ToString(CultureInfo.InvariantCulture))} {r.DurationMs:F0}ms");
        if (r.Payload is not null)
        {
            line.Append(" payload=").Append(r.Payload);
        }

        if (r.Fault is not null)
        {
            line.Append(" FAULT=").Append(r.Fault);
        }

        if (r.Rejected is not null)
        {
            line.Append(" REJECTED=").Append(r.Rejected);
        }

        if (r.Note is not null)
        {
            line.Append(" (").Append(r.Note).Append(')');
        }

        return line.ToString();
    }
}
