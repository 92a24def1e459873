using System.Text.Json.Serialization;

namespace S3Proxy;

/// <summary>
/// One fault to inject, as posted to <c>/fault</c>:
/// <list type="bullet">
/// <item><c>status</c>: answer <c>status</c> (default 503) with an S3 error body of <c>code</c> (default from the status).</item>
/// <item><c>reset</c>: drop the connection (TCP RST) without answering.</item>
/// <item><c>stall</c>: hold the request <c>seconds</c> before forwarding it: longer than the client's
/// timeout, the client gives up; short and with <c>count</c> -1, a fixed latency.</item>
/// <item><c>truncate</c>: forward, declare the full Content-Length, send the first half of a GET body and close (FIN);
/// with <c>seconds</c>, hold the silent connection that long before closing (a body that stalls).</item>
/// <item><c>down</c>: close the listening ports (connections refused) for <c>seconds</c>, or until <c>/clear</c>.</item>
/// </list>
/// <c>count</c> requests are hit (default 1; -1 = until cleared). <c>match</c> selects by S3 operation
/// (PutObject, GetObject, UploadPart...) or HTTP method, comma-separated, default any (truncate:
/// GetObject); <c>path</c> is a substring the request path must contain; <c>skip</c> lets that many
/// matching requests through first.
/// </summary>
internal sealed class FaultRule
{
    public string Kind { get; set; } = "";

    public int? Status { get; set; }

    public string? Code { get; set; }

    public string? Message { get; set; }

    public int Count { get; set; } = 1;

    public string? Match { get; set; }

    public string? Path { get; set; }

    public double Seconds { get; set; }

    public int Skip { get; set; }

    public int Id { get; set; }

    /// <summary>Requests hit so far.</summary>
    public int Hits { get; set; }

    [JsonIgnore]
    public bool IsBeforeForwarding => Kind is "status" or "reset" or "stall";

    [JsonIgnore]
    public bool Exhausted => Count >= 0 && Hits >= Count;

    public string? Validate()
    {
        switch (Kind)
        {
            case "status":
                Status ??= 503;
                if (Status is < 400 or > 599)
                {
                    return "status must be 400-599";
                }

                Code ??= Status switch
                {
                    403 => "AccessDenied",
                    404 => "NoSuchKey",
                    429 => "TooManyRequests",
                    500 => "InternalError",
                    501 => "NotImplemented",
                    503 => "ServiceUnavailable",
                    _ => "InternalError",
                };
                break;
            case "stall":
                if (Seconds <= 0)
                {
                    return "stall needs seconds > 0";
                }

                break;
            case "truncate":
                Match ??= S3Operation.GetObject;
                if (Seconds < 0)
                {
                    return "truncate takes seconds >= 0 (how long the cut body stalls before the close)";
                }

                break;
            case "reset" or "down":
                break;
            default:
                return $"unknown kind '{Kind}' (status, reset, stall, truncate, down)";
        }

        return Count is 0 or < -1 ? "count must be a positive number, or -1 for until cleared" : null;
    }

    public bool Matches(string operation, string method, string path)
    {
        if (Path is { Length: > 0 } part && !path.Contains(part, StringComparison.Ordinal))
        {
            return false;
        }

        if (string.IsNullOrWhiteSpace(Match) || Match == "*")
        {
            return true;
        }

        foreach (var item in Match.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (item.Equals(operation, StringComparison.OrdinalIgnoreCase) || item.Equals(method, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => Kind switch
    {
        "status" => $"status {Status} {Code}",
        "stall" => $"stall {Seconds}s",
        "truncate" when Seconds > 0 => $"truncate and stall {Seconds}s",
        _ => Kind,
    };
}
