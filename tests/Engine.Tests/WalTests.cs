using System.Buffers.Binary;
using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// WalHeader, WalChecksum and WalChainVerifier against WAL files written by the real SQLite,
/// plus hand-built headers for the big-endian checksum variant.
/// </summary>
public class WalTests
{
    /// <summary>
    /// A WAL-mode database kept open on one connection (so SQLite never checkpoints the -wal away),
    /// with the WAL length recorded after every commit.
    /// </summary>
    private sealed class LiveWal : IDisposable
    {
        public LiveWal(int pageSize = 1024)
        {
            Dir = Path.Combine(Path.GetTempPath(), "sr-wal-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(Dir);
            DbPath = Path.Combine(Dir, "w.db");
            Conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());
            Conn.Open();
            TestDb.Exec(Conn, $"PRAGMA page_size = {pageSize}");
            TestDb.Exec(Conn, "PRAGMA journal_mode = wal");
            TestDb.Exec(Conn, "PRAGMA wal_autocheckpoint = 0");
            Commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
        }

        public string Dir { get; }

        public string DbPath { get; }

        public string WalPath => DbPath + "-wal";

        public SqliteConnection Conn { get; }

        /// <summary>WAL file length right after each commit, in commit order.</summary>
        public List<long> LengthsAfterCommit { get; } = new();

        /// <summary>Runs statements in one transaction and records the WAL length after it.</summary>
        public void Commit(params string[] statements)
        {
            using (var tx = Conn.BeginTransaction())
            {
                foreach (var sql in statements)
                {
                    using var cmd = Conn.CreateCommand();
                    cmd.Transaction = tx;
                    cmd.CommandText = sql;
                    cmd.ExecuteNonQuery();
                }

                tx.Commit();
            }

            LengthsAfterCommit.Add(new FileInfo(WalPath).Length);
        }

        /// <summary>Writes the standard history: five one-row transactions and one many-page transaction.</summary>
        public void WriteHistory()
        {
            for (int i = 0; i < 5; i++)
            {
                Commit($"INSERT INTO t (id, v, b) VALUES ({i}, 'row {i}', randomblob(50))");
            }

            var big = Enumerable.Range(100, 20).Select(i => $"INSERT INTO t (id, v, b) VALUES ({i}, 'big {i}', randomblob(700))").ToArray();
            Commit(big);
        }

        public byte[] ReadWal()
        {
            using var fs = new FileStream(WalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var bytes = new byte[fs.Length];
            fs.ReadExactly(bytes);
            return bytes;
        }

        public void Dispose()
        {
            Conn.Dispose();
            try
            {
                Directory.Delete(Dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The SQLite WAL checksum, written out independently of the engine.</summary>
    private static (uint S0, uint S1) HandChecksum(ReadOnlySpan<byte> data, bool bigEndian, uint s0 = 0, uint s1 = 0)
    {
        for (int i = 0; i + 8 <= data.Length; i += 8)
        {
            uint a, b;
            if (bigEndian)
            {
                a = (uint)(data[i] << 24 | data[i + 1] << 16 | data[i + 2] << 8 | data[i + 3]);
                b = (uint)(data[i + 4] << 24 | data[i + 5] << 16 | data[i + 6] << 8 | data[i + 7]);
            }
            else
            {
                a = (uint)(data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24);
                b = (uint)(data[i + 4] | data[i + 5] << 8 | data[i + 6] << 16 | data[i + 7] << 24);
            }

            unchecked
            {
                s0 += a + s1;
                s1 += b + s0;
            }
        }

        return (s0, s1);
    }

    private static byte[] BuildHeader(uint magic, uint version, uint pageSizeField, uint seq, uint salt1, uint salt2, bool bigEndianChecksum)
    {
        var h = new byte[WalHeader.Size];
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(0), magic);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4), version);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(8), pageSizeField);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(12), seq);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(16), salt1);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(20), salt2);
        var (c0, c1) = HandChecksum(h.AsSpan(0, 24), bigEndianChecksum);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(24), c0);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(28), c1);
        return h;
    }

    private static int FrameCount(byte[] wal, WalHeader header) => (wal.Length - WalHeader.Size) / header.FrameSize;

    private static ReadOnlySpan<byte> Frame(byte[] wal, WalHeader header, int k) =>
        wal.AsSpan(WalHeader.Size + k * header.FrameSize, header.FrameSize);

    [Fact]
    public void Real_wal_header_validates_and_reports_the_database_page_size()
    {
        using var live = new LiveWal(pageSize: 1024);
        live.WriteHistory();
        var wal = live.ReadWal();

        var header = WalHeader.Parse(wal);
        Assert.Null(header.Validate(wal.AsSpan(0, WalHeader.Size)));
        Assert.NotNull(WalHeader.TryParseValid(wal));
        Assert.Equal(1024, header.PageSize);
        Assert.Equal(1024 + 24, header.FrameSize);
        Assert.Equal(WalHeader.SupportedFormatVersion, header.FormatVersion);
        Assert.True(header.Magic is WalHeader.MagicLittleEndian or WalHeader.MagicBigEndian);
        Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(wal.AsSpan(16)), header.Salt1);
        Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(wal.AsSpan(20)), header.Salt2);

        // The engine's checksum of the header agrees with an independent implementation.
        var hand = HandChecksum(wal.AsSpan(0, 24), header.BigEndianChecksum);
        Assert.Equal(new WalChecksum(hand.S0, hand.S1), header.Checksum);
        Assert.Equal(header.Checksum, default(WalChecksum).Continue(wal.AsSpan(0, 24), header.BigEndianChecksum));
    }

    [Fact]
    public void Real_wal_header_fails_validation_when_any_checksummed_byte_changes()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        for (int i = 0; i < WalHeader.Size; i++)
        {
            var copy = wal.AsSpan(0, WalHeader.Size).ToArray();
            copy[i] ^= 0x01;
            Assert.Null(WalHeader.TryParseValid(copy));
        }
    }

    [Fact]
    public void Every_frame_of_a_real_wal_continues_the_checksum_chain()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);
        int frames = FrameCount(wal, header);
        Assert.Equal(WalHeader.Size + (long)frames * header.FrameSize, wal.Length);
        Assert.True(frames > 10, $"expected a multi-frame WAL, got {frames} frames");

        var verifier = new WalChainVerifier(header);
        for (int k = 0; k < frames; k++)
        {
            Assert.Null(verifier.Accept(Frame(wal, header, k)));
        }

        Assert.Equal(frames, verifier.FramesAccepted);
        Assert.Equal(wal.Length, verifier.Offset);
        Assert.Equal(wal.Length, verifier.LastCommitOffset);

        // The running checksum after the last frame is the one stored in that frame's header.
        var last = WalFrameHeader.Parse(Frame(wal, header, frames - 1));
        Assert.Equal(last.Checksum, verifier.Checksum);

        // ... and it equals the independent computation over the whole chain.
        var hand = HandChecksum(wal.AsSpan(0, 24), header.BigEndianChecksum);
        for (int k = 0; k < frames; k++)
        {
            var f = Frame(wal, header, k);
            hand = HandChecksum(f[..8], header.BigEndianChecksum, hand.S0, hand.S1);
            hand = HandChecksum(f[WalFrameHeader.Size..], header.BigEndianChecksum, hand.S0, hand.S1);
        }

        Assert.Equal(new WalChecksum(hand.S0, hand.S1), verifier.Checksum);
    }

    [Fact]
    public void Commit_offsets_are_where_sqlite_left_the_wal_after_each_transaction()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);

        var commitOffsets = new List<long>();
        var dbSizes = new List<uint>();
        var verifier = new WalChainVerifier(header);
        for (int k = 0; k < FrameCount(wal, header); k++)
        {
            long before = verifier.LastCommitOffset;
            Assert.Null(verifier.Accept(Frame(wal, header, k)));
            var fh = WalFrameHeader.Parse(Frame(wal, header, k));
            if (verifier.LastCommitOffset != before)
            {
                Assert.True(fh.IsCommit);
                commitOffsets.Add(verifier.LastCommitOffset);
                dbSizes.Add(verifier.LastCommitDbSize);
            }
            else
            {
                Assert.False(fh.IsCommit);
                Assert.Equal(0u, fh.CommitSize);
            }
        }

        Assert.Equal(live.LengthsAfterCommit, commitOffsets);
        Assert.Equal(7, commitOffsets.Count); // CREATE TABLE, five one-row inserts, one big transaction

        // The big transaction spans several frames of which only the last is a commit frame.
        long bigStart = live.LengthsAfterCommit[^2];
        Assert.True((wal.Length - bigStart) / header.FrameSize > 3);

        // The last commit frame records the database size SQLite reports.
        Assert.Equal(Convert.ToInt64(TestDb.Scalar(live.Conn, "PRAGMA page_count")), (long)dbSizes[^1]);
    }

    [Fact]
    public void Rewinding_forgets_frames_after_the_last_commit()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);
        long bigStart = live.LengthsAfterCommit[^2];
        int firstBigFrame = (int)((bigStart - WalHeader.Size) / header.FrameSize);

        var verifier = new WalChainVerifier(header);
        for (int k = 0; k < firstBigFrame + 2; k++)
        {
            Assert.Null(verifier.Accept(Frame(wal, header, k)));
        }

        Assert.Equal(bigStart, verifier.LastCommitOffset);
        Assert.Equal(bigStart + 2L * header.FrameSize, verifier.Offset);

        verifier.RewindToLastCommit();
        Assert.Equal(bigStart, verifier.Offset);
        Assert.Equal(verifier.LastCommitChecksum, verifier.Checksum);

        // After the rewind the chain continues from the commit again.
        Assert.Null(verifier.Accept(Frame(wal, header, firstBigFrame)));
    }

    [Theory]
    [InlineData(WalFrameHeader.Size + 100)] // page data
    [InlineData(WalFrameHeader.Size)] // first page byte
    [InlineData(3)] // page number
    [InlineData(7)] // commit size field
    [InlineData(16)] // stored checksum
    public void Flipping_one_byte_in_a_frame_makes_accept_fail_at_that_frame(int byteInFrame)
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);
        int frames = FrameCount(wal, header);
        int bad = frames / 2;
        wal[WalHeader.Size + bad * header.FrameSize + byteInFrame] ^= 0x40;

        var verifier = new WalChainVerifier(header);
        for (int k = 0; k < bad; k++)
        {
            Assert.Null(verifier.Accept(Frame(wal, header, k)));
        }

        var checksumBefore = verifier.Checksum;
        var why = verifier.Accept(Frame(wal, header, bad));
        Assert.NotNull(why);
        Assert.Contains("checksum", why);
        Assert.Equal(bad, verifier.FramesAccepted);
        Assert.Equal(header.FrameOffset(bad), verifier.Offset);
        Assert.Equal(checksumBefore, verifier.Checksum);
    }

    [Fact]
    public void A_frame_with_other_salts_is_rejected_even_though_its_checksum_is_right()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);

        // Salts are not covered by the checksum: only the salt check can catch this.
        foreach (int saltByte in new[] { 11, 15 })
        {
            var frame = Frame(wal, header, 0).ToArray();
            frame[saltByte] ^= 0x01;
            var verifier = new WalChainVerifier(header);
            var why = verifier.Accept(frame);
            Assert.NotNull(why);
            Assert.Contains("salt", why);
            Assert.Equal(0, verifier.FramesAccepted);
            Assert.Equal(WalHeader.Size, verifier.Offset);
        }
    }

    [Fact]
    public void After_sqlite_restarts_the_wal_stale_frames_of_the_old_incarnation_are_rejected_by_salt()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var oldWal = live.ReadWal();
        var oldHeader = WalHeader.Parse(oldWal);
        int oldFrames = FrameCount(oldWal, oldHeader);

        var ck = TestDb.Scalar(live.Conn, "PRAGMA wal_checkpoint(RESTART)");
        Assert.Equal(0L, Convert.ToInt64(ck)); // not busy
        live.Commit("INSERT INTO t (id, v) VALUES (1000, 'after restart')");

        var wal = live.ReadWal();
        Assert.Equal(oldWal.Length, wal.Length); // SQLite does not truncate on restart
        var header = WalHeader.Parse(wal);
        Assert.Null(header.Validate(wal.AsSpan(0, WalHeader.Size)));
        Assert.False(header.SameIncarnation(oldHeader));
        Assert.Equal(unchecked(oldHeader.Salt1 + 1), header.Salt1);
        Assert.Equal(oldHeader.CheckpointSequence + 1, header.CheckpointSequence);

        var verifier = new WalChainVerifier(header);
        int k = 0;
        string? why = null;
        for (; k < oldFrames; k++)
        {
            why = verifier.Accept(Frame(wal, header, k));
            if (why is not null)
            {
                break;
            }
        }

        Assert.NotNull(why);
        Assert.Contains("salt", why);
        Assert.True(k >= 1 && k < oldFrames, $"new incarnation should hold a few frames, stopped at {k} of {oldFrames}");
        Assert.Equal(header.FrameOffset(k), verifier.LastCommitOffset); // every new frame is committed
        Assert.Equal(oldWal.Length, live.LengthsAfterCommit[^1]); // the file kept its old length

        // The old header does not accept the new incarnation's first frame either.
        var old = new WalChainVerifier(oldHeader);
        Assert.Contains("salt", old.Accept(Frame(wal, header, 0)));
    }

    [Fact]
    public void A_verifier_resumed_mid_chain_accepts_the_rest_of_a_real_wal()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);
        int frames = FrameCount(wal, header);
        int from = 3;
        var prev = WalFrameHeader.Parse(Frame(wal, header, from - 1));

        var verifier = new WalChainVerifier(header, prev.Checksum, header.FrameOffset(from), 0);
        for (int k = from; k < frames; k++)
        {
            Assert.Null(verifier.Accept(Frame(wal, header, k)));
        }

        Assert.Equal(wal.Length, verifier.LastCommitOffset);

        // Resumed with the wrong running checksum, the first frame fails.
        var wrong = new WalChainVerifier(header, new WalChecksum(prev.Checksum.S0 + 1, prev.Checksum.S1), header.FrameOffset(from), 0);
        Assert.NotNull(wrong.Accept(Frame(wal, header, from)));
    }

    [Fact]
    public void A_frame_of_the_wrong_length_is_rejected()
    {
        using var live = new LiveWal();
        live.WriteHistory();
        var wal = live.ReadWal();
        var header = WalHeader.Parse(wal);
        var verifier = new WalChainVerifier(header);
        Assert.NotNull(verifier.Accept(wal.AsSpan(WalHeader.Size, header.FrameSize - 1)));
        Assert.NotNull(verifier.Accept(wal.AsSpan(WalHeader.Size, header.FrameSize + 8)));
        Assert.Equal(0, verifier.FramesAccepted);
    }

    [Fact]
    public void AlignDown_rounds_to_frame_boundaries_and_counts_lengths_under_a_header_as_zero()
    {
        var header = WalHeader.Parse(BuildHeader(WalHeader.MagicLittleEndian, WalHeader.SupportedFormatVersion, 4096, 0, 1, 2, false));
        const int f = 4096 + 24;
        Assert.Equal(0, header.AlignDown(0));
        Assert.Equal(0, header.AlignDown(31));
        Assert.Equal(32, header.AlignDown(32));
        Assert.Equal(32, header.AlignDown(32 + f - 1));
        Assert.Equal(32 + f, header.AlignDown(32 + f));
        Assert.Equal(32 + 2 * f, header.AlignDown(32 + 3 * f - 1));
        Assert.Equal(32 + 1000L * f, header.AlignDown(32 + 1000L * f + 17));
        Assert.Equal(32 + 5L * f, header.FrameOffset(5));
    }

    [Fact]
    public void Page_size_field_of_one_means_64_KiB()
    {
        var raw = BuildHeader(WalHeader.MagicLittleEndian, WalHeader.SupportedFormatVersion, 1, 0, 1, 2, false);
        var header = WalHeader.Parse(raw);
        Assert.Equal(65536, header.PageSize);
        Assert.Null(header.Validate(raw));
    }

    [Fact]
    public void Big_endian_magic_header_with_a_big_endian_checksum_is_accepted()
    {
        var raw = BuildHeader(WalHeader.MagicBigEndian, WalHeader.SupportedFormatVersion, 4096, 7, 0x11223344, 0x55667788, bigEndianChecksum: true);
        var header = WalHeader.Parse(raw);
        Assert.True(header.BigEndianChecksum);
        Assert.Equal(7u, header.CheckpointSequence);
        Assert.Equal(0x11223344u, header.Salt1);
        Assert.Equal(0x55667788u, header.Salt2);
        Assert.Null(header.Validate(raw));
        Assert.NotNull(WalHeader.TryParseValid(raw));
    }

    [Fact]
    public void Big_endian_magic_header_with_a_wrong_checksum_is_rejected()
    {
        var raw = BuildHeader(WalHeader.MagicBigEndian, WalHeader.SupportedFormatVersion, 4096, 7, 0x11223344, 0x55667788, bigEndianChecksum: true);
        raw[31] ^= 0x01;
        Assert.NotNull(WalHeader.Parse(raw).Validate(raw));

        // A checksum computed little-endian does not pass under the big-endian magic.
        var le = BuildHeader(WalHeader.MagicBigEndian, WalHeader.SupportedFormatVersion, 4096, 7, 0x11223344, 0x55667788, bigEndianChecksum: false);
        var be = BuildHeader(WalHeader.MagicBigEndian, WalHeader.SupportedFormatVersion, 4096, 7, 0x11223344, 0x55667788, bigEndianChecksum: true);
        Assert.False(le.AsSpan(24).SequenceEqual(be.AsSpan(24)));
        Assert.NotNull(WalHeader.Parse(le).Validate(le));
        Assert.Null(WalHeader.TryParseValid(le));
    }

    [Fact]
    public void Little_endian_magic_header_with_a_big_endian_checksum_is_rejected()
    {
        var raw = BuildHeader(WalHeader.MagicLittleEndian, WalHeader.SupportedFormatVersion, 4096, 0, 5, 6, bigEndianChecksum: true);
        Assert.NotNull(WalHeader.Parse(raw).Validate(raw));
    }

    [Fact]
    public void Big_endian_frames_built_by_hand_verify_and_a_flipped_byte_breaks_them()
    {
        const int pageSize = 512;
        var raw = BuildHeader(WalHeader.MagicBigEndian, WalHeader.SupportedFormatVersion, pageSize, 0, 0xAABBCCDD, 0x01020304, bigEndianChecksum: true);
        var header = WalHeader.Parse(raw);
        var rnd = new Random(42);
        var running = HandChecksum(raw.AsSpan(0, 24), bigEndian: true);
        var frames = new List<byte[]>();
        for (uint pgno = 1; pgno <= 3; pgno++)
        {
            var frame = new byte[pageSize + WalFrameHeader.Size];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(0), pgno);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), pgno == 3 ? 3u : 0u);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), header.Salt1);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(12), header.Salt2);
            rnd.NextBytes(frame.AsSpan(WalFrameHeader.Size));
            running = HandChecksum(frame.AsSpan(0, 8), true, running.S0, running.S1);
            running = HandChecksum(frame.AsSpan(WalFrameHeader.Size), true, running.S0, running.S1);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(16), running.S0);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(20), running.S1);
            frames.Add(frame);
        }

        var ok = new WalChainVerifier(header);
        foreach (var frame in frames)
        {
            Assert.Null(ok.Accept(frame));
        }

        Assert.Equal(3u, ok.LastCommitDbSize);
        Assert.Equal(WalHeader.Size + 3L * header.FrameSize, ok.LastCommitOffset);

        frames[1][WalFrameHeader.Size + 200] ^= 0x80;
        var bad = new WalChainVerifier(header);
        Assert.Null(bad.Accept(frames[0]));
        Assert.NotNull(bad.Accept(frames[1]));
        Assert.Equal(WalHeader.Size, bad.LastCommitOffset);
    }

    [Theory]
    [InlineData(0x377f0681u, 3007000u, 4096u)]
    [InlineData(WalHeader.MagicLittleEndian, 3007001u, 4096u)]
    [InlineData(WalHeader.MagicLittleEndian, 3007000u, 1000u)]
    [InlineData(WalHeader.MagicLittleEndian, 3007000u, 256u)]
    [InlineData(WalHeader.MagicLittleEndian, 3007000u, 131072u)]
    [InlineData(WalHeader.MagicLittleEndian, 3007000u, 0u)]
    public void Header_with_a_bad_magic_version_or_page_size_is_rejected_even_with_a_correct_checksum(uint magic, uint version, uint pageSize)
    {
        var raw = BuildHeader(magic, version, pageSize, 0, 1, 2, bigEndianChecksum: false);
        Assert.NotNull(WalHeader.Parse(raw).Validate(raw));
        Assert.Null(WalHeader.TryParseValid(raw));
    }

    [Fact]
    public void Short_input_is_not_a_valid_header()
    {
        Assert.Null(WalHeader.TryParseValid(new byte[31]));
        Assert.Throws<ArgumentException>(() => WalHeader.Parse(new byte[16]));
    }

    [Fact]
    public void Checksum_matches_hand_computed_values_and_refuses_input_not_a_multiple_of_8()
    {
        var data = new byte[] { 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0 };
        // LE words 1,2,3,4: s0=1, s1=2+1=3; s0=1+3+3=7, s1=3+4+7=14.
        Assert.Equal(new WalChecksum(7, 14), default(WalChecksum).Continue(data, bigEndianWords: false));
        // BE words 0x01000000, 0x02000000, ...
        var be = HandChecksum(data, bigEndian: true);
        Assert.Equal(new WalChecksum(be.S0, be.S1), default(WalChecksum).Continue(data, bigEndianWords: true));
        Assert.NotEqual(default(WalChecksum).Continue(data, true), default(WalChecksum).Continue(data, false));

        // Arithmetic wraps modulo 2^32.
        var max = new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
        var w = HandChecksum(max, false, 5, 6);
        Assert.Equal(new WalChecksum(w.S0, w.S1), new WalChecksum(5, 6).Continue(max, false));

        Assert.Throws<ArgumentException>(() => default(WalChecksum).Continue(new byte[12], false));
    }
}
