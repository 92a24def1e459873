using System.Buffers.Binary;

namespace SqliteReplica.Engine.Wal;

/// <summary>The 24-byte header in front of each page in a WAL.</summary>
public readonly record struct WalFrameHeader(uint PageNumber, uint CommitSize, uint Salt1, uint Salt2, WalChecksum Checksum)
{
    public const int Size = 24;

    /// <summary>A commit frame ends a transaction: it records the database size in pages after it.</summary>
    public bool IsCommit => CommitSize != 0;

    public static WalFrameHeader Parse(ReadOnlySpan<byte> bytes) => new(
        BinaryPrimitives.ReadUInt32BigEndian(bytes[..4]),
        BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(4, 4)),
        BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(8, 4)),
        BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(12, 4)),
        new WalChecksum(
            BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(16, 4)),
            BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(20, 4))));
}
