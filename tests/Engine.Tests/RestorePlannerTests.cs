using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Litestream v0.3's restore selection rules (generation, snapshot, segments) on a replica that
/// exists only as a listing.
/// </summary>
public class RestorePlannerTests
{
    private const string GenA = "aaaaaaaaaaaaaaaa";
    private const string GenB = "bbbbbbbbbbbbbbbb";
    private const string GenC = "cccccccccccccccc";

    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 5, 15, 0, TimeSpan.Zero);

    private static DateTimeOffset At(int seconds) => T0.AddSeconds(seconds);

    /// <summary>A replica that is only a listing; opening or writing anything is a test failure.</summary>
    private sealed class FakeReplica : IReplicaClient
    {
        private readonly List<SnapshotInfo> _snapshots = new();
        private readonly List<SegmentInfo> _segments = new();
        private readonly List<string> _emptyGenerations = new();

        public string Type => "fake";

        public string Url => "fake://replica";

        public FakeReplica Snapshot(string gen, long index, int createdAtSecond)
        {
            _snapshots.Add(new SnapshotInfo(gen, index, 1000, At(createdAtSecond)));
            return this;
        }

        public FakeReplica Segment(string gen, long index, long offset, int createdAtSecond)
        {
            _segments.Add(new SegmentInfo(gen, index, offset, 100, At(createdAtSecond)));
            return this;
        }

        public FakeReplica EmptyGeneration(string gen)
        {
            _emptyGenerations.Add(gen);
            return this;
        }

        public Task CheckWritableAsync(CancellationToken ct) => throw new NotSupportedException();

        public Task<IReplicaLease> AcquireLeaseAsync(LeaseOwner owner, CancellationToken ct) => throw new NotSupportedException();

        public Task<IReadOnlyList<string>> ListGenerationsAsync(CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            IReadOnlyList<string> gens = _snapshots.Select(s => s.Generation).Concat(_segments.Select(s => s.Generation)).Concat(_emptyGenerations)
                .Distinct().Order(StringComparer.Ordinal).ToList();
            return Task.FromResult(gens);
        }

        public Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(string generation, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<SnapshotInfo>>(_snapshots.Where(s => s.Generation == generation).OrderBy(s => s.Index).ToList());

        public Task<IReadOnlyList<SegmentInfo>> ListSegmentsAsync(string generation, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<SegmentInfo>>(_segments.Where(s => s.Generation == generation).OrderBy(s => s.Index).ThenBy(s => s.Offset).ToList());

        public Task<Stream> OpenSnapshotAsync(string generation, long index, CancellationToken ct) => throw new NotSupportedException();

        public Task<Stream> OpenSegmentAsync(string generation, long index, long offset, CancellationToken ct) => throw new NotSupportedException();

        public Task<long> WriteSnapshotAsync(string generation, long index, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) => throw new NotSupportedException();

        public Task<long> WriteSegmentAsync(string generation, long index, long offset, Func<Stream, CancellationToken, Task> writeFramed, CancellationToken ct) => throw new NotSupportedException();

        public Task DeleteSnapshotAsync(string generation, long index, CancellationToken ct) => throw new NotSupportedException();

        public Task DeleteSegmentsAsync(IReadOnlyList<SegmentInfo> segments, CancellationToken ct) => throw new NotSupportedException();

        public Task DeleteGenerationAsync(string generation, CancellationToken ct) => throw new NotSupportedException();
    }

    /// <summary>
    /// One generation with snapshots at indexes 0 (t=0), 3 (t=30) and 6 (t=60) and two segments
    /// per index 0..7, index i's segments created at t=10i+1 and t=10i+5.
    /// </summary>
    private static FakeReplica Chain(string gen = GenA, int shift = 0)
    {
        var r = new FakeReplica()
            .Snapshot(gen, 0, shift + 0)
            .Snapshot(gen, 3, shift + 30)
            .Snapshot(gen, 6, shift + 60);
        for (int i = 0; i <= 7; i++)
        {
            r.Segment(gen, i, 0, shift + 10 * i + 1).Segment(gen, i, 4152, shift + 10 * i + 5);
        }

        return r;
    }

    private static Task<(RestorePlan Plan, string? Damage)> Plan(IReplicaClient client, string? generation = null, long? index = null, DateTimeOffset? timestamp = null, bool allowPartial = false) =>
        RestorePlanner.PlanAsync(client, generation, index, timestamp, allowPartial, CancellationToken.None);

    private static List<(long Index, long Offset)> Keys(RestorePlan plan) => plan.Segments.Select(s => (s.Index, s.Offset)).ToList();

    private static List<(long, long)> Range(long fromIndex, long toIndex) =>
        Enumerable.Range((int)fromIndex, (int)(toIndex - fromIndex + 1)).SelectMany(i => new[] { ((long)i, 0L), ((long)i, 4152L) }).ToList();

    [Fact]
    public async Task Latest_restore_uses_the_newest_snapshot_and_every_later_segment()
    {
        var (plan, damage) = await Plan(Chain());
        Assert.Null(damage);
        Assert.Equal(GenA, plan.Generation);
        Assert.Equal(6, plan.Snapshot.Index);
        Assert.Equal(Range(6, 7), Keys(plan));
        Assert.Equal(new long[] { 6, 7 }, plan.Indexes.ToArray());
    }

    [Fact]
    public async Task Generation_with_the_newest_object_wins_even_when_another_has_the_newest_snapshot()
    {
        // B has the newest snapshot (t=500) but A's newest segment (t=600) is newer still.
        var r = new FakeReplica()
            .Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 1).Segment(GenA, 0, 4152, 600)
            .Snapshot(GenB, 0, 500).Segment(GenB, 0, 0, 501);
        var (plan, _) = await Plan(r);
        Assert.Equal(GenA, plan.Generation);

        // Move B's newest object past A's: B wins, whatever the names' order.
        r.Segment(GenB, 0, 4152, 700);
        (plan, _) = await Plan(r);
        Assert.Equal(GenB, plan.Generation);
    }

    [Theory]
    [InlineData(GenA, GenB)]
    [InlineData(GenB, GenA)]
    public async Task A_generation_begun_in_the_second_the_previous_one_ended_is_the_newer_whatever_the_ids(string older, string newer)
    {
        // Listings give whole seconds: the new generation's snapshot and the old one's last
        // segment were both uploaded in second 100. The one begun later is the newer.
        var r = new FakeReplica()
            .Snapshot(older, 0, 0).Segment(older, 0, 0, 1).Segment(older, 0, 4152, 100)
            .Snapshot(newer, 0, 100);
        var (plan, _) = await Plan(r);
        Assert.Equal(newer, plan.Generation);
    }

    [Fact]
    public async Task Get_ReplicaGeneration_lists_last_the_generation_a_latest_restore_picks_ties_included()
    {
        var replicas = new (string Case, FakeReplica Replica)[]
        {
            ("newest object", new FakeReplica().Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 600).Snapshot(GenB, 0, 500)),
            ("ended in the same second, begun later", new FakeReplica().Snapshot(GenB, 0, 0).Segment(GenB, 0, 0, 100).Snapshot(GenA, 0, 100)),
            ("begun and ended in the same seconds", new FakeReplica().Snapshot(GenB, 0, 0).Segment(GenB, 0, 0, 100).Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 100)),
            ("three generations", new FakeReplica().Snapshot(GenC, 0, 0).Segment(GenC, 0, 0, 100).Snapshot(GenB, 0, 0).Segment(GenB, 0, 0, 100).Snapshot(GenA, 0, 50)),
        };
        foreach (var (name, replica) in replicas)
        {
            var (plan, _) = await Plan(replica);
            var listed = await ReplicaCatalog.ListGenerationsAsync(replica, CancellationToken.None);
            Assert.True(plan.Generation == listed[^1].Generation, $"{name}: restore picks {plan.Generation}, the listing ends with {listed[^1].Generation}");
        }

        // On a full tie, the first by id (the one Litestream v0.3 restores).
        var (tie, _) = await Plan(replicas[2].Replica);
        Assert.Equal(GenA, tie.Generation);
    }

    [Fact]
    public async Task Generation_choice_does_not_depend_on_the_id_order()
    {
        var r = new FakeReplica()
            .Snapshot(GenC, 0, 0).Segment(GenC, 0, 0, 100)
            .Snapshot(GenA, 0, 10).Segment(GenA, 0, 0, 20);
        var (plan, _) = await Plan(r);
        Assert.Equal(GenC, plan.Generation);
    }

    [Fact]
    public async Task Latest_restore_chooses_the_snapshot_by_creation_time_not_by_index()
    {
        var r = new FakeReplica()
            .Snapshot(GenA, 5, 10)
            .Snapshot(GenA, 3, 20)
            .Segment(GenA, 3, 0, 21).Segment(GenA, 4, 0, 22).Segment(GenA, 5, 0, 23);
        var (plan, _) = await Plan(r);
        Assert.Equal(3, plan.Snapshot.Index);
        Assert.Equal(new List<(long, long)> { (3, 0), (4, 0), (5, 0) }, Keys(plan));
    }

    [Theory]
    [InlineData(0L, 0L)]
    [InlineData(2L, 0L)]
    [InlineData(3L, 3L)]
    [InlineData(5L, 3L)]
    [InlineData(6L, 6L)]
    [InlineData(7L, 6L)]
    public async Task Index_restore_uses_the_highest_snapshot_at_or_below_it_and_stops_after_that_index(long index, long expectedSnapshot)
    {
        var (plan, damage) = await Plan(Chain(), index: index);
        Assert.Null(damage);
        Assert.Equal(expectedSnapshot, plan.Snapshot.Index);
        Assert.Equal(Range(expectedSnapshot, index), Keys(plan));
        Assert.Equal(index, plan.TargetIndex);
    }

    [Theory]
    [InlineData(8L)]
    [InlineData(100L)]
    [InlineData(-1L)]
    public async Task Index_restore_fails_with_NoMatchingBackup_when_the_index_is_not_in_the_generation(long index)
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(Chain(), index: index));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
    }

    [Fact]
    public async Task Index_restore_fails_with_SnapshotMissing_when_no_snapshot_is_at_or_below_it()
    {
        var r = new FakeReplica().Snapshot(GenA, 3, 30).Segment(GenA, 1, 0, 1).Segment(GenA, 3, 0, 31).Segment(GenA, 4, 0, 41);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(r, index: 2));
        Assert.Equal(ReplicaErrorCode.SnapshotMissing, e.Code);
    }

    [Theory]
    [InlineData(0, 0L, 1)] // only the first segment of index 0 is at or before t=0
    [InlineData(29, 0L, 6)] // indexes 0..2 complete
    [InlineData(33, 3L, 1)] // snapshot 3 (t=30), segment (3,0) at t=31
    [InlineData(45, 3L, 4)] // (3,*) and (4,*)
    [InlineData(59, 3L, 6)]
    [InlineData(60, 6L, 0)] // snapshot 6 exists at t=60 but its first segment only at t=61
    [InlineData(66, 6L, 2)]
    [InlineData(1000, 6L, 4)]
    public async Task Timestamp_restore_uses_the_newest_snapshot_created_by_then_and_segments_created_by_then(int atSecond, long expectedSnapshot, int expectedSegments)
    {
        var r = Chain();
        if (atSecond == 0)
        {
            // Shift the first segment to t=0 so that "nothing after T" is observable at the start.
            r = new FakeReplica().Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 0).Segment(GenA, 0, 4152, 5).Segment(GenA, 1, 0, 11);
        }

        var t = At(atSecond);
        var (plan, damage) = await Plan(r, timestamp: t);
        Assert.Null(damage);
        Assert.Equal(expectedSnapshot, plan.Snapshot.Index);
        Assert.True(plan.Snapshot.CreatedAt <= t);
        if (atSecond != 60)
        {
            Assert.Equal(expectedSegments, plan.Segments.Count);
            Assert.All(plan.Segments, s => Assert.True(s.CreatedAt <= t, $"{s.Index}/{s.Offset} at {s.CreatedAt:O} is after {t:O}"));
        }

        Assert.All(plan.Segments, s => Assert.True(s.Index >= expectedSnapshot));
    }

    [Fact]
    public async Task Timestamp_restore_keeps_the_first_segment_uploaded_right_after_the_snapshot()
    {
        // Snapshot 6 at t=60 is only consistent with (6, 0), uploaded a second later.
        var (plan, _) = await Plan(Chain(), timestamp: At(60));
        Assert.Equal(6, plan.Snapshot.Index);
        Assert.Equal(new List<(long, long)> { (6, 0) }, Keys(plan));
    }

    [Fact]
    public async Task Timestamp_restore_stops_at_the_first_segment_created_after_the_timestamp()
    {
        // Litestream walks segments in (index, offset) order and stops (break, not continue).
        var r = new FakeReplica()
            .Snapshot(GenA, 0, 0)
            .Segment(GenA, 0, 0, 0)
            .Segment(GenA, 0, 4152, 50)
            .Segment(GenA, 0, 8304, 20)
            .Segment(GenA, 1, 0, 21);
        var (plan, _) = await Plan(r, timestamp: At(30));
        Assert.Equal(new List<(long, long)> { (0, 0) }, Keys(plan));
    }

    [Fact]
    public async Task Index_restore_stops_at_the_first_segment_of_a_higher_index()
    {
        var (plan, _) = await Plan(Chain(), index: 4);
        Assert.DoesNotContain(plan.Segments, s => s.Index > 4);
        Assert.Contains(plan.Segments, s => s.Index == 4);
    }

    [Fact]
    public async Task Timestamp_restore_skips_a_generation_created_after_the_timestamp()
    {
        // B starts at t=1000 and is the newest overall; at t=500 only A had begun.
        var r = Chain(GenA);
        r.Snapshot(GenB, 0, 1000).Segment(GenB, 0, 0, 1001).Segment(GenB, 0, 4152, 1500);
        var (latest, _) = await Plan(r);
        Assert.Equal(GenB, latest.Generation);

        var (plan, _) = await Plan(r, timestamp: At(500));
        Assert.Equal(GenA, plan.Generation);
        Assert.Equal(6, plan.Snapshot.Index);
    }

    [Fact]
    public async Task Timestamp_restore_before_every_generation_fails_with_NoMatchingBackup()
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(Chain(shift: 100), timestamp: At(50)));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
    }

    [Fact]
    public async Task Timestamp_restore_fails_with_SnapshotMissing_when_the_generation_had_no_snapshot_by_then()
    {
        // The generation's first object is a segment (t=1); its snapshot came later (t=100).
        var r = new FakeReplica().Segment(GenA, 0, 0, 1).Snapshot(GenA, 0, 100).Segment(GenA, 0, 4152, 101);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(r, timestamp: At(50)));
        Assert.Equal(ReplicaErrorCode.SnapshotMissing, e.Code);
    }

    [Fact]
    public async Task Generation_option_restricts_the_choice_to_that_generation()
    {
        var r = Chain(GenA);
        r.Snapshot(GenB, 0, 1000).Segment(GenB, 0, 0, 1001);
        var (plan, _) = await Plan(r, generation: GenA);
        Assert.Equal(GenA, plan.Generation);
        Assert.All(plan.Segments, s => Assert.Equal(GenA, s.Generation));
        Assert.Equal(GenA, plan.Snapshot.Generation);

        (plan, _) = await Plan(r, generation: GenB);
        Assert.Equal(GenB, plan.Generation);
    }

    [Fact]
    public async Task Generation_option_naming_an_absent_generation_fails_with_NoMatchingBackup()
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(Chain(GenA), generation: GenC));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
    }

    [Theory]
    [InlineData("AAAAAAAAAAAAAAAA")]
    [InlineData("aaaa")]
    [InlineData("../../etc/passwd")]
    public async Task Generation_option_that_is_not_a_generation_id_fails_with_InvalidArgument(string generation)
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(Chain(GenA), generation: generation));
        Assert.Equal(ReplicaErrorCode.InvalidArgument, e.Code);
    }

    [Fact]
    public async Task Index_and_timestamp_together_fail_with_InvalidArgument()
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(Chain(), index: 1, timestamp: At(10)));
        Assert.Equal(ReplicaErrorCode.InvalidArgument, e.Code);
    }

    [Fact]
    public async Task An_empty_replica_or_one_with_only_empty_generations_fails_with_NoMatchingBackup()
    {
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(new FakeReplica()));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
        e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(new FakeReplica().EmptyGeneration(GenA)));
        Assert.Equal(ReplicaErrorCode.NoMatchingBackup, e.Code);
    }

    [Fact]
    public async Task An_empty_generation_is_never_chosen()
    {
        var r = Chain(GenA).EmptyGeneration(GenB);
        var (plan, _) = await Plan(r);
        Assert.Equal(GenA, plan.Generation);
    }

    [Fact]
    public async Task A_generation_without_snapshots_fails_with_SnapshotMissing()
    {
        var r = new FakeReplica().Segment(GenA, 0, 0, 1).Segment(GenA, 0, 4152, 2);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(r));
        Assert.Equal(ReplicaErrorCode.SnapshotMissing, e.Code);
    }

    [Fact]
    public async Task A_snapshot_without_later_segments_is_a_snapshot_only_plan()
    {
        var r = new FakeReplica().Segment(GenA, 0, 0, 1).Snapshot(GenA, 1, 10);
        var (plan, damage) = await Plan(r);
        Assert.Null(damage);
        Assert.Equal(1, plan.Snapshot.Index);
        Assert.Empty(plan.Segments);
    }

    [Fact]
    public async Task A_missing_index_fails_with_SegmentMissing()
    {
        var r = new FakeReplica().Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 1).Segment(GenA, 2, 0, 3);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(r));
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
        Assert.Contains("00000001_00000000.wal.lz4", e.Target);
    }

    [Fact]
    public async Task An_index_without_its_offset_0_segment_fails_with_SegmentMissing()
    {
        var r = new FakeReplica().Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 1).Segment(GenA, 1, 4152, 2).Segment(GenA, 2, 0, 3);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(r));
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
    }

    [Fact]
    public async Task The_snapshot_index_without_segments_fails_with_SegmentMissing_when_later_indexes_exist()
    {
        var r = new FakeReplica().Snapshot(GenA, 1, 0).Segment(GenA, 2, 0, 3);
        var e = await Assert.ThrowsAsync<ReplicaException>(() => Plan(r));
        Assert.Equal(ReplicaErrorCode.SegmentMissing, e.Code);
    }

    [Fact]
    public async Task With_allow_partial_a_missing_index_cuts_the_plan_before_it_and_reports_the_damage()
    {
        var r = new FakeReplica().Snapshot(GenA, 0, 0).Segment(GenA, 0, 0, 1).Segment(GenA, 0, 4152, 2).Segment(GenA, 2, 0, 3).Segment(GenA, 3, 0, 4);
        var (plan, damage) = await Plan(r, allowPartial: true);
        Assert.NotNull(damage);
        Assert.Contains("00000001", damage);
        Assert.Equal(new List<(long, long)> { (0, 0), (0, 4152) }, Keys(plan));
    }

    [Fact]
    public async Task Segments_below_the_snapshot_index_are_not_applied()
    {
        var (plan, _) = await Plan(Chain(), index: 4);
        Assert.Equal(3, plan.Snapshot.Index);
        Assert.DoesNotContain(plan.Segments, s => s.Index < 3);
    }

    [Fact]
    public async Task Plan_reports_its_stored_size()
    {
        var (plan, _) = await Plan(Chain());
        Assert.Equal(1000 + 4 * 100, plan.TotalStoredBytes);
    }

    [Fact]
    public async Task A_cancelled_token_stops_planning()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RestorePlanner.PlanAsync(Chain(), null, null, null, false, cts.Token));
    }
}
