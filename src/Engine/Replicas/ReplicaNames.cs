using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace SqliteReplica.Engine.Replicas;

/// <summary>
/// Names of objects in the Litestream v0.3 layout:
/// <c>generations/&lt;gen&gt;/snapshots/&lt;%08x index&gt;.snapshot.lz4</c> and
/// <c>generations/&lt;gen&gt;/wal/&lt;%08x index&gt;_&lt;%08x offset&gt;.wal.lz4</c>.
/// </summary>
public static partial class ReplicaNames
{
    /// <summary>The writer caps indexes here; reaching it forces a new generation.</summary>
    public const long MaxIndex = 0x7FFFFFFF;

    [GeneratedRegex("^[0-9a-f]{16}$")]
    private static partial Regex GenerationRegex();

    [GeneratedRegex(@"^([0-9a-f]{8})\.snapshot\.lz4$")]
    private static partial Regex SnapshotRegex();

    // Offsets may need more than 8 digits past 4 GiB (Go's %08x is a minimum width).
    [GeneratedRegex(@"^([0-9a-f]{8})_([0-9a-f]{8,16})\.wal\.lz4$")]
    private static partial Regex SegmentRegex();

    public static bool IsGeneration(string name) => GenerationRegex().IsMatch(name);

    /// <summary>A fresh 16-hex-digit generation id from 8 random bytes.</summary>
    public static string NewGeneration() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>Formats like Go's <c>%08x</c>: lowercase, at least 8 digits, never extra zeros.</summary>
    public static string Hex8(long value) => value.ToString("x8", CultureInfo.InvariantCulture);

    public static string SnapshotName(long index) => $"{Hex8(index)}.snapshot.lz4";

    public static string SegmentName(long index, long offset) => $"{Hex8(index)}_{Hex8(offset)}.wal.lz4";

    public static bool TryParseSnapshot(string name, out long index)
    {
        var m = SnapshotRegex().Match(name);
        index = m.Success ? long.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) : 0;
        return m.Success && index <= MaxIndex;
    }

    public static bool TryParseSegment(string name, out long index, out long offset)
    {
        var m = SegmentRegex().Match(name);
        index = offset = 0;
        if (!m.Success)
        {
            return false;
        }

        index = long.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        // Names with superfluous leading zeros would not round-trip through %08x: treat as foreign.
        if (!ulong.TryParse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var off) || off > long.MaxValue)
        {
            return false;
        }

        offset = (long)off;
        return index <= MaxIndex && Hex8(offset) == m.Groups[2].Value;
    }
}
