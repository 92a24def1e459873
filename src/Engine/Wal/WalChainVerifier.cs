namespace SqliteReplica.Engine.Wal;

/// <summary>
/// Walks the frames of one WAL index in order and accepts a frame only if its salts equal the
/// index header's salts and its checksum continues the chain. It remembers where the last
/// commit frame ended, which is the only point up to which frames may be trusted.
/// </summary>
public sealed class WalChainVerifier
{
    public WalChainVerifier(WalHeader header)
        : this(header, header.Checksum, WalHeader.Size, 0)
    {
    }

    /// <summary>Continues a chain whose last accepted frame ended at <paramref name="offset"/>.</summary>
    public WalChainVerifier(WalHeader header, WalChecksum checksum, long offset, uint lastCommitDbSize)
    {
        Header = header;
        Checksum = checksum;
        Offset = offset;
        LastCommitOffset = offset;
        LastCommitChecksum = checksum;
        LastCommitDbSize = lastCommitDbSize;
    }

    public WalHeader Header { get; }

    /// <summary>Checksum after the last accepted frame.</summary>
    public WalChecksum Checksum { get; private set; }

    /// <summary>Stream offset just past the last accepted frame.</summary>
    public long Offset { get; private set; }

    /// <summary>Stream offset just past the last accepted commit frame.</summary>
    public long LastCommitOffset { get; private set; }

    /// <summary>Checksum after the last accepted commit frame.</summary>
    public WalChecksum LastCommitChecksum { get; private set; }

    /// <summary>Database size in pages recorded by the last accepted commit frame (0 if none yet).</summary>
    public uint LastCommitDbSize { get; private set; }

    /// <summary>Frames accepted so far.</summary>
    public long FramesAccepted { get; private set; }

    /// <summary>
    /// Checks one whole frame (24-byte header plus page). Returns null and advances when the frame
    /// continues the chain, otherwise returns why it does not and leaves the state unchanged.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public string? Accept(ReadOnlySpan<byte> frame)
    {
        if (frame.Length != Header.FrameSize)
        {
            return $"frame at offset {Offset} has {frame.Length} bytes, expected {Header.FrameSize}";
        }

        var fh = WalFrameHeader.Parse(frame);
        if (fh.Salt1 != Header.Salt1 || fh.Salt2 != Header.Salt2)
        {
            return $"salt mismatch at offset {Offset} (frame {fh.Salt1:x8}-{fh.Salt2:x8}, header {Header.Salt1:x8}-{Header.Salt2:x8})";
        }

        if (fh.PageNumber == 0)
        {
            return $"frame at offset {Offset} names page 0";
        }

        var next = Checksum.Continue(frame[..8], Header.BigEndianChecksum)
                           .Continue(frame[WalFrameHeader.Size..], Header.BigEndianChecksum);
        if (next != fh.Checksum)
        {
            return $"checksum chain broken at offset {Offset}";
        }

        Checksum = next;
        Offset += frame.Length;
        FramesAccepted++;
        if (fh.IsCommit)
        {
            LastCommitOffset = Offset;
            LastCommitChecksum = next;
            LastCommitDbSize = fh.CommitSize;
        }

        return null;
    }

    /// <summary>The whole state, to go back to with <see cref="Reset"/> when frames could not be kept.</summary>
    public readonly record struct Mark(WalChecksum Checksum, long Offset, long LastCommitOffset, WalChecksum LastCommitChecksum, uint LastCommitDbSize, long FramesAccepted);

    public Mark Save() => new(Checksum, Offset, LastCommitOffset, LastCommitChecksum, LastCommitDbSize, FramesAccepted);

    public void Reset(Mark mark)
    {
        Checksum = mark.Checksum;
        Offset = mark.Offset;
        LastCommitOffset = mark.LastCommitOffset;
        LastCommitChecksum = mark.LastCommitChecksum;
        LastCommitDbSize = mark.LastCommitDbSize;
        FramesAccepted = mark.FramesAccepted;
    }

    /// <summary>Forgets frames accepted after the last commit (an uncommitted tail).</summary>
    public void RewindToLastCommit()
    {
        Offset = LastCommitOffset;
        Checksum = LastCommitChecksum;
    }
}
