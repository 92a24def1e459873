using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Replicas.File;

namespace SqliteReplica.Engine.Tests;

/// <summary>Object names of the Litestream v0.3 layout and replica URLs.</summary>
public class ReplicaNamesTests
{
    [Theory]
    [InlineData(0L, "00000000")]
    [InlineData(1L, "00000001")]
    [InlineData(10L, "0000000a")]
    [InlineData(4152L, "00001038")]
    [InlineData(16512L, "00004080")]
    [InlineData(0x7FFFFFFFL, "7fffffff")]
    [InlineData(0xFFFFFFFFL, "ffffffff")]
    [InlineData(0x100000000L, "100000000")]
    [InlineData(0x11A6BFA58L, "11a6bfa58")]
    [InlineData(0x7FFFFFFFFFFFFFFFL, "7fffffffffffffff")]
    public void Hex8_formats_like_gos_percent_08x(long value, string expected)
    {
        Assert.Equal(expected, ReplicaNames.Hex8(value));
    }

    [Fact]
    public void Snapshot_and_segment_names_use_lowercase_percent_08x()
    {
        Assert.Equal("00000000.snapshot.lz4", ReplicaNames.SnapshotName(0));
        Assert.Equal("0000001a.snapshot.lz4", ReplicaNames.SnapshotName(26));
        Assert.Equal("00000000_00000000.wal.lz4", ReplicaNames.SegmentName(0, 0));
        Assert.Equal("00000000_00004080.wal.lz4", ReplicaNames.SegmentName(0, 16512));
        Assert.Equal("00000001_00001038.wal.lz4", ReplicaNames.SegmentName(1, 4152));
        Assert.Equal("000012c3_11a6bfa58.wal.lz4", ReplicaNames.SegmentName(0x12c3, 0x11a6bfa58));
    }

    [Theory]
    [InlineData("00000000.snapshot.lz4", 0L)]
    [InlineData("0000000a.snapshot.lz4", 10L)]
    [InlineData("7fffffff.snapshot.lz4", 0x7FFFFFFFL)]
    public void TryParseSnapshot_accepts_litestream_names(string name, long index)
    {
        Assert.True(ReplicaNames.TryParseSnapshot(name, out var parsed));
        Assert.Equal(index, parsed);
        Assert.Equal(name, ReplicaNames.SnapshotName(parsed));
    }

    [Theory]
    [InlineData("0000000A.snapshot.lz4")] // uppercase
    [InlineData("000000a.snapshot.lz4")] // 7 digits
    [InlineData("00000000a.snapshot.lz4")] // 9 digits
    [InlineData("0000000a.snapshot.lz4.tmp")]
    [InlineData("0000000a.snapshot")]
    [InlineData("0000000a.SNAPSHOT.LZ4")]
    [InlineData("0000000g.snapshot.lz4")]
    [InlineData(" 0000000a.snapshot.lz4")]
    [InlineData("80000000.snapshot.lz4")] // above the index cap
    [InlineData("ffffffff.snapshot.lz4")]
    [InlineData("00000000_00000000.wal.lz4")]
    public void TryParseSnapshot_rejects_other_names(string name)
    {
        Assert.False(ReplicaNames.TryParseSnapshot(name, out _));
    }

    [Theory]
    [InlineData("00000000_00000000.wal.lz4", 0L, 0L)]
    [InlineData("00000000_00004080.wal.lz4", 0L, 16512L)]
    [InlineData("00000001_00001038.wal.lz4", 1L, 4152L)]
    [InlineData("7fffffff_ffffffff.wal.lz4", 0x7FFFFFFFL, 0xFFFFFFFFL)]
    [InlineData("000012c3_11a6bfa58.wal.lz4", 0x12C3L, 0x11A6BFA58L)] // 9 digits: past 4 GiB
    [InlineData("00000002_123456789abc.wal.lz4", 2L, 0x123456789ABCL)] // 12 digits
    [InlineData("00000002_7fffffffffffffff.wal.lz4", 2L, 0x7FFFFFFFFFFFFFFFL)] // 16 digits
    public void TryParseSegment_accepts_8_to_16_digit_offsets(string name, long index, long offset)
    {
        Assert.True(ReplicaNames.TryParseSegment(name, out var i, out var o));
        Assert.Equal(index, i);
        Assert.Equal(offset, o);
        Assert.Equal(name, ReplicaNames.SegmentName(i, o));
    }

    [Theory]
    [InlineData("00000001_0000000001000.wal.lz4")] // zero-padded to 13: does not round-trip through %08x
    [InlineData("00000001_000000001.wal.lz4")] // 9 digits with a leading zero
    [InlineData("00000001_0000000000001038.wal.lz4")] // zero-padded to 16
    [InlineData("00000001_0000103A.wal.lz4")] // uppercase offset
    [InlineData("0000000A_00001038.wal.lz4")] // uppercase index
    [InlineData("0000001_00001038.wal.lz4")] // 7-digit index
    [InlineData("000000001_00001038.wal.lz4")] // 9-digit index
    [InlineData("00000001_0001038.wal.lz4")] // 7-digit offset
    [InlineData("00000001_100000000000000000.wal.lz4")] // 18-digit offset
    [InlineData("00000001_10000000000000000.wal.lz4")] // 17-digit offset
    [InlineData("00000001_8000000000000000.wal.lz4")] // 16 digits but above long.MaxValue
    [InlineData("00000001_ffffffffffffffff.wal.lz4")]
    [InlineData("80000000_00000000.wal.lz4")] // index above the cap
    [InlineData("00000001_00001038.wal.lz4.tmp")]
    [InlineData("00000001_00001038.wal")]
    [InlineData("00000001-00001038.wal.lz4")]
    [InlineData("00000001.snapshot.lz4")]
    [InlineData("")]
    public void TryParseSegment_rejects_other_names(string name)
    {
        Assert.False(ReplicaNames.TryParseSegment(name, out _, out _));
    }

    [Theory]
    [InlineData("f0d42cc5b4b59191", true)]
    [InlineData("0000000000000000", true)]
    [InlineData("F0D42CC5B4B59191", false)]
    [InlineData("f0d42cc5b4b5919", false)]
    [InlineData("f0d42cc5b4b591911", false)]
    [InlineData("f0d42cc5b4b5919g", false)]
    [InlineData("f0d42cc5-4b59191", false)]
    [InlineData("", false)]
    public void IsGeneration_accepts_exactly_16_lowercase_hex_digits(string name, bool expected)
    {
        Assert.Equal(expected, ReplicaNames.IsGeneration(name));
    }

    [Fact]
    public void New_generation_ids_are_valid_and_differ()
    {
        var ids = Enumerable.Range(0, 50).Select(_ => ReplicaNames.NewGeneration()).ToList();
        Assert.All(ids, id => Assert.True(ReplicaNames.IsGeneration(id), id));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void FromUrl_maps_an_absolute_file_url_to_that_directory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sr-url-" + Guid.NewGuid().ToString("N")[..8], "replica");
        var client = ReplicaClientFactory.FromUrl("file://" + dir);
        var file = Assert.IsType<FileReplicaClient>(client);
        Assert.Equal(dir, file.Root);
        Assert.Equal("file", client.Type);
        Assert.Equal("file://" + dir, client.Url);
        Assert.False(Directory.Exists(dir)); // naming a replica creates nothing
    }

    [Fact]
    public void FromUrl_reads_a_host_as_the_first_path_component_as_litestream_does()
    {
        var client = Assert.IsType<FileReplicaClient>(ReplicaClientFactory.FromUrl("file://a/b"));
        Assert.Equal("/a/b", client.Root);
        Assert.Equal("/relative", Assert.IsType<FileReplicaClient>(ReplicaClientFactory.FromUrl("file://relative")).Root);
    }

    [Fact]
    public void FromUrl_drops_a_trailing_slash_and_unescapes_the_path()
    {
        Assert.Equal("/backups/app", Assert.IsType<FileReplicaClient>(ReplicaClientFactory.FromUrl("file:///backups/app/")).Root);
        Assert.Equal("/backups/my app", Assert.IsType<FileReplicaClient>(ReplicaClientFactory.FromUrl("file:///backups/my%20app")).Root);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("not a url")]
    [InlineData("backups/app")]
    [InlineData("/backups/app")] // a plain path is not a URL
    [InlineData("s3:///path")] // no bucket
    [InlineData("gcs://bucket/path")]
    [InlineData("sftp://user@host/path")]
    [InlineData("ftp://x")]
    [InlineData("http://example.com/replica")]
    [InlineData("file:///")]
    public void FromUrl_refuses_unusable_urls_with_InvalidReplicaUrl(string url)
    {
        var e = Assert.Throws<ReplicaException>(() => ReplicaClientFactory.FromUrl(url));
        Assert.Equal(ReplicaErrorCode.InvalidReplicaUrl, e.Code);
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Theory]
    [InlineData("s3://bucket/a/b", "s3://bucket/a/b")]
    [InlineData("s3://bucket//a/./b/", "s3://bucket/a/b")] // key prefix cleaned like Go's path.Join
    [InlineData("s3://bucket.localhost:9000/db", "s3://bucket/db")] // B.localhost[:port]: bucket B, local endpoint
    public void FromUrl_maps_an_s3_url_to_an_s3_client_of_that_bucket_and_prefix(string url, string expected)
    {
        var client = ReplicaClientFactory.FromUrl(url);
        try
        {
            Assert.Equal("s3", client.Type);
            Assert.Equal(expected, client.Url);
        }
        finally
        {
            (client as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void FromDirectory_refuses_an_empty_path()
    {
        Assert.Equal(ReplicaErrorCode.InvalidArgument, Assert.Throws<ReplicaException>(() => ReplicaClientFactory.FromDirectory(" ")).Code);
    }
}
