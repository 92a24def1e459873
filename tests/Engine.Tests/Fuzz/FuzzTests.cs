using System.Buffers.Binary;
using System.Text;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Engine.Restore;
using SqliteReplica.Engine.Wal;
using Xunit.Abstractions;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>
/// Fuzzing of the parsers that read untrusted bytes: LZ4 frames, WAL segments on the restore
/// path, shadow WAL files on the upload path and litestream.yml. A few seconds per target with
/// a fixed seed in the normal run; <c>SQLITEREPLICA_FUZZ_SECONDS</c> makes it a long run with a
/// random seed (see <see cref="FuzzRunner"/>). Every input must succeed or fail with a
/// <see cref="ReplicaException"/> whose code is not Internal, and within the per-input timeout.
/// </summary>
[Trait("Category", "Fuzz")]
public class FuzzTests(ITestOutputHelper output)
{
    [Fact]
    public void Lz4_decode_of_mutated_frames_ends_in_data_or_a_SegmentCorrupt_error()
    {
        var rng = new Random(7);
        var compressible = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 4000).Select(i => $"row {i} value {i % 17};")));
        var random = new byte[40_000];
        rng.NextBytes(random);
        var mixed = new byte[70_000];
        rng.NextBytes(mixed.AsSpan(0, 20_000));
        var seeds = new List<byte[]>
        {
            FuzzReplica.Encode(compressible),
            FuzzReplica.Encode([]),
            FuzzReplica.Encode([0x42]),
            FuzzReplica.Encode(random),
            FuzzReplica.Encode(mixed),
        };
        var target = new FuzzTarget
        {
            Name = "lz4",
            Seeds = seeds,
            MinimumInputs = 200,
            Run = async (_, input) =>
            {
                await using var s = new VerifiedLz4Stream(new MemoryStream(input, writable: false), "fuzz/object.lz4");
                var buffer = new byte[1 << 16];
                // Alternate the sync and async read paths.
                if (input.Length % 2 == 0)
                {
                    while (s.Read(buffer, 0, buffer.Length) > 0)
                    {
                    }
                }
                else
                {
                    while (await s.ReadAsync(buffer) > 0)
                    {
                    }
                }
            },
        };
        FuzzRunner.AssertNoFailures(FuzzRunner.Run(target, output));
    }

    [Fact]
    public async Task Restore_with_a_mutated_wal_segment_restores_or_fails_with_a_clear_error()
    {
        using var replica = FuzzReplica.Create();
        await AssertSeedRestoresAsync(replica);
        var client = new FileReplicaClient(replica.Db.ReplicaDir);
        int n = 0;
        var target = new FuzzTarget
        {
            Name = "wal-restore",
            Seeds = replica.Segments.Select(s => s.Wal).ToList(),
            Structured = (seedIndex, wal, rng) => MutateWalStructure(replica, seedIndex, wal, rng),
            Run = async (seedIndex, wal) =>
            {
                var segment = replica.Segments[seedIndex];
                var original = File.ReadAllBytes(segment.Path);
                File.WriteAllBytes(segment.Path, FuzzReplica.Encode(wal));
                try
                {
                    await RestoreOnceAsync(client, replica, ++n);
                }
                finally
                {
                    File.WriteAllBytes(segment.Path, original);
                }
            },
        };
        FuzzRunner.AssertNoFailures(FuzzRunner.Run(target, output));
    }

    [Fact]
    public async Task Restore_with_a_mutated_stored_object_restores_or_fails_with_a_clear_error()
    {
        using var replica = FuzzReplica.Create();
        await AssertSeedRestoresAsync(replica);
        var client = new FileReplicaClient(replica.Db.ReplicaDir);
        var paths = new List<string> { replica.SnapshotPath };
        paths.AddRange(replica.Segments.Select(s => s.Path));
        int n = 0;
        var target = new FuzzTarget
        {
            Name = "stored-object-restore",
            Seeds = paths.Select(File.ReadAllBytes).ToList(),
            Run = async (seedIndex, stored) =>
            {
                var original = File.ReadAllBytes(paths[seedIndex]);
                File.WriteAllBytes(paths[seedIndex], stored);
                try
                {
                    await RestoreOnceAsync(client, replica, ++n);
                }
                finally
                {
                    File.WriteAllBytes(paths[seedIndex], original);
                }
            },
        };
        FuzzRunner.AssertNoFailures(FuzzRunner.Run(target, output));
    }

    [Fact]
    public void Shadow_wal_reader_on_a_mutated_shadow_file_copies_or_fails_with_SegmentCorrupt()
    {
        using var replica = FuzzReplica.Create();
        var shadow = Path.Combine(replica.Db.Dir, "shadow.wal");
        var seeds = replica.IndexWal.Values.ToList();
        var target = new FuzzTarget
        {
            Name = "shadow-wal-reader",
            Seeds = seeds,
            Structured = (seedIndex, wal, rng) => MutateWalFrames(wal, WalHeader.Size, rng),
            Run = async (seedIndex, wal) =>
            {
                // The positions the replicator had recorded for the intact file: its segment
                // boundaries. The file is damaged after they were recorded.
                var original = seeds[seedIndex];
                var header = WalHeader.Parse(original);
                var bounds = replica.Segments.Where(s => s.Index == seedIndex).Select(s => s.Offset).Append(original.Length).ToList();
                File.WriteAllBytes(shadow, wal);
                int pick = wal.Length % (bounds.Count - 1);
                await SegmentReader.CopyVerifiedAsync(shadow, bounds[pick], bounds[pick + 1], Stream.Null, default);
                await SegmentReader.CopyVerifiedAsync(shadow, 0, bounds[^1], Stream.Null, default);
            },
        };
        FuzzRunner.AssertNoFailures(FuzzRunner.Run(target, output));
    }

    [Fact]
    public void Config_loader_on_mutated_yaml_loads_or_fails_with_a_config_error()
    {
        var env = new Dictionary<string, string> { ["KEY_ID"] = "AKIAFUZZ", ["SECRET"] = "fuzz-secret", ["DIR"] = "/var/lib/app", ["EMPTY"] = "" };
        var target = new FuzzTarget
        {
            Name = "config",
            Seeds = ConfigSeeds.Select(Encoding.UTF8.GetBytes).ToList(),
            MinimumInputs = 200,
            Structured = (_, yaml, rng) => ConfigFuzz.Mutate(Encoding.UTF8.GetString(yaml), rng),
            Run = (_, bytes) =>
            {
                var text = Encoding.UTF8.GetString(bytes);
                var config = new ConfigLoader(name => env.GetValueOrDefault(name)).Parse(text, "/etc/litestream.yml");
                ConfigLoader.EnsureSupported(config);
                // What Start-SqliteReplication -ConfigPath does next with every replica entry.
                foreach (var db in config.Databases)
                {
                    foreach (var r in db.Replicas)
                    {
                        var client = ReplicaClientFactory.FromConfig(r, NullEngineLog.Instance);
                        Assert.NotNull(client.Url);
                        (client as IDisposable)?.Dispose();
                    }
                }

                return Task.CompletedTask;
            },
        };
        FuzzRunner.AssertNoFailures(FuzzRunner.Run(target, output));
    }

    [Fact]
    public void Fuzz_replica_is_the_same_bytes_on_every_build_so_printed_inputs_replay()
    {
        using var a = FuzzReplica.Create();
        using var b = FuzzReplica.Create();
        Assert.Equal(a.SnapshotDb, b.SnapshotDb);
        Assert.Equal(a.Segments.Count, b.Segments.Count);
        for (int i = 0; i < a.Segments.Count; i++)
        {
            Assert.Equal(a.Segments[i].Wal, b.Segments[i].Wal);
        }
    }

    internal static readonly string[] ConfigSeeds =
    [
        """
        access-key-id: ${KEY_ID}
        secret-access-key: ${SECRET}
        dbs:
          - path: /pb/pb_data/data.db
            replicas:
              - type: s3
                endpoint: https://accountid.r2.cloudflarestorage.com
                bucket: my-pb-backups
                path: app/data.db
                region: auto
                force-path-style: true
                snapshot-interval: 12h
                retention: 72h
        """,
        """
        addr: ":9090"
        logging:
          level: debug
          type: json
          stderr: true
        exec: /usr/bin/app --serve
        dbs:
          - path: $DIR/one.db
            meta-path: /var/lib/meta/one
            monitor-interval: 500ms
            checkpoint-interval: 1m30s
            min-checkpoint-page-count: 500
            max-checkpoint-page-count: 0
            heartbeat-url: https://hc.example.invalid/ping
            heartbeat-interval: 5m
            replicas:
              - url: file:///var/backups/one.db
                name: local
                sync-interval: 1s
                retention: 24h
                retention-check-interval: 1h
                validation-interval: 6h
              - url: s3://bucket.localhost:9000/one.db
                name: minio
                skip-verify: true
          - path: ~/two.db
            replicas:
              - path: /var/backups/two
        """,
        """
        dbs:
          - path: /data/a.db
            replicas:
              - &r
                type: s3
                bucket: b
                path: a
                access-key-id: ${KEY_ID}
                secret-access-key: "${SECRET}"
                endpoint: http://127.0.0.1:9000
              - <<: *r
                name: second
        """,
    ];

    /// <summary>The unmutated replica restores to exactly the live database (the fuzzing starts from a sound base).</summary>
    private static async Task AssertSeedRestoresAsync(FuzzReplica replica)
    {
        var output = Path.Combine(replica.Db.Dir, "seed-restore.db");
        var result = await new Restorer(new FileReplicaClient(replica.Db.ReplicaDir), NullEngineLog.Instance)
            .RestoreAsync(new RestoreOptions { OutputPath = output }, null, default);
        Assert.Equal(1, result.Position.Index);
        Assert.Equal(replica.ExpectedDigest, TestDb.Digest(output));
        File.Delete(output);
    }

    private static async Task RestoreOnceAsync(FileReplicaClient client, FuzzReplica replica, int n)
    {
        var dir = Path.Combine(replica.Db.Dir, "out");
        var output = Path.Combine(dir, $"restored-{n}.db");
        try
        {
            var restorer = new Restorer(client, NullEngineLog.Instance);
            var result = await restorer.RestoreAsync(new RestoreOptions { OutputPath = output, AllowPartial = n % 2 == 0, Parallelism = 1 + n % 3 }, null, default);
            // A restore that succeeds must have produced an intact database.
            var integrity = TestDb.IntegrityCheck(output);
            if (integrity != "ok")
            {
                throw new InvalidOperationException($"the restore succeeded at {result.Position} but integrity_check says: {integrity}");
            }
        }
        finally
        {
            foreach (var f in Directory.Exists(dir) ? Directory.GetFiles(dir) : [])
            {
                File.Delete(f);
            }
        }
    }

    /// <summary>
    /// Mutations that keep the WAL checksums valid, so they get past the checksum chain to the
    /// code behind it: a header field changed (header checksum recomputed), or a frame header's
    /// page number, commit size or salts changed (the frame checksums recomputed from there on).
    /// </summary>
    private static (byte[], string)? MutateWalStructure(FuzzReplica replica, int seedIndex, byte[] wal, Random rng)
    {
        var segment = replica.Segments[seedIndex];
        var full = replica.IndexWal[segment.Index];
        if (segment.Offset == 0 && rng.Next(3) == 0)
        {
            var copy = (byte[])wal.Clone();
            int field = rng.Next(6);
            uint value = rng.Next(3) switch { 0 => 0u, 1 => uint.MaxValue, _ => (uint)rng.Next() };
            if (field == 2 && rng.Next(2) == 0)
            {
                value = (uint)(1 << rng.Next(8, 17));
            }

            BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(field * 4, 4), value);
            var header = WalHeader.Parse(copy);
            var sum = default(WalChecksum).Continue(copy.AsSpan(0, 24), header.BigEndianChecksum);
            BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(24, 4), sum.S0);
            BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(28, 4), sum.S1);
            return (copy, $"WAL header field {field} set to 0x{value:x8}, header checksum recomputed");
        }

        // Frame mutations on the whole index, then this segment's range cut out again.
        var result = MutateWalFrames(full, (int)segment.Offset + (segment.Offset == 0 ? WalHeader.Size : 0), rng, (int)(segment.Offset + segment.Wal.Length));
        if (result is null)
        {
            return null;
        }

        var (mutated, what) = result.Value;
        return (mutated[(int)segment.Offset..(int)(segment.Offset + segment.Wal.Length)], what);
    }

    /// <summary>Changes one frame header field in [from, to) of a whole WAL and recomputes the checksum chain after it.</summary>
    private static (byte[], string)? MutateWalFrames(byte[] full, int from, Random rng, int? to = null)
    {
        var header = WalHeader.TryParseValid(full);
        if (header is null)
        {
            return null;
        }

        int end = to ?? full.Length;
        int frames = (end - from) / header.FrameSize;
        if (frames <= 0)
        {
            return null;
        }

        var copy = (byte[])full.Clone();
        int frameOffset = from + rng.Next(frames) * header.FrameSize;
        string[] names = ["page number", "commit size", "salt 1", "salt 2"];
        int field = rng.Next(4);
        uint value = rng.Next(4) switch
        {
            0 => 0u,
            1 => uint.MaxValue,
            2 => (uint)rng.Next(1, 200),
            _ => (uint)rng.Next(),
        };
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(frameOffset + field * 4, 4), value);
        var sum = header.Checksum;
        for (int off = WalHeader.Size; off + header.FrameSize <= copy.Length; off += header.FrameSize)
        {
            sum = sum.Continue(copy.AsSpan(off, 8), header.BigEndianChecksum).Continue(copy.AsSpan(off + WalFrameHeader.Size, header.PageSize), header.BigEndianChecksum);
            if (off >= frameOffset)
            {
                BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(off + 16, 4), sum.S0);
                BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(off + 20, 4), sum.S1);
            }
        }

        return (copy, $"frame at {frameOffset}: {names[field]} set to 0x{value:x8}, checksums recomputed from there");
    }
}
