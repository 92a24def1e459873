using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.S3;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Go's path.Join / path.Clean, which Litestream uses to build S3 object keys
/// (spec §1.4: <c>path.Join(path, "generations", gen, "snapshots"|"wal", name)</c>).
/// </summary>
public class GoPathTests
{
    private const string Gen = "e4fd7552ebbd062b";

    [Theory]
    [InlineData(new[] { "", "generations" }, "generations")]
    [InlineData(new[] { "/db", "generations", "x" }, "/db/generations/x")]
    [InlineData(new[] { "a//b/", "../c" }, "a/c")]
    [InlineData(new[] { "a/b/" }, "a/b")]
    [InlineData(new[] { "a", "b/" }, "a/b")]
    [InlineData(new[] { "a", "b" }, "a/b")]
    [InlineData(new[] { "a", "", "b" }, "a/b")]
    [InlineData(new[] { "a/", "/b" }, "a/b")]
    [InlineData(new[] { "/" }, "/")]
    [InlineData(new[] { "/", "generations" }, "/generations")]
    [InlineData(new[] { "//db//", "generations" }, "/db/generations")]
    [InlineData(new[] { ".", "generations" }, "generations")]
    [InlineData(new[] { "./a", "./b" }, "a/b")]
    [InlineData(new[] { "..", "x" }, "../x")]
    [InlineData(new[] { "/..", "x" }, "/x")]
    [InlineData(new[] { "a", "../../b" }, "../b")]
    [InlineData(new[] { "a", ".." }, ".")]
    [InlineData(new[] { "." }, ".")]
    [InlineData(new[] { "a.db", "generations" }, "a.db/generations")]
    [InlineData(new[] { "..a", "b.." }, "..a/b..")]
    public void Join_matches_go(string[] parts, string expected)
    {
        Assert.Equal(expected, GoPath.Join(parts));
    }

    [Fact]
    public void Join_of_nothing_is_empty()
    {
        Assert.Equal("", GoPath.Join());
        Assert.Equal("", GoPath.Join(""));
        Assert.Equal("", GoPath.Join("", ""));
    }

    [Theory]
    [InlineData("", ".")]
    [InlineData(".", ".")]
    [InlineData("/", "/")]
    [InlineData("//", "/")]
    [InlineData("a", "a")]
    [InlineData("a/", "a")]
    [InlineData("a/./b", "a/b")]
    [InlineData("//a//b//", "/a/b")]
    [InlineData("a/..", ".")]
    [InlineData("a/../..", "..")]
    [InlineData("a/b/../../..", "..")]
    [InlineData("../../a", "../../a")]
    [InlineData("/../a", "/a")]
    [InlineData("/../..", "/")]
    [InlineData("a/../b/../c", "c")]
    [InlineData("abc/def/../ghi", "abc/ghi")]
    [InlineData("./.", ".")]
    [InlineData(".../a", ".../a")]
    public void Clean_matches_go(string path, string expected)
    {
        Assert.Equal(expected, GoPath.Clean(path));
    }

    // ---- the S3 key layout (spec §1.4) --------------------------------------------------------

    /// <summary>The key as Litestream builds it: path.Join(path, "generations", gen, dir, name).</summary>
    private static string Key(string path, string dir, string name) => GoPath.Join(path, "generations", Gen, dir, name);

    [Theory]
    [InlineData("backups/s.db", "backups/s.db/generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4")]
    [InlineData("", "generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4")]
    [InlineData("/db", "/db/generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4")] // a leading '/' is kept
    [InlineData("backups/s.db/", "backups/s.db/generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4")]
    [InlineData("backups//s.db", "backups/s.db/generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4")]
    [InlineData("./backups/x/../s.db", "backups/s.db/generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4")]
    public void Snapshot_keys_follow_litestreams_layout(string path, string expected)
    {
        Assert.Equal(expected, Key(path, "snapshots", ReplicaNames.SnapshotName(0)));
    }

    [Fact]
    public void Wal_segment_keys_follow_litestreams_layout()
    {
        Assert.Equal("backups/s.db/generations/e4fd7552ebbd062b/wal/00000000_00000000.wal.lz4", Key("backups/s.db", "wal", ReplicaNames.SegmentName(0, 0)));
        Assert.Equal("backups/s.db/generations/e4fd7552ebbd062b/wal/00000001_00001038.wal.lz4", Key("backups/s.db", "wal", ReplicaNames.SegmentName(1, 4152)));
        Assert.Equal("generations/e4fd7552ebbd062b/wal/00000000_00004080.wal.lz4", Key("", "wal", ReplicaNames.SegmentName(0, 16512)));
    }

    [Fact]
    public void Prefix_is_cleaned_once_and_joins_the_same_way()
    {
        // S3ReplicaClient cleans the configured path once, then joins every key onto it.
        foreach (var path in new[] { "", "/", "/db", "a//b/", "backups/s.db", "./x/../y" })
        {
            var prefix = GoPath.Join(path);
            Assert.Equal(GoPath.Join(path, "generations", Gen), GoPath.Join(prefix, "generations", Gen));
        }
    }

    [Theory]
    [InlineData("backups/s.db", "backups/s.db/generations/")]
    [InlineData("", "generations/")]
    [InlineData("/", "/generations/")]
    [InlineData("/db/", "/db/generations/")]
    public void Generation_listing_prefix_ends_in_one_slash(string path, string expected)
    {
        Assert.Equal(expected, GoPath.Join(GoPath.Join(path), "generations") + "/");
    }

    [Fact]
    public void Sample_config_replica_gives_the_expected_keys()
    {
        var yaml = """
            dbs:
              - path: /pb/pb_data/data.db
                replicas:
                  - type: s3
                    bucket: my-pb-backups
                    path: taxwalaai/data.db
                  - url: s3://other-bucket/a/b/
                    name: by-url
            """;
        var replicas = new ConfigLoader(_ => null).Parse(yaml, "test.yml").Databases[0].Replicas;

        Assert.Equal("taxwalaai/data.db/generations/e4fd7552ebbd062b/snapshots/00000000.snapshot.lz4",
            Key(replicas[0].Path!, "snapshots", ReplicaNames.SnapshotName(0)));
        Assert.Equal("a/b/generations/e4fd7552ebbd062b/wal/00000000_00000000.wal.lz4",
            Key(replicas[1].Path!, "wal", ReplicaNames.SegmentName(0, 0)));
    }

    [Theory]
    [InlineData("taxwalaai/data.db", "s3://my-pb-backups/taxwalaai/data.db")]
    [InlineData("/taxwalaai//data.db/", "s3://my-pb-backups/taxwalaai/data.db")]
    [InlineData("", "s3://my-pb-backups/")]
    public void S3_client_url_shows_the_cleaned_prefix(string path, string expected)
    {
        using var client = new S3ReplicaClient(new S3ReplicaOptions
        {
            Bucket = "my-pb-backups",
            Path = path,
            Endpoint = "https://example.r2.cloudflarestorage.com",
            Region = "auto",
            Credentials = new Credentials("id", "secret"),
        }, SqliteReplica.Engine.Logging.NullEngineLog.Instance);

        Assert.Equal(expected, client.Url);
    }
}
