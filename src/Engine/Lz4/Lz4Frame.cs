using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Encoders;
using K4os.Compression.LZ4.Streams;

namespace SqliteReplica.Engine.Lz4;

/// <summary>
/// The one LZ4 framing every replica file uses: a single standard frame with independent 64 KiB
/// blocks, a content checksum, no block checksum and no content size (header 04 22 4D 18 64 40
/// A7). Litestream v0.3 writes the same frame with 4 MiB blocks (04 22 4D 18 64 70 B9); its reader
/// (pierrec/lz4) takes any standard block size but rejects block checksums. LZ4 matches reach
/// back 64 KiB at most, so bigger independent blocks barely compress better, while every encoder
/// holds two buffers of the block size: 64 KiB blocks come from the shared array pool, so memory
/// stays flat in the number of databases uploading at once (4 MiB blocks cost 8 MiB of fresh
/// arrays per upload).
/// </summary>
public static class Lz4Frame
{
    private static readonly LZ4EncoderSettings EncoderSettings = new()
    {
        ChainBlocks = false,
        BlockSize = 64 * 1024,
        ContentChecksum = true,
        BlockChecksum = false,
        CompressionLevel = LZ4Level.L00_FAST,
    };

    /// <summary>Wraps <paramref name="inner"/> so that bytes written are LZ4-framed into it.</summary>
    public static Stream Encode(Stream inner, bool leaveOpen = false)
    {
        var encoder = LZ4Stream.Encode(inner, EncoderSettings, leaveOpen);
        // The encoder writes its frame header on the first write; an empty write makes even an
        // empty payload a complete frame (header, end mark, checksum) instead of zero bytes.
        encoder.Write([]);
        return encoder;
    }

    /// <summary>Wraps <paramref name="inner"/> so that reading yields the decoded payload of its one frame.</summary>
    /// <remarks>
    /// The decoder verifies the content checksum when the frame carries one; a truncated frame
    /// surfaces as an exception or a short read, which callers treat as corruption. A second
    /// frame after the first (which the decoder would otherwise read on as the same stream, and
    /// Litestream's reader would silently drop) throws <see cref="SecondFrameException"/>.
    /// </remarks>
    public static Stream Decode(Stream inner, bool leaveOpen = false)
    {
        int frames = 0;
        return new LZ4DecoderStream(inner, descriptor =>
        {
            if (++frames > 1)
            {
                throw new SecondFrameException();
            }

            return LZ4Decoder.Create(descriptor.Chaining, descriptor.BlockSize, 0);
        }, leaveOpen, interactive: false);
    }

    /// <summary>The object holds more than one LZ4 frame.</summary>
    public sealed class SecondFrameException() : IOException("a second LZ4 frame follows the first");
}
