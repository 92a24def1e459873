using System.Buffers.Binary;
using Microsoft.Data.Sqlite;

namespace SqliteReplica.Engine.Wal;

/// <summary>
/// The wal-index header at the start of a database's <c>-shm</c> file: SQLite's published commit
/// point. A writer appends a transaction's frames to the WAL file first and publishes the new
/// <see cref="MaxFrame"/> here afterwards; only then is the transaction committed for every
/// reader. A writer that dies between the two leaves a commit frame in the WAL file that no
/// reader will ever see and that the next writer overwrites, so frames past
/// <see cref="MaxFrame"/> must never be copied as committed.
/// </summary>
/// <remarks>
/// Layout (SQLite's WalIndexHdr, native byte order, stored twice: at 0 and at 48): iVersion u32,
/// unused u32, iChange u32, isInit u8, bigEndCksum u8, szPage u16, mxFrame u32, nPage u32,
/// aFrameCksum u32[2], aSalt u32[2] (the WAL header's salt bytes as they are), aCksum u32[2]
/// (checksum of the first 40 bytes). Writers update the second copy first; a reader that finds
/// both copies equal and the checksum right has a consistent header.
/// </remarks>
public sealed record WalIndexHeader(uint MaxFrame, uint Salt1, uint Salt2, uint Change)
{
    /// <summary>Bytes of one copy of the header.</summary>
    public const int CopySize = 48;

    private const int ChecksumOffset = 40;

    /// <summary>True when this header describes the WAL incarnation that <paramref name="header"/> starts.</summary>
    public bool Describes(WalHeader header) => Salt1 == header.Salt1 && Salt2 == header.Salt2;

    /// <summary>Stream offset just past the last published frame of the WAL described by this header.</summary>
    public long PublishedEnd(WalHeader header) => WalHeader.Size + MaxFrame * (long)header.FrameSize;

    /// <summary>
    /// Parses the first 96 bytes of a <c>-shm</c> file. Returns null when the two copies differ,
    /// the header is not initialised or its checksum is wrong (a writer is mid-update).
    /// </summary>
    public static WalIndexHeader? TryParse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 2 * CopySize)
        {
            return null;
        }

        var first = bytes[..CopySize];
        if (!first.SequenceEqual(bytes.Slice(CopySize, CopySize)) || first[12] == 0)
        {
            return null;
        }

        bool big = !BitConverter.IsLittleEndian;
        var sum = new WalChecksum(0, 0).Continue(first[..ChecksumOffset], big);
        if (sum.S0 != ReadNative(first, ChecksumOffset) || sum.S1 != ReadNative(first, ChecksumOffset + 4))
        {
            return null;
        }

        return new WalIndexHeader(
            ReadNative(first, 16),
            BinaryPrimitives.ReadUInt32BigEndian(first.Slice(32, 4)),
            BinaryPrimitives.ReadUInt32BigEndian(first.Slice(36, 4)),
            ReadNative(first, 8));
    }

    /// <summary>
    /// Reads a consistent header through <paramref name="connection"/>'s own mapping of the
    /// wal-index, retrying a few times while a writer is mid-update. Returns null when the
    /// connection has no wal-index mapped or no consistent header could be read. The <c>-shm</c>
    /// file is never opened: closing a descriptor of it would drop SQLite's locks on it for the
    /// whole process (POSIX record locks belong to the process, not to the descriptor).
    /// </summary>
    public static WalIndexHeader? Read(SqliteConnection connection, int attempts = 20)
    {
        Span<byte> buf = stackalloc byte[2 * CopySize];
        for (int i = 0; i < attempts; i++)
        {
            if (!Native.SqliteNative.TryReadWalIndex(connection, buf))
            {
                return null;
            }

            if (TryParse(buf) is { } header)
            {
                return header;
            }

            if (i > 2)
            {
                Thread.Sleep(1);
            }
            else
            {
                Thread.Yield();
            }
        }

        return null;
    }

    private static uint ReadNative(ReadOnlySpan<byte> b, int offset) =>
        BitConverter.IsLittleEndian
            ? BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(offset, 4))
            : BinaryPrimitives.ReadUInt32BigEndian(b.Slice(offset, 4));
}
