using System.Buffers.Binary;
using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>
/// A file replica in the Litestream v0.3 layout built straight from SQLite's own files (no
/// replicator involved): one generation, a snapshot of the checkpointed database and two WAL
/// indexes copied from the real -wal file, each cut at commit frames into segments. Restoring
/// it gives the live database.
/// </summary>
internal sealed class FuzzReplica : IDisposable
{
    public const string Generation = "0123456789abcdef";

    public sealed record Segment(long Index, long Offset, byte[] Wal, string Path);

    private FuzzReplica(TestDb db)
    {
        Db = db;
    }

    public TestDb Db { get; }

    public string SnapshotPath { get; private set; } = "";

    public byte[] SnapshotDb { get; private set; } = [];

    /// <summary>Every segment, in chain order, with its decoded WAL bytes.</summary>
    public List<Segment> Segments { get; } = [];

    /// <summary>The whole WAL of each index (header and every frame), by index.</summary>
    public Dictionary<long, byte[]> IndexWal { get; } = [];

    public string ExpectedDigest { get; private set; } = "";

    public static FuzzReplica Create()
    {
        var replica = new FuzzReplica(new TestDb(pageSize: 1024));
        replica.Build();
        return replica;
    }

    private void Build()
    {
        var gen = Path.Combine(Db.ReplicaDir, "generations", Generation);
        Directory.CreateDirectory(Path.Combine(gen, "snapshots"));
        Directory.CreateDirectory(Path.Combine(gen, "wal"));
        using var c = Db.Open();
        TestDb.Exec(c, "PRAGMA wal_autocheckpoint = 0");
        Insert(c, 0, 20, perTx: 5, blobBytes: 300);
        TestDb.Scalar(c, "PRAGMA wal_checkpoint(TRUNCATE)");
        SnapshotDb = File.ReadAllBytes(Db.DbPath);
        SnapshotPath = Path.Combine(gen, "snapshots", ReplicaNames.SnapshotName(0));
        File.WriteAllBytes(SnapshotPath, Encode(SnapshotDb));

        // Index 0: inserts, updates, deletes, a big blob, a new table.
        Insert(c, 20, 12, perTx: 3, blobBytes: 200);
        TestDb.Exec(c, "UPDATE t SET v = 'updated ' || id WHERE id % 3 = 0");
        TestDb.Exec(c, "DELETE FROM t WHERE id % 7 = 0");
        Insert(c, 40, 2, perTx: 1, blobBytes: 5000);
        TestDb.Exec(c, "CREATE TABLE extra (k TEXT PRIMARY KEY, n INTEGER)");
        TestDb.Exec(c, "INSERT INTO extra VALUES ('a', 1), ('b', 2)");
        AddIndex(0, ReadWal(), gen);
        TestDb.Scalar(c, "PRAGMA wal_checkpoint(TRUNCATE)");

        // Index 1: a fresh WAL (new salts) after the checkpoint.
        Insert(c, 100, 9, perTx: 3, blobBytes: 100);
        TestDb.Exec(c, "DELETE FROM t WHERE id < 5");
        TestDb.Exec(c, "UPDATE extra SET n = n + 10");
        AddIndex(1, ReadWal(), gen);
        c.Close();
        ExpectedDigest = TestDb.Digest(Db.DbPath);
    }

    /// <summary>Rows with blobs derived from their ids (not randomblob()), so every build has the same bytes.</summary>
    private static void Insert(Microsoft.Data.Sqlite.SqliteConnection c, int from, int count, int perTx, int blobBytes)
    {
        for (int i = from; i < from + count; i += perTx)
        {
            using var tx = c.BeginTransaction();
            for (int j = i; j < Math.Min(from + count, i + perTx); j++)
            {
                var blob = new byte[blobBytes];
                new Random(j).NextBytes(blob);
                using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO t (id, v, b) VALUES ($id, $v, $b)";
                cmd.Parameters.AddWithValue("$id", j);
                cmd.Parameters.AddWithValue("$v", "row " + j);
                cmd.Parameters.AddWithValue("$b", blob);
                cmd.ExecuteNonQuery();
            }

            tx.Commit();
        }
    }

    /// <summary>
    /// Replaces SQLite's random salts with fixed ones (header checksum and every frame's salts
    /// and checksum chain recomputed), so the seeds, and a failing input printed by the fuzzer,
    /// are the same bytes on every run.
    /// </summary>
    private static byte[] FixSalts(byte[] wal, long index)
    {
        var header = WalHeader.Parse(wal);
        uint salt1 = 0x5A5A0000u + (uint)index, salt2 = 0xA5A50000u + (uint)index;
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(16, 4), salt1);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(20, 4), salt2);
        var sum = default(WalChecksum).Continue(wal.AsSpan(0, 24), header.BigEndianChecksum);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(24, 4), sum.S0);
        BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(28, 4), sum.S1);
        for (int off = WalHeader.Size; off + header.FrameSize <= wal.Length; off += header.FrameSize)
        {
            BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(off + 8, 4), salt1);
            BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(off + 12, 4), salt2);
            sum = sum.Continue(wal.AsSpan(off, 8), header.BigEndianChecksum).Continue(wal.AsSpan(off + WalFrameHeader.Size, header.PageSize), header.BigEndianChecksum);
            BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(off + 16, 4), sum.S0);
            BinaryPrimitives.WriteUInt32BigEndian(wal.AsSpan(off + 20, 4), sum.S1);
        }

        return wal;
    }

    private byte[] ReadWal()
    {
        using var fs = new FileStream(Db.DbPath + "-wal", FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var bytes = new byte[fs.Length];
        fs.ReadExactly(bytes);
        var header = WalHeader.TryParseValid(bytes) ?? throw new InvalidOperationException("the -wal file has no valid header");
        // Only the committed, valid chain (SQLite may leave older frames past it).
        var verifier = new WalChainVerifier(header);
        for (long off = WalHeader.Size; off + header.FrameSize <= bytes.Length; off += header.FrameSize)
        {
            if (verifier.Accept(bytes.AsSpan((int)off, header.FrameSize)) is not null)
            {
                break;
            }
        }

        return bytes[..(int)verifier.LastCommitOffset];
    }

    private void AddIndex(long index, byte[] wal, string gen)
    {
        wal = FixSalts(wal, index);
        IndexWal[index] = wal;
        var header = WalHeader.Parse(wal);
        var commits = new List<int>();
        for (int off = WalHeader.Size; off + header.FrameSize <= wal.Length; off += header.FrameSize)
        {
            if (BinaryPrimitives.ReadUInt32BigEndian(wal.AsSpan(off + 4, 4)) != 0)
            {
                commits.Add(off + header.FrameSize);
            }
        }

        // About three segments per index, each ending on a commit frame.
        var cuts = new List<int>();
        for (int k = 1; k <= 3; k++)
        {
            int cut = commits[Math.Min(commits.Count - 1, k * commits.Count / 3 - 1 < 0 ? 0 : k * commits.Count / 3 - 1)];
            if (cuts.Count == 0 || cut > cuts[^1])
            {
                cuts.Add(cut);
            }
        }

        int start = 0;
        foreach (int end in cuts)
        {
            var path = Path.Combine(gen, "wal", ReplicaNames.SegmentName(index, start));
            var bytes = wal[start..end];
            File.WriteAllBytes(path, Encode(bytes));
            Segments.Add(new Segment(index, start, bytes, path));
            start = end;
        }
    }

    public static byte[] Encode(byte[] payload)
    {
        using var ms = new MemoryStream();
        using (var lz = Lz4Frame.Encode(ms, leaveOpen: true))
        {
            lz.Write(payload);
        }

        return ms.ToArray();
    }

    public void Dispose() => Db.Dispose();
}
