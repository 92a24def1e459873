using System.Buffers.Binary;

namespace SqliteReplica.Engine.Wal;

/// <summary>A running SQLite WAL checksum: the pair (s0, s1) carried from frame to frame.</summary>
public readonly record struct WalChecksum(uint S0, uint S1)
{
    /// <summary>
    /// Continues the checksum over <paramref name="data"/> (a multiple of 8 bytes), reading the
    /// 32-bit words in the byte order the WAL magic selected.
    /// </summary>
    public WalChecksum Continue(ReadOnlySpan<byte> data, bool bigEndianWords)
    {
        if ((data.Length & 7) != 0)
        {
            throw new ArgumentException("WAL checksum input must be a multiple of 8 bytes.", nameof(data));
        }

        uint s0 = S0, s1 = S1;
        if (bigEndianWords)
        {
            for (int i = 0; i < data.Length; i += 8)
            {
                s0 += BinaryPrimitives.ReadUInt32BigEndian(data.Slice(i, 4)) + s1;
                s1 += BinaryPrimitives.ReadUInt32BigEndian(data.Slice(i + 4, 4)) + s0;
            }
        }
        else
        {
            for (int i = 0; i < data.Length; i += 8)
            {
                s0 += BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i, 4)) + s1;
                s1 += BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i + 4, 4)) + s0;
            }
        }

        return new WalChecksum(s0, s1);
    }
}
