using System.Text;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>A shadow WAL shorter than its recorded range (found by the shadow-wal-reader fuzz target).</summary>
public class ShadowWalFuzzRegressionTests
{
    private static ReplicaException ParseFails(string yaml) =>
        Assert.Throws<ReplicaException>(() => new ConfigLoader(_ => null).Parse(yaml, "/etc/litestream.yml"));

    [Theory]
    [InlineData(0, 10)]
    [InlineData(0, 31)]
    [InlineData(1, 1000)]
    [InlineData(2, 1100)]
    public async Task Shadow_wal_shorter_than_its_recorded_range_is_SegmentCorrupt_not_EndOfStream(int segment, int keep)
    {
        // Found by the shadow-wal-reader fuzz target: a truncated shadow file made the upload
        // throw EndOfStreamException, which the syncer retries for ever instead of starting a
        // new generation as it does for SegmentCorrupt.
        using var replica = FuzzReplica.Create();
        var wal = replica.IndexWal[0];
        var bounds = replica.Segments.Where(s => s.Index == 0).Select(s => s.Offset).Append(wal.Length).ToList();
        var shadow = Path.Combine(replica.Db.Dir, "shadow.wal");
        File.WriteAllBytes(shadow, wal[..Math.Min(keep, wal.Length)]);
        var e = await Assert.ThrowsAsync<ReplicaException>(() =>
            SqliteReplica.Engine.Replication.SegmentReader.CopyVerifiedAsync(shadow, bounds[segment], bounds[segment + 1], Stream.Null, default));
        Assert.Equal(ReplicaErrorCode.SegmentCorrupt, e.Code);
    }
}
