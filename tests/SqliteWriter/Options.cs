using System.Globalization;

namespace SqliteWriter;

/// <summary>Thrown for a bad command line; Program prints the usage and exits with 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// <c>--name value</c> and <c>--flag</c> options after the subcommand. Every option
/// must be consumed by the command, so a typo fails loudly instead of being ignored.
/// </summary>
internal sealed class Options
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public Options(IReadOnlyList<string> args, ISet<string> flags)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new UsageException($"unexpected argument '{arg}'");
            }

            string name = arg[2..];
            if (flags.Contains(name))
            {
                _values[name] = null;
                continue;
            }

            if (i + 1 >= args.Count)
            {
                throw new UsageException($"option --{name} needs a value");
            }

            _values[name] = args[++i];
        }
    }

    public bool Has(string name)
    {
        _used.Add(name);
        return _values.ContainsKey(name);
    }

    public string Required(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out string? value) && !string.IsNullOrEmpty(value)
            ? value
            : throw new UsageException($"option --{name} is required");
    }

    public string? Optional(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out string? value) ? value : null;
    }

    public long Long(string name, long defaultValue, long min = long.MinValue)
    {
        string? text = Optional(name);
        if (text is null)
        {
            return defaultValue;
        }

        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long value) || value < min)
        {
            throw new UsageException($"option --{name} needs an integer >= {min}, got '{text}'");
        }

        return value;
    }

    public int Int(string name, int defaultValue, int min = int.MinValue) =>
        checked((int)Long(name, defaultValue, min));

    public string Choice(string name, string defaultValue, params string[] allowed)
    {
        string value = (Optional(name) ?? defaultValue).ToLowerInvariant();
        return allowed.Contains(value)
            ? value
            : throw new UsageException($"option --{name} must be one of {string.Join(", ", allowed)}, got '{value}'");
    }

    /// <summary>Fails on any option the command did not ask for.</summary>
    public void EnsureAllUsed()
    {
        foreach (string name in _values.Keys)
        {
            if (!_used.Contains(name))
            {
                throw new UsageException($"unknown option --{name}");
            }
        }
    }
}
