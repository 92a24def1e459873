namespace S3Proxy;

/// <summary>The fault rules in force, applied first-added first, and the "down" state.</summary>
internal sealed class FaultInjector
{
    private readonly object _gate = new();
    private readonly List<FaultRule> _rules = [];
    private readonly Dictionary<string, long> _injected = new(StringComparer.Ordinal);
    private int _nextId = 1;
    private bool _down;
    private CancellationTokenSource? _upTimer;

    /// <summary>Raised (outside the lock) when the endpoint must refuse connections.</summary>
    public event Action? Down;

    /// <summary>Raised (outside the lock) when the endpoint must accept connections again.</summary>
    public event Action? Up;

    public bool IsDown
    {
        get
        {
            lock (_gate)
            {
                return _down;
            }
        }
    }

    public FaultRule Add(FaultRule rule)
    {
        if (rule.Kind == "down")
        {
            lock (_gate)
            {
                rule.Id = _nextId++;
                rule.Hits = 1;
                _down = true;
                Count("down");
                _upTimer?.Cancel();
                _upTimer = null;
                if (rule.Seconds > 0)
                {
                    var timer = new CancellationTokenSource();
                    _upTimer = timer;
                    _ = BringUpLaterAsync(TimeSpan.FromSeconds(rule.Seconds), timer.Token);
                }
            }

            Down?.Invoke();
            return rule;
        }

        lock (_gate)
        {
            rule.Id = _nextId++;
            _rules.Add(rule);
            return rule;
        }
    }

    /// <summary>Removes every rule and ends a "down" spell.</summary>
    public void Clear()
    {
        bool wasDown;
        lock (_gate)
        {
            _rules.Clear();
            _upTimer?.Cancel();
            _upTimer = null;
            wasDown = _down;
            _down = false;
        }

        if (wasDown)
        {
            Up?.Invoke();
        }
    }

    /// <summary>
    /// The rule that hits this request now, if any (its hit is counted). <paramref name="beforeForwarding"/>
    /// selects status/reset/stall rules; otherwise truncate rules, asked once the upstream answer is known.
    /// </summary>
    public FaultRule? Take(string operation, string method, string path, bool beforeForwarding)
    {
        lock (_gate)
        {
            foreach (var rule in _rules)
            {
                if (rule.IsBeforeForwarding != beforeForwarding || rule.Exhausted || !rule.Matches(operation, method, path))
                {
                    continue;
                }

                if (rule.Skip > 0)
                {
                    rule.Skip--;
                    continue;
                }

                rule.Hits++;
                Count(rule.Kind);
                var hit = rule;
                _rules.RemoveAll(r => r.Exhausted);
                return hit;
            }

            return null;
        }
    }

    public IReadOnlyList<FaultRule> Rules
    {
        get
        {
            lock (_gate)
            {
                return _rules.ToList();
            }
        }
    }

    public Dictionary<string, long> InjectedByKind()
    {
        lock (_gate)
        {
            return new Dictionary<string, long>(_injected);
        }
    }

    public void ResetCounts()
    {
        lock (_gate)
        {
            _injected.Clear();
        }
    }

    private void Count(string kind) => _injected[kind] = _injected.GetValueOrDefault(kind) + 1;

    private async Task BringUpLaterAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, ct);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (_gate)
        {
            if (ct.IsCancellationRequested || !_down)
            {
                return;
            }

            _down = false;
            _upTimer = null;
        }

        Up?.Invoke();
    }
}
