using System.Buffers.Binary;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using K4os.Hash.xxHash;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Lz4;

namespace SqliteReplica.Engine.Tests;

/// <summary>The one LZ4 framing of replica objects and the verifying decoder restore relies on.</summary>
public class Lz4Tests
{
    private const int FiveMiBPlus = 5 * 1024 * 1024 + 12345;

    /// <summary>Litestream's frame header: independent 4 MiB blocks, content checksum.</summary>
    private static readonly byte[] LitestreamHeader = { 0x04, 0x22, 0x4D, 0x18, 0x64, 0x70, 0xB9 };

    /// <summary>Ours: the same flags with 64 KiB blocks (the header checksum follows the block size byte).</summary>
    private static readonly byte[] OurHeader = { 0x04, 0x22, 0x4D, 0x18, 0x64, 0x40, 0xA7 };

    private static byte[] Random(int length, int seed = 1)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Text-like bytes that LZ4 shrinks a lot.</summary>
    private static byte[] Compressible(int length)
    {
        var b = new byte[length];
        var words = "INSERT INTO t VALUES (row, 'some text that repeats'); "u8.ToArray();
        for (int i = 0; i < length; i++)
        {
            b[i] = words[i % words.Length];
            if (i % 997 == 0)
            {
                b[i] = (byte)(i / 997);
            }
        }

        return b;
    }

    private static byte[] Payload(string kind, int length) => kind == "random" ? Random(length) : Compressible(length);

    private static byte[] Encode(byte[] payload, int writeChunk = 1 << 16)
    {
        var ms = new MemoryStream();
        using (var lz = Lz4Frame.Encode(ms, leaveOpen: true))
        {
            for (int i = 0; i < payload.Length; i += writeChunk)
            {
                lz.Write(payload, i, Math.Min(writeChunk, payload.Length - i));
            }
        }

        return ms.ToArray();
    }

    private static byte[] Decode(byte[] stored)
    {
        using var v = new VerifiedLz4Stream(new MemoryStream(stored), "generations/0000000000000000/wal/00000000_00000000.wal.lz4");
        var ms = new MemoryStream();
        v.CopyTo(ms);
        return ms.ToArray();
    }

    private static async Task<byte[]> DecodeAsync(byte[] stored)
    {
        await using var v = new VerifiedLz4Stream(new MemoryStream(stored), "object");
        var ms = new MemoryStream();
        await v.CopyToAsync(ms);
        return ms.ToArray();
    }

    private static ReplicaException AssertCorrupt(byte[] stored)
    {
        var e = Assert.Throws<ReplicaException>(() => Decode(stored));
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        return e;
    }

    private static async Task AssertCorruptAsync(byte[] stored)
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => DecodeAsync(stored));
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
    }

    /// <summary>The frame Litestream (pierrec/lz4) writes for an empty payload: header, end mark, xxh32("").</summary>
    private static readonly byte[] EmptyFrame = [.. LitestreamHeader, 0, 0, 0, 0, 0x05, 0x5D, 0xCC, 0x02];

    /// <summary>Ours for an empty payload: the same frame but for the block size byte.</summary>
    private static readonly byte[] OurEmptyFrame = [.. OurHeader, 0, 0, 0, 0, 0x05, 0x5D, 0xCC, 0x02];

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(FiveMiBPlus)]
    public void Encode_writes_litestreams_frame_header_with_64_KiB_blocks(int length)
    {
        var stored = Encode(Random(length));
        Assert.Equal(OurHeader, stored.AsSpan(0, 7).ToArray());
        Assert.Equal(LitestreamHeader[..5], stored.AsSpan(0, 5).ToArray());
    }

    [Fact]
    public void Encode_of_an_empty_payload_writes_a_complete_frame()
    {
        Assert.Equal(OurEmptyFrame, Encode([]));
    }

    [Fact]
    public void Empty_payload_round_trips_through_the_verified_decoder()
    {
        Assert.Empty(Decode(Encode([])));
    }

    [Fact]
    public void Decoder_accepts_litestreams_frame_of_an_empty_payload()
    {
        Assert.Equal(0u, XXH32.DigestOf(Array.Empty<byte>()) ^ 0x02CC5D05u);
        Assert.Empty(Decode(EmptyFrame));
    }

    [Theory]
    [InlineData("random")]
    [InlineData("compressible")]
    public void Encode_writes_independent_blocks_of_at_most_64_KiB_an_end_mark_and_the_content_checksum(string kind)
    {
        var payload = Payload(kind, FiveMiBPlus);
        var stored = Encode(payload);

        // Walk the blocks: 4-byte little-endian sizes, top bit = stored uncompressed.
        int pos = 7, blocks = 0;
        while (true)
        {
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(stored.AsSpan(pos));
            pos += 4;
            if (size == 0)
            {
                break;
            }

            bool uncompressed = (size & 0x80000000) != 0;
            int len = (int)(size & 0x7FFFFFFF);
            Assert.True(len <= 64 * 1024, $"block {blocks} is {len} bytes");
            if (kind == "random")
            {
                Assert.True(uncompressed, "incompressible data should be stored");
            }

            pos += len;
            blocks++;
        }

        Assert.Equal((FiveMiBPlus + 65535) / 65536, blocks);
        Assert.Equal(stored.Length - 4, pos);
        Assert.Equal(XXH32.DigestOf(payload), BinaryPrimitives.ReadUInt32LittleEndian(stored.AsSpan(pos)));
        if (kind == "compressible")
        {
            Assert.True(stored.Length < payload.Length / 4, $"compressible data stored in {stored.Length} bytes");
        }
    }

    [Theory]
    [InlineData("random", 1)]
    [InlineData("random", FiveMiBPlus)]
    [InlineData("compressible", 1)]
    [InlineData("compressible", 100_000)]
    [InlineData("compressible", FiveMiBPlus)]
    public async Task Payload_round_trips_through_the_verified_decoder(string kind, int length)
    {
        var payload = Payload(kind, length);
        var stored = Encode(payload, writeChunk: 100_003);
        Assert.Equal(payload, Decode(stored));
        Assert.Equal(payload, await DecodeAsync(stored));

        using var v = new VerifiedLz4Stream(new MemoryStream(stored), "object");
        v.CopyTo(Stream.Null);
        Assert.Equal(length, v.DecodedLength);
        Assert.Equal(stored.Length, v.RawLength);
    }

    [Fact]
    public void Decoder_accepts_a_frame_from_another_encoder_with_linked_64_KiB_blocks_and_no_checksum()
    {
        // K4os defaults (FLG 0x40, BD 0x40): Litestream's reader accepts them, so must we.
        var payload = Compressible(300_000);
        var ms = new MemoryStream();
        using (var lz = LZ4Stream.Encode(ms, new LZ4EncoderSettings(), leaveOpen: true))
        {
            lz.Write(payload);
        }

        var stored = ms.ToArray();
        Assert.Equal(0x40, stored[4] & 0x44); // linked blocks ... and no content checksum bit
        Assert.Equal(payload, Decode(stored));
    }

    [Theory]
    [InlineData("random", 1)]
    [InlineData("random", 4)] // magic only
    [InlineData("random", 6)] // inside the frame descriptor
    [InlineData("random", 7)] // descriptor only
    [InlineData("random", 9)] // inside the first block size
    [InlineData("random", 20)] // inside the first block
    [InlineData("random", -1000)] // inside the last block
    [InlineData("random", -8)] // end mark and checksum missing
    [InlineData("random", -6)] // inside the end mark
    [InlineData("random", -4)] // checksum missing
    [InlineData("random", -3)] // inside the checksum
    [InlineData("random", -1)] // last checksum byte missing
    [InlineData("compressible", 20)]
    [InlineData("compressible", -100)]
    [InlineData("compressible", -8)]
    [InlineData("compressible", -4)]
    [InlineData("compressible", -2)]
    [InlineData("compressible", -1)]
    public void Decoder_reports_a_truncated_object_as_corrupt(string kind, int cut)
    {
        var stored = Encode(Payload(kind, 200_000));
        int keep = cut > 0 ? cut : stored.Length + cut;
        AssertCorrupt(stored[..keep]);
    }

    [Theory]
    [InlineData(-4)]
    [InlineData(-1)]
    [InlineData(-100)]
    public async Task Async_decoder_reports_a_truncated_object_as_corrupt(int cut)
    {
        var stored = Encode(Compressible(200_000));
        await AssertCorruptAsync(stored[..(stored.Length + cut)]);
    }

    [Theory]
    [InlineData("random", 0.25)]
    [InlineData("random", 0.9)]
    [InlineData("compressible", 0.3)]
    [InlineData("compressible", 0.5)]
    [InlineData("compressible", 0.8)]
    public void Decoder_reports_a_flipped_byte_in_the_compressed_data_as_corrupt(string kind, double where)
    {
        var stored = Encode(Payload(kind, 200_000));
        int at = 11 + (int)((stored.Length - 11 - 8) * where);
        stored[at] ^= 0x10;
        AssertCorrupt(stored);
    }

    [Fact]
    public void Decoder_reports_a_flipped_content_checksum_as_corrupt()
    {
        var stored = Encode(Compressible(10_000));
        stored[^2] ^= 0x01;
        AssertCorrupt(stored);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100_000)]
    public void Decoder_reports_two_concatenated_frames_as_corrupt(int secondLength)
    {
        var first = Encode(Compressible(50_000));
        var second = secondLength == 0 ? EmptyFrame : Encode(Random(secondLength, seed: 7));
        var e = AssertCorrupt([.. first, .. second]);
        Assert.Equal("generations/0000000000000000/wal/00000000_00000000.wal.lz4", e.Target);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(64)]
    public void Decoder_reports_trailing_bytes_after_the_frame_as_corrupt(int extra)
    {
        var stored = Encode(Compressible(20_000));
        AssertCorrupt([.. stored, .. new byte[extra]]);
    }

    [Fact]
    public void Decoder_reports_a_frame_followed_by_a_copy_of_its_own_checksum_as_corrupt()
    {
        // Trailing bytes that happen to equal the content checksum must not pass as the checksum.
        var stored = Encode(Compressible(20_000));
        AssertCorrupt([.. stored, .. stored[^4..]]);
    }

    [Fact]
    public void Decoder_reports_an_empty_object_as_corrupt()
    {
        AssertCorrupt([]);
    }

    [Theory]
    [InlineData("text")]
    [InlineData("random")]
    [InlineData("zeros")]
    [InlineData("magic-then-garbage")]
    [InlineData("legacy-magic")]
    [InlineData("sqlite")]
    public void Decoder_reports_non_lz4_bytes_as_corrupt(string kind)
    {
        byte[] bytes = kind switch
        {
            "text" => "this is not an lz4 frame, just some text in a file"u8.ToArray(),
            "random" => Random(5000, seed: 3),
            "zeros" => new byte[4096],
            "magic-then-garbage" => [0x04, 0x22, 0x4D, 0x18, .. Random(100, seed: 4)],
            "legacy-magic" => [0x02, 0x21, 0x4C, 0x18, .. Random(100, seed: 5)],
            _ => [.. "SQLite format 3\0"u8, .. new byte[4080]],
        };
        AssertCorrupt(bytes);
    }

    [Fact]
    public async Task Async_decoder_reports_concatenated_frames_and_garbage_as_corrupt()
    {
        var one = Encode(Compressible(30_000));
        await AssertCorruptAsync([.. one, .. one]);
        await AssertCorruptAsync("garbage garbage garbage"u8.ToArray());
        await AssertCorruptAsync([]);
    }

    [Fact]
    public void Decoder_reports_a_block_checksum_frame_as_corrupt_or_decodes_it_exactly()
    {
        // Litestream's reader mis-handles block checksums; we must never return wrong bytes for them.
        var payload = Compressible(100_000);
        var ms = new MemoryStream();
        using (var lz = LZ4Stream.Encode(ms, new LZ4EncoderSettings { BlockChecksum = true, ContentChecksum = true, ChainBlocks = false, BlockSize = 4 * 1024 * 1024 }, leaveOpen: true))
        {
            lz.Write(payload);
        }

        try
        {
            Assert.Equal(payload, Decode(ms.ToArray()));
        }
        catch (ReplicaException e)
        {
            Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        }
    }
}
