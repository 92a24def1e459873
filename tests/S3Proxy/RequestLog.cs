using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace S3Proxy;

/// <summary>One request as the proxy saw it: enough to tell what the client sent and what it got.</summary>
internal sealed class RequestRecord
{
    public long Id { get; init; }

    public DateTimeOffset Time { get; init; }

    /// <summary>Milliseconds since the proxy started (or since the last reset), when the request arrived.</summary>
    public double AtMs { get; init; }

    public string Method { get; init; } = "";

    public string Target { get; init; } = "";

    public string Operation { get; init; } = "";

    public string Category { get; init; } = "";

    public string Scheme { get; init; } = "";

    /// <summary>unsigned, signed, streaming or none (x-amz-content-sha256), for PutObject and UploadPart.</summary>
    public string? Payload { get; init; }

    public long? RequestLength { get; init; }

    public Dictionary<string, string> Headers { get; init; } = [];

    public int Status { get; set; }

    public double DurationMs { get; set; }

    public long ResponseBytes { get; set; }

    public string? Fault { get; set; }

    public string? Rejected { get; set; }

    /// <summary>The client went away, the upstream failed, or the proxy cut the connection on purpose.</summary>
    public string? Note { get; set; }
}

/// <summary>Counters by operation and the most recent request records (thread-safe).</summary>
internal sealed class RequestLog
{
    private const int MaxRecords = 5000;
    private const int MaxRejected = 200;
    private readonly object _gate = new();
    private readonly LinkedList<RequestRecord> _recent = new();
    private readonly List<RequestRecord> _rejected = [];
    private readonly Dictionary<string, long> _byOperation = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _byCategory = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _payload = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _rejectedReasons = new(StringComparer.Ordinal);
    private Stopwatch _clock = Stopwatch.StartNew();
    private DateTimeOffset _since = DateTimeOffset.UtcNow;
    private long _nextId = 1;
    private long _total;
    private long _rejectedCount;
    private long _classA;
    private long _classB;
    private int _inFlight;
    private int _maxPartsInFlight;

    public RequestRecord Begin(HttpContext context, string operation, string rawTarget)
    {
        var request = context.Request;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in request.Headers)
        {
            headers[name] = name.Equals("Authorization", StringComparison.OrdinalIgnoreCase) ? RedactAuthorization(value.ToString())
                : name.Equals("X-Amz-Security-Token", StringComparison.OrdinalIgnoreCase) ? "<redacted>"
                : value.ToString();
        }

        string? payload = null;
        if (operation is S3Operation.PutObject or S3Operation.UploadPart)
        {
            string sha = request.Headers["x-amz-content-sha256"].ToString();
            payload = sha.Length == 0 ? "none"
                : sha.Equals("UNSIGNED-PAYLOAD", StringComparison.OrdinalIgnoreCase) ? "unsigned"
                : sha.StartsWith("STREAMING-", StringComparison.OrdinalIgnoreCase) ? "streaming"
                : "signed";
        }

        lock (_gate)
        {
            var record = new RequestRecord
            {
                Id = _nextId++,
                Time = DateTimeOffset.UtcNow,
                AtMs = Math.Round(_clock.Elapsed.TotalMilliseconds, 1),
                Method = request.Method,
                Target = rawTarget,
                Operation = operation,
                Category = S3Operation.Category(operation),
                Scheme = request.Scheme,
                Payload = payload,
                RequestLength = request.ContentLength,
                Headers = headers,
            };
            _total++;
            _inFlight++;
            Increment(_byOperation, operation);
            Increment(_byCategory, record.Category);
            if (payload is not null)
            {
                Increment(_payload, payload);
            }

            if (S3Operation.BillingClass(operation) == 'A')
            {
                _classA++;
            }
            else
            {
                _classB++;
            }

            _recent.AddLast(record);
            if (_recent.Count > MaxRecords)
            {
                _recent.RemoveFirst();
            }

            return record;
        }
    }

    public void Reject(RequestRecord record, Refusal refusal)
    {
        lock (_gate)
        {
            record.Rejected = refusal.Reason;
            _rejectedCount++;
            Increment(_rejectedReasons, refusal.Reason.Split(" (", 2)[0]);
            if (_rejected.Count < MaxRejected)
            {
                _rejected.Add(record);
            }
        }
    }

    public void End(RequestRecord record, int status, long responseBytes, double durationMs)
    {
        lock (_gate)
        {
            record.Status = status;
            record.ResponseBytes = responseBytes;
            record.DurationMs = Math.Round(durationMs, 1);
            _inFlight--;
        }
    }

    public void NotePartsInFlight(int count)
    {
        lock (_gate)
        {
            _maxPartsInFlight = Math.Max(_maxPartsInFlight, count);
        }
    }

    public void Reset()
    {
        lock (_gate)
        {
            _recent.Clear();
            _rejected.Clear();
            _byOperation.Clear();
            _byCategory.Clear();
            _payload.Clear();
            _rejectedReasons.Clear();
            _total = _rejectedCount = _classA = _classB = 0;
            _maxPartsInFlight = 0;
            _clock = Stopwatch.StartNew();
            _since = DateTimeOffset.UtcNow;
        }
    }

    public object Counters(FaultInjector faults)
    {
        lock (_gate)
        {
            return new
            {
                since = _since,
                elapsedMs = Math.Round(_clock.Elapsed.TotalMilliseconds, 1),
                total = _total,
                inFlight = _inFlight,
                classA = _classA,
                classB = _classB,
                operations = Sorted(_byOperation),
                categories = Sorted(_byCategory),
                payload = Sorted(_payload),
                maxPartsInFlight = _maxPartsInFlight,
                faults = new
                {
                    injected = faults.InjectedByKind().Values.Sum(),
                    byKind = Sorted(faults.InjectedByKind()),
                    active = faults.Rules,
                    down = faults.IsDown,
                },
                rejected = new
                {
                    count = _rejectedCount,
                    reasons = Sorted(_rejectedReasons),
                    requests = _rejected.ToList(),
                },
            };
        }
    }

    public List<RequestRecord> Recent(int last, string? operation)
    {
        lock (_gate)
        {
            IEnumerable<RequestRecord> all = _recent;
            if (!string.IsNullOrEmpty(operation))
            {
                all = all.Where(r => r.Operation.Equals(operation, StringComparison.OrdinalIgnoreCase));
            }

            var list = all.ToList();
            return last > 0 && list.Count > last ? list.GetRange(list.Count - last, last) : list;
        }
    }

    /// <summary>Keeps the SigV4 scope (date, region, service) and signed headers; drops the key id and signature.</summary>
    private static string RedactAuthorization(string value)
    {
        value = Regex.Replace(value, "Credential=[^/,]*/", "Credential=<key>/");
        return Regex.Replace(value, "Signature=[0-9A-Fa-f]+", "Signature=<redacted>");
    }

    private static void Increment(Dictionary<string, long> map, string key) => map[key] = map.GetValueOrDefault(key) + 1;

    private static SortedDictionary<string, long> Sorted(Dictionary<string, long> map) => new(map, StringComparer.Ordinal);
}
