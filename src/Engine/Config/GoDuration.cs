using System.Globalization;
using System.Text.RegularExpressions;

namespace SqliteReplica.Engine.Config;

/// <summary>
/// Durations written the way Litestream's config writes them (Go's time.ParseDuration):
/// <c>500ms</c>, <c>10s</c>, <c>1m30s</c>, <c>24h</c>. Days (<c>7d</c>) are not Go syntax and are refused.
/// </summary>
public static partial class GoDuration
{
    [GeneratedRegex(@"^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")]
    private static partial Regex Part();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        bool negative = false;
        if (s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s == "0")
        {
            return true;
        }

        double ticks = 0;
        bool any = false;
        while (s.Length > 0)
        {
            var m = Part().Match(s);
            if (!m.Success || m.Groups[1].Value is "" or ".")
            {
                return false;
            }

            double n = double.Parse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
            ticks += m.Groups[2].Value switch
            {
                "ns" => n / 100,
                "us" or "µs" or "μs" => n * 10,
                "ms" => n * TimeSpan.TicksPerMillisecond,
                "s" => n * TimeSpan.TicksPerSecond,
                "m" => n * TimeSpan.TicksPerMinute,
                _ => n * TimeSpan.TicksPerHour,
            };
            any = true;
            s = s[m.Length..];
        }

        if (!any || ticks > TimeSpan.MaxValue.Ticks)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)Math.Round(negative ? -ticks : ticks));
        return true;
    }

    /// <summary>Formats like Go: <c>1h30m0s</c>, <c>500ms</c>, <c>0s</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        if (value < TimeSpan.FromSeconds(1) && value > TimeSpan.FromSeconds(-1))
        {
            return $"{value.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms";
        }

        var sb = new System.Text.StringBuilder();
        if (value < TimeSpan.Zero)
        {
            sb.Append('-');
            value = value.Negate();
        }

        long hours = (long)value.TotalHours;
        if (hours > 0)
        {
            sb.Append(hours).Append('h');
        }

        if (hours > 0 || value.Minutes > 0)
        {
            sb.Append(value.Minutes).Append('m');
        }

        double seconds = (value.Ticks % TimeSpan.TicksPerMinute) / (double)TimeSpan.TicksPerSecond;
        sb.Append(seconds.ToString(CultureInfo.InvariantCulture)).Append('s');
        return sb.ToString();
    }
}
