using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Replication;

/// <summary>
/// Copies a byte range of a shadow WAL file into a stream, re-verifying every frame's salts
/// and checksum chain on the way, so a damaged shadow file is never uploaded as if it were good.
/// </summary>
internal static class SegmentReader
{
    public static async Task<long> CopyVerifiedAsync(string shadowPath, long offset, long end, Stream destination, CancellationToken ct)
    {
        try
        {
            return await CopyCheckedAsync(shadowPath, offset, end, destination, ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            // A shadow file cut shorter than the positions recorded for it is damage like any
            // other: it must start a new generation, not fail the upload over and over.
            throw Corrupt(shadowPath, $"it is shorter than the range {offset}..{end} recorded for it (truncated)");
        }
    }

    private static async Task<long> CopyCheckedAsync(string shadowPath, long offset, long end, Stream destination, CancellationToken ct)
    {
        await using var fs = new FileStream(shadowPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var headerBytes = new byte[WalHeader.Size];
        await fs.ReadExactlyAsync(headerBytes, ct).ConfigureAwait(false);
        var header = WalHeader.TryParseValid(headerBytes)
            ?? throw Corrupt(shadowPath, "its WAL header is not valid");

        WalChainVerifier verifier;
        if (offset <= WalHeader.Size)
        {
            verifier = new WalChainVerifier(header);
        }
        else
        {
            if ((offset - WalHeader.Size) % header.FrameSize != 0)
            {
                throw Corrupt(shadowPath, $"offset {offset} is not on a frame boundary");
            }

            // The checksum stored in the previous frame's header is the running checksum there.
            var prev = new byte[WalFrameHeader.Size];
            fs.Position = offset - header.FrameSize;
            await fs.ReadExactlyAsync(prev, ct).ConfigureAwait(false);
            verifier = new WalChainVerifier(header, WalFrameHeader.Parse(prev).Checksum, offset, 0);
        }

        if (offset == 0)
        {
            await destination.WriteAsync(headerBytes, ct).ConfigureAwait(false);
        }

        long pos = Math.Max(offset, WalHeader.Size);
        fs.Position = pos;
        int capacity = header.FrameBatchBytes(end - pos);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(capacity);
        try
        {
            while (pos < end)
            {
                int want = (int)Math.Min(capacity, end - pos);
                await fs.ReadExactlyAsync(buffer.AsMemory(0, want), ct).ConfigureAwait(false);
                for (int i = 0; i < want; i += header.FrameSize)
                {
                    var why = verifier.Accept(buffer.AsSpan(i, header.FrameSize));
                    if (why is not null)
                    {
                        throw Corrupt(shadowPath, why);
                    }
                }

                await destination.WriteAsync(buffer.AsMemory(0, want), ct).ConfigureAwait(false);
                pos += want;
                Diagnostics.CrashPoints.Hit(Diagnostics.CrashPoints.SegmentUpload);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        if (verifier.LastCommitOffset != end)
        {
            throw Corrupt(shadowPath, $"the range ending at {end} does not end on a commit frame");
        }

        return end - offset;
    }

    private static ReplicaException Corrupt(string path, string why) =>
        new(ReplicaErrorCode.SegmentCorrupt, $"Shadow WAL '{path}' failed verification: {why}. A new generation will be started.", path);
}
