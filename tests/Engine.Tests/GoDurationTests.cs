using SqliteReplica.Engine.Config;

namespace SqliteReplica.Engine.Tests;

/// <summary>Go's time.ParseDuration syntax as Litestream's config uses it, and Go-style formatting.</summary>
public class GoDurationTests
{
    private const long TicksPerMicrosecond = 10;

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("+0", 0L)]
    [InlineData("-0", 0L)]
    [InlineData("0s", 0L)]
    [InlineData("0h0m0s", 0L)]
    [InlineData("1s", 1000L * TimeSpan.TicksPerMillisecond)]
    [InlineData("500ms", 500L * TimeSpan.TicksPerMillisecond)]
    [InlineData("10s", 10L * TimeSpan.TicksPerSecond)]
    [InlineData("1m", TimeSpan.TicksPerMinute)]
    [InlineData("1m30s", 90L * TimeSpan.TicksPerSecond)]
    [InlineData("1h30m", 90L * TimeSpan.TicksPerMinute)]
    [InlineData("24h", 24L * TimeSpan.TicksPerHour)]
    [InlineData("168h", 168L * TimeSpan.TicksPerHour)]
    [InlineData("1h1m1s", TimeSpan.TicksPerHour + TimeSpan.TicksPerMinute + TimeSpan.TicksPerSecond)]
    [InlineData("1.5h", 90L * TimeSpan.TicksPerMinute)]
    [InlineData("1.5s", 1500L * TimeSpan.TicksPerMillisecond)]
    [InlineData(".5s", 500L * TimeSpan.TicksPerMillisecond)]
    [InlineData("1.s", TimeSpan.TicksPerSecond)]
    [InlineData("0.1s", 100L * TimeSpan.TicksPerMillisecond)]
    [InlineData("1.1s", 1100L * TimeSpan.TicksPerMillisecond)]
    [InlineData("100us", 100L * TicksPerMicrosecond)]
    [InlineData("100µs", 100L * TicksPerMicrosecond)] // U+00B5 micro sign
    [InlineData("100μs", 100L * TicksPerMicrosecond)] // U+03BC greek mu
    [InlineData("1000ns", 1000L / 100)]
    [InlineData("1h0.5m", 3630L * TimeSpan.TicksPerSecond)]
    [InlineData("30s1h", 3630L * TimeSpan.TicksPerSecond)] // Go accepts units in any order
    [InlineData("+5s", 5L * TimeSpan.TicksPerSecond)]
    [InlineData("-1s", -TimeSpan.TicksPerSecond)]
    [InlineData("-1h30m", -90L * TimeSpan.TicksPerMinute)]
    public void TryParse_accepts_go_syntax(string text, long ticks)
    {
        Assert.True(GoDuration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromTicks(ticks), value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("7d")] // days are not Go syntax
    [InlineData("1w")]
    [InlineData("5")] // a bare integer other than 0 needs a unit
    [InlineData("1.5")]
    [InlineData("abc")]
    [InlineData("h")]
    [InlineData("s")]
    [InlineData(".s")]
    [InlineData("1H")] // units are case-sensitive
    [InlineData("1S")]
    [InlineData("1h30")] // trailing number without a unit
    [InlineData("1s5")]
    [InlineData("--1s")]
    [InlineData("-")]
    [InlineData("1.2.3s")]
    [InlineData("1 h")]
    [InlineData("1e3s")]
    [InlineData("0x10s")]
    [InlineData("1,5s")]
    [InlineData("300000000h")] // beyond TimeSpan.MaxValue
    public void TryParse_refuses_anything_else(string? text)
    {
        Assert.False(GoDuration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.Zero, value);
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(500L * TimeSpan.TicksPerMillisecond, "500ms")]
    [InlineData(1500L * TimeSpan.TicksPerMillisecond, "1.5s")]
    [InlineData(TimeSpan.TicksPerSecond, "1s")]
    [InlineData(10L * TimeSpan.TicksPerSecond, "10s")]
    [InlineData(TimeSpan.TicksPerMinute, "1m0s")]
    [InlineData(90L * TimeSpan.TicksPerSecond, "1m30s")]
    [InlineData(TimeSpan.TicksPerHour, "1h0m0s")]
    [InlineData(90L * TimeSpan.TicksPerMinute, "1h30m0s")]
    [InlineData(12L * TimeSpan.TicksPerHour, "12h0m0s")]
    [InlineData(24L * TimeSpan.TicksPerHour, "24h0m0s")]
    [InlineData(72L * TimeSpan.TicksPerHour, "72h0m0s")]
    [InlineData(TimeSpan.TicksPerHour + TimeSpan.TicksPerSecond, "1h0m1s")]
    [InlineData(-90L * TimeSpan.TicksPerSecond, "-1m30s")]
    [InlineData(-500L * TimeSpan.TicksPerMillisecond, "-500ms")]
    [InlineData(1001L * TimeSpan.TicksPerMillisecond, "1.001s")]
    public void Format_writes_go_style(long ticks, string expected)
    {
        Assert.Equal(expected, GoDuration.Format(TimeSpan.FromTicks(ticks)));
    }

    public static TheoryData<long> RoundTripValues() =>
    [
        0L,
        TimeSpan.TicksPerMillisecond,
        250L * TimeSpan.TicksPerMillisecond,
        999L * TimeSpan.TicksPerMillisecond,
        TimeSpan.TicksPerMillisecond / 2, // 0.5ms
        15L, // 1.5µs
        TimeSpan.TicksPerSecond,
        1500L * TimeSpan.TicksPerMillisecond,
        59_999L * TimeSpan.TicksPerMillisecond,
        TimeSpan.TicksPerMinute,
        90L * TimeSpan.TicksPerSecond,
        TimeSpan.TicksPerHour,
        90L * TimeSpan.TicksPerMinute,
        12L * TimeSpan.TicksPerHour,
        24L * TimeSpan.TicksPerHour,
        72L * TimeSpan.TicksPerHour,
        168L * TimeSpan.TicksPerHour,
        10_000L * TimeSpan.TicksPerHour + 59L * TimeSpan.TicksPerMinute + 59_999L * TimeSpan.TicksPerMillisecond,
        -TimeSpan.TicksPerSecond,
        -90L * TimeSpan.TicksPerMinute,
        -250L * TimeSpan.TicksPerMillisecond,
    ];

    [Theory]
    [MemberData(nameof(RoundTripValues))]
    public void Format_then_TryParse_round_trips(long ticks)
    {
        var value = TimeSpan.FromTicks(ticks);

        var text = GoDuration.Format(value);

        Assert.True(GoDuration.TryParse(text, out var back), text);
        Assert.Equal(value, back);
    }

    [Theory]
    [InlineData("0s")]
    [InlineData("500ms")]
    [InlineData("1.5s")]
    [InlineData("1m30s")]
    [InlineData("1h30m0s")]
    [InlineData("72h0m0s")]
    [InlineData("-1m30s")]
    public void TryParse_then_Format_round_trips_canonical_text(string text)
    {
        Assert.True(GoDuration.TryParse(text, out var value));
        Assert.Equal(text, GoDuration.Format(value));
    }

    [Fact]
    public void Format_keeps_sub_millisecond_precision_above_one_second()
    {
        var value = TimeSpan.FromTicks(TimeSpan.TicksPerSecond + 5000); // 1.0005s

        Assert.Equal("1.0005s", GoDuration.Format(value));
        Assert.True(GoDuration.TryParse(GoDuration.Format(value), out var back));
        Assert.Equal(value, back);
    }
}
