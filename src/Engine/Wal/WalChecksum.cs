using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SqliteReplica.Engine.Wal;

/// <summary>A running SQLite WAL checksum: the pair (s0, s1) carried from frame to frame.</summary>
public readonly record struct WalChecksum(uint S0, uint S1)
{
    /// <summary>
    /// Continues the checksum over <paramref name="data"/> (a multiple of 8 bytes), reading the
    /// 32-bit words in the byte order the WAL magic selected.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public WalChecksum Continue(ReadOnlySpan<byte> data, bool bigEndianWords)
    {
        if ((data.Length & 7) != 0)
        {
            throw new ArgumentException("WAL checksum input must be a multiple of 8 bytes.", nameof(data));
        }

        // Whole 32-bit words; restores run this over every byte of every WAL frame, so it is
        // compiled fully optimized at once (no tiering) and reads words in place.
        var words = MemoryMarshal.Cast<byte, uint>(data);
        uint s0 = S0, s1 = S1;
        bool swap = bigEndianWords == BitConverter.IsLittleEndian;
        if (swap)
        {
            for (int i = 0; i + 1 < words.Length; i += 2)
            {
                s0 += BinaryPrimitives.ReverseEndianness(words[i]) + s1;
                s1 += BinaryPrimitives.ReverseEndianness(words[i + 1]) + s0;
            }
        }
        else
        {
            for (int i = 0; i + 1 < words.Length; i += 2)
            {
                s0 += words[i] + s1;
                s1 += words[i + 1] + s0;
            }
        }

        return new WalChecksum(s0, s1);
    }
}
