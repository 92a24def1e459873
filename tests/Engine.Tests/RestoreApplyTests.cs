using System.Buffers.Binary;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Restore;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Restores of WAL histories built frame by frame, for cases the real SQLite does not write
/// on demand: the file must come out as applying the indexes one after the other (SQLite's
/// checkpoint of each, which cuts the file to that index's size) would leave it.
/// </summary>
public class RestoreApplyTests
{
    private const int PageSize = 512;
    private const string Generation = "0123456789abcdef";

    /// <summary>Writes one WAL index of the given frames (page, fill byte, commit size or 0) as one segment.</summary>
    private static void WriteIndex(FileReplicaClient client, long index, params (uint Page, byte Fill, uint Commit)[] frames)
    {
        var wal = new byte[WalHeader.Size + frames.Length * (WalFrameHeader.Size + PageSize)];
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(0), WalHeader.MagicLittleEndian);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(4), WalHeader.SupportedFormatVersion);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(8), PageSize);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(12), (uint)index);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(16), 0x1000u + (uint)index);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(20), 0xbeefu);
        var sum = default(WalChecksum).Continue(wal.AsSpan(0, 24), bigEndianWords: false);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(24), sum.S0);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(28), sum.S1);
        int pos = WalHeader.Size;
        foreach (var (page, fill, commit) in frames)
        {
            var frame = wal.AsSpan(pos, WalFrameHeader.Size + PageSize);
            BinaryPrimitives.WriteUInt32BigEndian(frame, page);
            BinaryPrimitives.WriteUInt32BigEndian(frame[4..], commit);
            wal.AsSpan(16, 8).CopyTo(frame[8..]);
            frame[WalFrameHeader.Size..].Fill(fill);
            sum = sum.Continue(frame[..8], false).Continue(frame[WalFrameHeader.Size..], false);
            BinaryPrimitives.WriteUInt32BigEndian(frame[16..], sum.S0);
            BinaryPrimitives.WriteUInt32BigEndian(frame[20..], sum.S1);
            pos += frame.Length;
        }

        WriteLz4(client.SegmentPath(Generation, index, 0), wal);
    }

    private static void WriteLz4(string path, byte[] payload)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        using var lz = Lz4Frame.Encode(fs);
        lz.Write(payload);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Pages_a_later_index_cut_off_read_as_zeros_when_the_database_grows_again_without_them(bool localReads)
    {
        using var db = new TestDb(pageSize: PageSize);
        db.Insert(0, 6, blobBytes: 200);
        using (var c = db.Open())
        {
            TestDb.Exec(c, "PRAGMA wal_checkpoint(TRUNCATE)");
        }

        var snapshot = File.ReadAllBytes(db.DbPath);
        uint s = (uint)(snapshot.Length / PageSize);
        Assert.True(s >= 4, $"the snapshot has {s} pages");
        var client = new FileReplicaClient(db.ReplicaDir);
        WriteLz4(client.SnapshotPath(Generation, 0), snapshot);
        // Index 0 grows the database by two pages and rewrites page 4; index 1 cuts it to three
        // pages and rewrites page 2; index 2 grows it past its old end, writing only the last page.
        WriteIndex(client, 0, (4, 0x40, 0), (s + 1, 0x41, 0), (s + 2, 0x42, s + 2));
        WriteIndex(client, 1, (2, 0x22, 3));
        WriteIndex(client, 2, (s + 3, 0x33, s + 3));

        var output = Path.Combine(db.Dir, "restored.db");
        var store = new ObservedStore(client, localReads);
        var result = await new Restorer(store, NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output, QuickCheck = false }, null, CancellationToken.None);
        Assert.Equal(3, result.IndexesApplied);

        var restored = File.ReadAllBytes(output);
        Assert.Equal((long)(s + 3) * PageSize, (long)restored.Length);
        byte[] Page(byte[] file, uint page) => file.AsSpan((int)(page - 1) * PageSize, PageSize).ToArray();
        Assert.Equal(Page(snapshot, 1), Page(restored, 1));
        Assert.Equal(Enumerable.Repeat((byte)0x22, PageSize), Page(restored, 2));
        Assert.Equal(Page(snapshot, 3), Page(restored, 3));
        for (uint p = 4; p <= s + 2; p++)
        {
            Assert.True(Page(restored, p).All(b => b == 0), $"page {p} of {s + 3} is not zeros");
        }

        Assert.Equal(Enumerable.Repeat((byte)0x33, PageSize), Page(restored, s + 3));
    }
}
