using System.Buffers.Binary;

namespace SqliteReplica.Engine.Wal;

/// <summary>The 32-byte header that starts every SQLite WAL file (and every index of a replica).</summary>
public sealed record WalHeader(
    uint Magic,
    uint FormatVersion,
    int PageSize,
    uint CheckpointSequence,
    uint Salt1,
    uint Salt2,
    WalChecksum Checksum)
{
    public const int Size = 32;
    public const uint MagicLittleEndian = 0x377f0682;
    public const uint MagicBigEndian = 0x377f0683;
    public const uint SupportedFormatVersion = 3007000;

    /// <summary>True when the checksum words are read big-endian (magic 0x377f0683).</summary>
    public bool BigEndianChecksum => Magic == MagicBigEndian;

    /// <summary>Bytes of one frame: 24-byte frame header plus one page.</summary>
    public int FrameSize => PageSize + WalFrameHeader.Size;

    /// <summary>
    /// Parses a header without judging it. Use <see cref="Validate"/> (or <see cref="TryParseValid"/>)
    /// to know whether SQLite would accept it.
    /// </summary>
    public static WalHeader Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size)
        {
            throw new ArgumentException($"A WAL header needs {Size} bytes, got {bytes.Length}.", nameof(bytes));
        }

        uint pageSizeField = BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(8, 4));
        int pageSize = pageSizeField == 1 ? 65536 : (int)pageSizeField;
        return new WalHeader(
            BinaryPrimitives.ReadUInt32BigEndian(bytes[..4]),
            BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(4, 4)),
            pageSize,
            BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(12, 4)),
            BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(16, 4)),
            BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(20, 4)),
            new WalChecksum(
                BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(24, 4)),
                BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(28, 4))));
    }

    /// <summary>Parses and validates; returns null when the bytes are not a valid WAL header.</summary>
    public static WalHeader? TryParseValid(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size)
        {
            return null;
        }

        var header = Parse(bytes);
        return header.Validate(bytes[..Size]) is null ? header : null;
    }

    /// <summary>Returns null when valid, otherwise a sentence saying what is wrong.</summary>
    public string? Validate(ReadOnlySpan<byte> rawHeader)
    {
        if (Magic != MagicLittleEndian && Magic != MagicBigEndian)
        {
            return $"bad WAL magic 0x{Magic:x8}";
        }

        if (FormatVersion != SupportedFormatVersion)
        {
            return $"unsupported WAL format version {FormatVersion}";
        }

        if (PageSize < 512 || PageSize > 65536 || (PageSize & (PageSize - 1)) != 0)
        {
            return $"invalid page size {PageSize}";
        }

        var computed = default(WalChecksum).Continue(rawHeader[..24], BigEndianChecksum);
        if (computed != Checksum)
        {
            return $"WAL header checksum mismatch (stored {Checksum.S0:x8}{Checksum.S1:x8}, computed {computed.S0:x8}{computed.S1:x8})";
        }

        return null;
    }

    /// <summary>True when both headers describe the same WAL incarnation (all 32 bytes equal).</summary>
    public bool SameIncarnation(WalHeader other) => this == other;

    /// <summary>Byte offset of the frame with the given 0-based number.</summary>
    public long FrameOffset(long frameNumber) => Size + frameNumber * FrameSize;

    /// <summary>Rounds a WAL stream length down to a frame boundary (lengths under 32 count as 0).</summary>
    public long AlignDown(long length) => length < Size ? 0 : Size + (length - Size) / FrameSize * FrameSize;

    /// <summary>
    /// Size of a copy buffer for <paramref name="available"/> bytes of frames: whole frames, at
    /// least one, at most <paramref name="maxBytes"/>. Copies run on every look at the WAL and on
    /// every upload, so the buffer (pooled by callers) is sized to the work, not to the maximum.
    /// </summary>
    public int FrameBatchBytes(long available, int maxBytes = 256 << 10) =>
        (int)Math.Clamp(available / FrameSize, 1, Math.Max(1, maxBytes / FrameSize)) * FrameSize;

    public override string ToString() => $"salt {Salt1:x8}-{Salt2:x8} seq {CheckpointSequence} page {PageSize}";
}
