using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Restores from a real replica (written by capture + syncer) that was damaged on disk: the right
/// error code, nothing at the output path, no temporary files left behind. A local-directory
/// replica is read twice per WAL index (verify, then apply); <see cref="RestoreErrorTestsWithSpool"/>
/// runs every test again the way other stores are read, through spool files.
/// </summary>
public class RestoreErrorTests
{
    /// <summary>Read the replica as a store whose objects are not local (WAL indexes spooled).</summary>
    protected virtual bool Spool => false;

    /// <summary>
    /// A replica of one generation with three WAL indexes: index 0 has three segments (20 rows
    /// each), index 1 two, index 2 one. The source database is left with 120 rows.
    /// </summary>
    private sealed class BuiltReplica : IDisposable
    {
        public const int RowsInFirstSegment = 20;
        public const int TotalRows = 120;

        private BuiltReplica(TestDb db, FileReplicaClient client, string generation, bool spool)
        {
            Db = db;
            Client = client;
            Store = new ObservedStore(client, localReads: !spool);
            Generation = generation;
            OutDir = Path.Combine(db.Dir, "out");
            Output = Path.Combine(OutDir, "restored.db");
        }

        public TestDb Db { get; }

        public FileReplicaClient Client { get; }

        /// <summary>What the restores of these tests read the replica through.</summary>
        public ObservedStore Store { get; }

        public string Generation { get; }

        public string OutDir { get; }

        public string Output { get; }

        public static async Task<BuiltReplica> CreateAsync(bool spool)
        {
            var db = new TestDb();
            var client = new FileReplicaClient(db.ReplicaDir);
            string generation;
            using (var capture = new DatabaseCapture(db.DbPath, new CaptureOptions { CheckpointInterval = TimeSpan.Zero }, NullEngineLog.Instance))
            {
                var syncer = new ReplicaSyncer(capture, client, new ReplicaOptions { SyncInterval = TimeSpan.Zero, Retention = TimeSpan.Zero }, NullEngineLog.Instance);
                async Task Batch(int from)
                {
                    db.Insert(from, 20, perTx: 5);
                    capture.Sync(default);
                    await syncer.SyncAsync(default);
                }

                await Batch(0);
                await Batch(20);
                await Batch(40);
                capture.Checkpoint(CheckpointMode.Restart, default);
                await Batch(60);
                await Batch(80);
                capture.Checkpoint(CheckpointMode.Restart, default);
                await Batch(100);
                Assert.Equal(2, capture.Position.Index);
                Assert.Equal(capture.Position, syncer.ConfirmedPosition);
                generation = capture.Position.Generation;
            }

            return new BuiltReplica(db, client, generation, spool);
        }

        public List<SegmentInfo> Segments(long index) =>
            Client.ListSegmentsAsync(Generation, default).GetAwaiter().GetResult().Where(s => s.Index == index).OrderBy(s => s.Offset).ToList();

        public string SegmentPath(SegmentInfo s) => Client.SegmentPath(s.Generation, s.Index, s.Offset);

        public Task<RestoreResult> RestoreAsync(RestoreOptions? options = null, IProgress<RestoreProgress>? progress = null, CancellationToken ct = default) =>
            new Restorer(Store, NullEngineLog.Instance).RestoreAsync(options ?? new RestoreOptions { OutputPath = Output }, progress, ct);

        public async Task<ReplicaException> RestoreFailsAsync(RestoreOptions? options = null)
        {
            return await Assert.ThrowsAsync<ReplicaException>(() => RestoreAsync(options));
        }

        /// <summary>The output does not exist and its directory holds no file at all (no temp, no spool).</summary>
        public void AssertNothingLeftAtOutput()
        {
            Assert.False(File.Exists(Output), "output exists");
            Assert.False(File.Exists(Output + "-wal"), "output -wal exists");
            if (Directory.Exists(OutDir))
            {
                Assert.Empty(Directory.GetFiles(OutDir, "*restore-tmp*", SearchOption.AllDirectories));
                Assert.Empty(Directory.GetFiles(OutDir, "*", SearchOption.AllDirectories));
            }

            Assert.Empty(Directory.GetFiles(Db.Dir, "*restore-tmp*", SearchOption.TopDirectoryOnly));
        }

        public void Dispose() => Db.Dispose();
    }

    private static (long Count, long Min, long Max) Rows(string path)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*), COALESCE(MIN(id), -1), COALESCE(MAX(id), -1) FROM t";
        using var r = cmd.ExecuteReader();
        r.Read();
        return (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }

    /// <summary>
    /// Flips one byte of a stored object near <paramref name="where"/> (as a fraction of its
    /// length), choosing the first byte from there whose flip really changes the decoded bytes:
    /// some flips are benign (a match offset that copies zeros from another run of zeros).
    /// </summary>
    private static void FlipByte(string path, double where)
    {
        var bytes = File.ReadAllBytes(path);
        var original = PlainDecode(bytes) ?? throw new InvalidOperationException("object does not decode before damage");
        for (int at = 11 + (int)((bytes.Length - 11 - 8) * where); at < bytes.Length; at++)
        {
            bytes[at] ^= 0x20;
            var damaged = PlainDecode(bytes);
            if (damaged is null || !damaged.AsSpan().SequenceEqual(original))
            {
                File.WriteAllBytes(path, bytes);
                return;
            }

            bytes[at] ^= 0x20;
        }

        throw new InvalidOperationException("no byte flip changes the object");
    }

    /// <summary>Decodes with the bare LZ4 decoder (no checks of ours); null when it throws.</summary>
    private static byte[]? PlainDecode(byte[] stored)
    {
        try
        {
            using var d = Lz4Frame.Decode(new MemoryStream(stored));
            var ms = new MemoryStream();
            d.CopyTo(ms);
            return ms.ToArray();
        }
        catch (Exception)
        {
            return null;
        }
    }

    /// <summary>Rewrites a segment with valid LZ4 around WAL bytes changed by <paramref name="damage"/>.</summary>
    private static void RewriteSegmentPayload(string path, Action<byte[]> damage)
    {
        byte[] payload;
        using (var v = new VerifiedLz4Stream(File.OpenRead(path), path))
        {
            var ms = new MemoryStream();
            v.CopyTo(ms);
            payload = ms.ToArray();
        }

        damage(payload);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var lz = Lz4Frame.Encode(fs);
        lz.Write(payload);
    }

    [Fact]
    public async Task The_undamaged_replica_restores_every_row()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        Assert.Equal(3, r.Segments(0).Count);
        Assert.Equal(2, r.Segments(1).Count);
        Assert.Single(r.Segments(2));

        var result = await r.RestoreAsync();
        Assert.False(result.Partial);
        Assert.Null(result.PartialReason);
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        Assert.Equal(TestDb.Digest(r.Db.DbPath), TestDb.Digest(r.Output));
        Assert.Equal((BuiltReplica.TotalRows, 0L, BuiltReplica.TotalRows - 1L), Rows(r.Output));
        Assert.Empty(Directory.GetFiles(r.OutDir, "*restore-tmp*"));
    }

    [Fact]
    public async Task A_segment_that_reads_differently_the_second_time_fails_the_restore_of_a_local_replica()
    {
        // A local replica is verified at the first reading and applied at the second: the second
        // must give the frames the first verified. Here the second reading of index 0's middle
        // segment gives its last segment instead (valid LZ4, valid frames, other content). Read
        // through spool files, each segment is read once and the restore is unaffected.
        using var r = await BuiltReplica.CreateAsync(Spool);
        var segments = r.Segments(0);
        Assert.Equal(3, segments.Count);
        var (middle, last) = (segments[1], segments[2]);
        r.Store.Replace = (index, offset, nth) => index == 0 && offset == middle.Offset && nth == 2 ? File.OpenRead(r.SegmentPath(last)) : null;
        if (Spool)
        {
            var result = await r.RestoreAsync();
            Assert.Equal(BuiltReplica.TotalRows, Rows(result.OutputPath).Count);
            Assert.Equal(1, r.Store.Opens(0, middle.Offset));
            return;
        }

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        Assert.Contains("changed while it was being restored", e.Message);
        Assert.Equal(2, r.Store.Opens(0, middle.Offset));
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task A_segment_removed_between_the_two_readings_of_a_local_replica_fails_the_restore_and_says_so()
    {
        // Retention by a replicator running on the same replica can remove a segment after the
        // first reading verified it and before the second reads it again to apply it.
        using var r = await BuiltReplica.CreateAsync(Spool);
        var middle = r.Segments(0)[1];
        r.Store.Replace = (index, offset, nth) =>
        {
            if (index == 0 && offset == middle.Offset && nth == 2)
            {
                File.Delete(r.SegmentPath(middle));
            }

            return null;
        };
        if (Spool)
        {
            var result = await r.RestoreAsync();
            Assert.Equal(BuiltReplica.TotalRows, Rows(result.OutputPath).Count);
            return;
        }

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
        Assert.Contains("was removed while it was being restored", e.Message);
        Assert.Contains("run the restore again", e.Message);
        Assert.Equal(2, r.Store.Opens(0, middle.Offset));
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentMissing_when_a_middle_segment_is_missing()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var middle = r.Segments(0)[1];
        File.Delete(r.SegmentPath(middle));

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
        Assert.Contains(ReplicaNames.SegmentName(0, middle.Offset), e.Target);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentMissing_when_the_offset_0_segment_of_an_index_is_missing()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        File.Delete(r.SegmentPath(r.Segments(1)[0]));

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
        Assert.Contains(ReplicaNames.SegmentName(1, 0), e.Target);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentMissing_when_a_whole_index_is_missing()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        foreach (var s in r.Segments(1))
        {
            File.Delete(r.SegmentPath(s));
        }

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.0)]
    [InlineData(0.99)]
    public async Task Restore_fails_with_SegmentCorrupt_when_a_segment_is_truncated(double keep)
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var path = r.SegmentPath(r.Segments(0)[1]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * keep)]);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Theory]
    [InlineData(0, 0.5)]
    [InlineData(1, 0.3)]
    [InlineData(2, 0.9)]
    public async Task Restore_fails_with_SegmentCorrupt_when_a_byte_of_a_segment_is_flipped(int segment, double where)
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        FlipByte(r.SegmentPath(r.Segments(0)[segment]), where);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentCorrupt_when_a_valid_lz4_segment_holds_a_broken_checksum_chain()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var seg = r.Segments(1)[1];
        // Offset > 0: the payload is whole frames; damage page data in its last frame.
        RewriteSegmentPayload(r.SegmentPath(seg), p => p[^100] ^= 0xFF);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        Assert.Contains("checksum", e.Message);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentCorrupt_when_a_segment_carries_frames_with_other_salts()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var seg = r.Segments(0)[2];
        // Salts are not under the checksum: change salt-1 of the segment's first frame.
        RewriteSegmentPayload(r.SegmentPath(seg), p => p[8 + 3] ^= 0x01);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        Assert.Contains("salt", e.Message);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentCorrupt_when_an_index_starts_with_a_bad_wal_header()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        RewriteSegmentPayload(r.SegmentPath(r.Segments(2)[0]), p => p[20] ^= 0x01);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentCorrupt_when_the_snapshot_is_damaged()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        FlipByte(r.Client.SnapshotPath(r.Generation, 0), 0.5);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_the_snapshot_error_when_the_snapshot_and_a_later_segment_are_both_damaged()
    {
        // WAL indexes download and verify while the snapshot decodes: the snapshot's failure is
        // the one reported, and no spool file of the indexes already under way is left behind.
        using var r = await BuiltReplica.CreateAsync(Spool);
        FlipByte(r.Client.SnapshotPath(r.Generation, 0), 0.5);
        FlipByte(r.SegmentPath(r.Segments(1)[1]), 0.5);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        Assert.Contains("snapshots/", e.Message);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_SegmentCorrupt_when_an_index_has_another_page_size_than_the_snapshot()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        SetWalHeaderPageSize(r.SegmentPath(r.Segments(2)[0]), 8192);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        Assert.Contains("page size 8192", e.Message);
        Assert.Contains("00000002_00000000.wal.lz4", e.Message);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_with_allow_partial_stops_before_an_index_with_another_page_size()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        SetWalHeaderPageSize(r.SegmentPath(r.Segments(2)[0]), 8192);

        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, AllowPartial = true });
        Assert.True(result.Partial);
        Assert.Contains("page size 8192", result.PartialReason);
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        Assert.Equal((100L, 0L, 99L), Rows(r.Output)); // indexes 0 and 1
    }

    /// <summary>Gives a segment's WAL header another page size, with a valid header checksum.</summary>
    private static void SetWalHeaderPageSize(string path, uint pageSize) => RewriteSegmentPayload(path, p =>
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(8, 4), pageSize);
        bool bigEndian = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(p) == 0x377f0683;
        var sum = default(SqliteReplica.Engine.Wal.WalChecksum).Continue(p.AsSpan(0, 24), bigEndian);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(24, 4), sum.S0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(28, 4), sum.S1);
    });

    [Fact]
    public async Task Restore_fails_with_SnapshotMissing_when_the_snapshot_is_missing()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        File.Delete(r.Client.SnapshotPath(r.Generation, 0));

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.SnapshotMissing, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_NoMatchingBackup_when_the_replica_directory_is_empty()
    {
        using var db = new TestDb();
        Directory.CreateDirectory(db.ReplicaDir);
        var output = Path.Combine(db.Dir, "out", "restored.db");
        var e = await Assert.ThrowsAsync<ReplicaException>(() =>
            new Restorer(new FileReplicaClient(db.ReplicaDir), NullEngineLog.Instance).RestoreAsync(new RestoreOptions { OutputPath = output }, null, default));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
        Assert.False(File.Exists(output));
        Assert.False(Directory.Exists(Path.GetDirectoryName(output)) && Directory.GetFiles(Path.GetDirectoryName(output)!).Length > 0);
    }

    [Fact]
    public async Task Restore_fails_with_NoMatchingBackup_when_the_replica_directory_does_not_exist_or_holds_no_generation()
    {
        using var db = new TestDb();
        var output = Path.Combine(db.Dir, "restored.db");
        var restorer = new Restorer(new FileReplicaClient(db.ReplicaDir), NullEngineLog.Instance);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => restorer.RestoreAsync(new RestoreOptions { OutputPath = output }, null, default));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);

        // Foreign directories and an empty generation are no backup either.
        Directory.CreateDirectory(Path.Combine(db.ReplicaDir, "generations", "not-a-generation"));
        Directory.CreateDirectory(Path.Combine(db.ReplicaDir, "generations", "0123456789abcdef", "wal"));
        e = await Assert.ThrowsAsync<ReplicaException>(() => restorer.RestoreAsync(new RestoreOptions { OutputPath = output }, null, default));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Restore_fails_with_OutputExists_and_leaves_the_file_unchanged_when_the_output_exists_without_force()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        Directory.CreateDirectory(r.OutDir);
        var original = new byte[12345];
        new Random(9).NextBytes(original);
        File.WriteAllBytes(r.Output, original);
        var mtime = File.GetLastWriteTimeUtc(r.Output);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.OutputExists, e.Code);
        Assert.Equal(original, File.ReadAllBytes(r.Output));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(r.Output));
        Assert.Equal(new[] { r.Output }, Directory.GetFiles(r.OutDir));
    }

    [Fact]
    public async Task Restore_fails_with_OutputExists_when_only_a_wal_of_the_output_exists()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        Directory.CreateDirectory(r.OutDir);
        File.WriteAllBytes(r.Output + "-wal", new byte[100]);

        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.OutputExists, e.Code);
        Assert.False(File.Exists(r.Output));
        Assert.Equal(100, new FileInfo(r.Output + "-wal").Length);
    }

    [Fact]
    public async Task Restore_with_force_replaces_the_output_and_removes_a_stale_wal_and_shm()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        Directory.CreateDirectory(r.OutDir);

        // The stale -wal is a real, valid WAL of another database with the same page size: left
        // in place, SQLite would replay it into the restored file.
        using (var other = new TestDb())
        {
            using var keep = other.Open();
            TestDb.Exec(keep, "PRAGMA wal_autocheckpoint = 0");
            TestDb.Exec(keep, "CREATE TABLE stale (x)");
            TestDb.Exec(keep, "INSERT INTO stale VALUES ('from the old wal')");
            File.Copy(other.DbPath, r.Output);
            File.Copy(other.DbPath + "-wal", r.Output + "-wal");
            File.WriteAllBytes(r.Output + "-shm", new byte[32768]);
        }

        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, Force = true });
        Assert.False(result.Partial);
        Assert.False(File.Exists(r.Output + "-wal"), "stale -wal left beside the restored database");
        Assert.False(File.Exists(r.Output + "-shm"), "stale -shm left beside the restored database");
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        Assert.Equal(TestDb.Digest(r.Db.DbPath), TestDb.Digest(r.Output));
        Assert.Empty(Directory.GetFiles(r.OutDir, "*restore-tmp*"));
    }

    [Fact]
    public async Task Restore_with_force_that_fails_leaves_the_existing_output_unchanged()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        Directory.CreateDirectory(r.OutDir);
        var original = new byte[4096];
        new Random(3).NextBytes(original);
        File.WriteAllBytes(r.Output, original);
        File.Delete(r.SegmentPath(r.Segments(0)[1]));

        var e = await r.RestoreFailsAsync(new RestoreOptions { OutputPath = r.Output, Force = true });
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
        Assert.Equal(original, File.ReadAllBytes(r.Output));
        Assert.Empty(Directory.GetFiles(r.OutDir, "*restore-tmp*"));
    }

    [Fact]
    public async Task Restore_with_allow_partial_stops_before_a_missing_middle_segment()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var missing = r.Segments(0)[1];
        File.Delete(r.SegmentPath(missing));

        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, AllowPartial = true });
        Assert.True(result.Partial);
        Assert.False(string.IsNullOrWhiteSpace(result.PartialReason));
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        var (count, min, max) = Rows(r.Output);
        Assert.True(count < BuiltReplica.TotalRows);
        Assert.Equal(BuiltReplica.RowsInFirstSegment, count); // exactly the rows before the gap
        Assert.Equal(0, min);
        Assert.Equal(count - 1, max); // a prefix of the source's rows
        Assert.Equal(0, result.Position.Index);
        Assert.Equal(missing.Offset, result.Position.Offset);
        Assert.Equal(1, result.SegmentsApplied);
        Assert.Empty(Directory.GetFiles(r.OutDir, "*restore-tmp*"));
    }

    [Fact]
    public async Task Restore_with_allow_partial_stops_before_a_missing_index()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        File.Delete(r.SegmentPath(r.Segments(1)[0]));

        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, AllowPartial = true });
        Assert.True(result.Partial);
        Assert.NotNull(result.PartialReason);
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        Assert.Equal((60L, 0L, 59L), Rows(r.Output)); // all of index 0
    }

    [Fact]
    public async Task Restore_with_allow_partial_stops_before_a_corrupt_segment()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        FlipByte(r.SegmentPath(r.Segments(1)[1]), 0.5);

        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, AllowPartial = true });
        Assert.True(result.Partial);
        Assert.NotNull(result.PartialReason);
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        Assert.Equal((80L, 0L, 79L), Rows(r.Output)); // index 0 and the first segment of index 1
        Assert.Empty(Directory.GetFiles(r.OutDir, "*restore-tmp*"));
    }

    [Fact]
    public async Task Restore_with_allow_partial_on_an_undamaged_replica_is_not_partial()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, AllowPartial = true });
        Assert.False(result.Partial);
        Assert.Equal(BuiltReplica.TotalRows, TestDb.Count(r.Output));
    }

    [Fact]
    public async Task Restore_to_an_index_before_the_damage_succeeds()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        FlipByte(r.SegmentPath(r.Segments(2)[0]), 0.5);

        var result = await r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, Index = 1 });
        Assert.False(result.Partial);
        Assert.Equal(1, result.Position.Index);
        Assert.Equal("ok", TestDb.IntegrityCheck(r.Output));
        Assert.Equal((100L, 0L, 99L), Rows(r.Output));
    }

    [Fact]
    public async Task Restore_fails_with_OutputNotWritable_when_the_output_is_a_directory()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        Directory.CreateDirectory(r.Output);
        var e = await r.RestoreFailsAsync();
        Assert.Equal(ReplicaErrorCode.OutputNotWritable, e.Code);
        Assert.True(Directory.Exists(r.Output));
        Assert.Empty(Directory.GetFileSystemEntries(r.Output));
    }

    [Fact]
    public async Task Restore_with_a_temp_directory_that_fails_leaves_no_file_in_it()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var temp = Path.Combine(r.Db.Dir, "scratch");
        FlipByte(r.SegmentPath(r.Segments(1)[1]), 0.5);

        var e = await r.RestoreFailsAsync(new RestoreOptions { OutputPath = r.Output, TempDirectory = temp });
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
        Assert.Empty(Directory.Exists(temp) ? Directory.GetFiles(temp, "*", SearchOption.AllDirectories) : []);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_fails_with_InvalidArgument_when_index_and_timestamp_are_both_given()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        var e = await r.RestoreFailsAsync(new RestoreOptions { OutputPath = r.Output, Index = 1, Timestamp = DateTimeOffset.UtcNow });
        Assert.Equal(ReplicaErrorCode.InvalidArgument, e.Code);
        r.AssertNothingLeftAtOutput();
    }

    [Fact]
    public async Task Restore_with_a_cancelled_token_leaves_no_output_and_no_temp_files()
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        var e = await Assert.ThrowsAnyAsync<Exception>(() => r.RestoreAsync(ct: cts.Token));
        Assert.True(e is OperationCanceledException || e is ReplicaException { Code: ReplicaErrorCode.Cancelled }, e.ToString());
        r.AssertNothingLeftAtOutput();
    }

    /// <summary>
    /// Cancels the restore synchronously on the n-th progress report. Reports can come from the
    /// snapshot's and the WAL indexes' tasks at once, so the count and the list are kept under a lock
    /// (unguarded, a lost List.Add once left fewer phases listed than reports counted).
    /// </summary>
    private sealed class CancelOnReport(CancellationTokenSource cts, int after) : IProgress<RestoreProgress>
    {
        private readonly object _gate = new();
        private readonly List<string> _phases = new();

        public List<string> Phases
        {
            get
            {
                lock (_gate)
                {
                    return new List<string>(_phases);
                }
            }
        }

        public void Report(RestoreProgress value)
        {
            bool cancel;
            lock (_gate)
            {
                _phases.Add(value.Phase);
                cancel = _phases.Count == after;
            }

            if (cancel)
            {
                cts.Cancel();
            }
        }
    }

    [Theory]
    [InlineData(1)] // while the snapshot is being written
    [InlineData(2)]
    [InlineData(4)] // while WAL indexes are being spooled
    public async Task Restore_cancelled_midway_leaves_no_output_and_no_temp_files(int cancelAtReport)
    {
        using var r = await BuiltReplica.CreateAsync(Spool);
        using var cts = new CancellationTokenSource();
        var progress = new CancelOnReport(cts, cancelAtReport);

        var e = await Assert.ThrowsAnyAsync<Exception>(() => r.RestoreAsync(new RestoreOptions { OutputPath = r.Output, Parallelism = 1 }, progress, cts.Token));
        Assert.True(e is OperationCanceledException || e is ReplicaException { Code: ReplicaErrorCode.Cancelled }, e.ToString());
        Assert.True(progress.Phases.Count >= cancelAtReport, string.Join(",", progress.Phases));
        r.AssertNothingLeftAtOutput();
    }
}

/// <summary>Every restore error test again, with the WAL indexes spooled as for a store whose objects are not local.</summary>
public sealed class RestoreErrorTestsWithSpool : RestoreErrorTests
{
    protected override bool Spool => true;
}
