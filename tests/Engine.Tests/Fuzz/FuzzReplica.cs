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
        Db.Insert(0, 20, perTx: 5, blobBytes: 300);
        TestDb.Scalar(c, "PRAGMA wal_checkpoint(TRUNCATE)");
        SnapshotDb = File.ReadAllBytes(Db.DbPath);
        SnapshotPath = Path.Combine(gen, "snapshots", ReplicaNames.SnapshotName(0));
        File.WriteAllBytes(SnapshotPath, Encode(SnapshotDb));

        // Index 0: inserts, updates, deletes, a big blob, a new table.
        Db.Insert(20, 12, perTx: 3, blobBytes: 200);
        TestDb.Exec(c, "UPDATE t SET v = 'updated ' || id WHERE id % 3 = 0");
        TestDb.Exec(c, "DELETE FROM t WHERE id % 7 = 0");
        Db.Insert(40, 2, perTx: 1, blobBytes: 5000);
        TestDb.Exec(c, "CREATE TABLE extra (k TEXT PRIMARY KEY, n INTEGER)");
        TestDb.Exec(c, "INSERT INTO extra VALUES ('a', 1), ('b', 2)");
        AddIndex(0, ReadWal(), gen);
        TestDb.Scalar(c, "PRAGMA wal_checkpoint(TRUNCATE)");

        // Index 1: a fresh WAL (new salts) after the checkpoint.
        Db.Insert(100, 9, perTx: 3, blobBytes: 100);
        TestDb.Exec(c, "DELETE FROM t WHERE id < 5");
        TestDb.Exec(c, "UPDATE extra SET n = n + 10");
        AddIndex(1, ReadWal(), gen);
        c.Close();
        ExpectedDigest = TestDb.Digest(Db.DbPath);
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
