using System.Diagnostics;
using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Lz4;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Engine.Verification;

/// <summary>What a drill checks and against what.</summary>
public sealed record DrillOptions
{
    /// <summary>The live database to compare with (null: the replica is checked alone and the result cannot be Passed).</summary>
    public string? LiveDatabasePath { get; init; }

    /// <summary>The live database's meta directory (where a running replicator keeps its shadow WAL).</summary>
    public string? MetaPath { get; init; }

    /// <summary>An explicit point to restore (then the live comparison is skipped: the live database is elsewhere in time).</summary>
    public string? Generation { get; init; }

    public long? Index { get; init; }

    public long? Offset { get; init; }

    /// <summary>How long the replica may take to hold the live point (and how stale it may be).</summary>
    public TimeSpan MaxLag { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Where the scratch restore goes (default: the system temp directory).</summary>
    public string? ScratchDirectory { get; init; }

    public bool KeepRestoredDatabase { get; init; }
}

/// <summary>
/// The restore drill. It restores into scratch, runs <c>PRAGMA integrity_check</c> and, given the
/// live database, compares every table's exact content at the same logical point:
/// <list type="bullet">
/// <item>With a replicator on this box, the live point is the WAL position the live database is at
/// (pinned by <see cref="LiveSnapshot"/>); the drill waits up to MaxLag for the replica to hold
/// that position, restores exactly up to it and compares.</item>
/// <item>Without one (or if the WAL has moved to an incarnation the replicator never saw), the
/// replica's newest state is compared with the live database as it is: equal passes; different
/// means the replica is stale and fails.</item>
/// </list>
/// </summary>
public static class RestoreDrill
{
    public static async Task<DrillResult> RunAsync(IReplicaClient client, DrillOptions options, IEngineLog log, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var checks = new List<DrillCheck>();
        var scratchDir = Path.Combine(options.ScratchDirectory ?? Path.GetTempPath(), "sqlitereplica-drill-" + Guid.NewGuid().ToString("N")[..12]);
        var restoredPath = Path.Combine(scratchDir, "restored.db");
        LiveSnapshot? live = null;
        TimeSpan? lag = null;
        RestoreResult? restored = null;
        bool explicitPoint = options.Generation is not null || options.Index is not null;
        try
        {
            // 1. The live point.
            if (options.LiveDatabasePath is { } livePath)
            {
                var sw = Stopwatch.StartNew();
                // Through a symbolic link, SQLite's -wal and -shm are beside the target: read those.
                var liveFile = Capture.DatabasePath.Resolve(livePath);
                live = LiveSnapshot.Take(liveFile, options.MetaPath ?? Capture.MetaDirectory.DefaultFor(liveFile), ct);
                if (explicitPoint)
                {
                    // Compared as it is with the explicit point (e.g. a restored copy piped in).
                    live = live with { Position = null };
                }

                log.Verbose($"drill: live database '{livePath}' read at {(live.Position?.ToString() ?? "an unmapped point")}");
                if (live.Position is { } point)
                {
                    TimeSpan? waited;
                    try
                    {
                        waited = await WaitForReplicaAsync(client, point, options.MaxLag, ct).ConfigureAwait(false);
                    }
                    catch (ReplicaException e) when (e.Code is not ReplicaErrorCode.Cancelled)
                    {
                        checks.Add(new DrillCheck("Freshness", DrillOutcome.Failed, $"the replica could not be read while waiting for the live point {point}: {e.Code}: {e.Message}", sw.Elapsed));
                        return Finish(client, options, checks, live, null, null, null, total.Elapsed);
                    }

                    lag = waited;
                    checks.Add(waited is null
                        ? new DrillCheck("Freshness", DrillOutcome.Failed, $"the replica did not reach the live point {point} within {options.MaxLag.TotalSeconds:F0} s: it is stale or replication is stuck", sw.Elapsed)
                        : new DrillCheck("Freshness", DrillOutcome.Passed, $"the replica held the live point {point} after {waited.Value.TotalSeconds:F1} s", sw.Elapsed));
                }
            }

            // 2. The restore (exactly to the live point when there is one).
            var restoreOptions = new RestoreOptions
            {
                OutputPath = restoredPath,
                Generation = options.Generation ?? live?.Position?.Generation,
                Index = options.Index ?? live?.Position?.Index,
                Offset = options.Offset ?? live?.Position?.Offset,
                QuickCheck = false,
            };
            if (checks.Any(c => c.Outcome == DrillOutcome.Failed))
            {
                // Stale: still restore the newest state, to report what the replica holds.
                restoreOptions = restoreOptions with { Generation = null, Index = null, Offset = null };
            }

            var rsw = Stopwatch.StartNew();
            try
            {
                restored = await new Restorer(client, log).RestoreAsync(restoreOptions, null, ct).ConfigureAwait(false);
                checks.Insert(0, new DrillCheck("Restore", DrillOutcome.Passed, $"every object of the chain verified; restored {restored.Position} ({restored.SegmentsApplied} segments) to scratch", rsw.Elapsed));
            }
            catch (ReplicaException e) when (e.Code is not ReplicaErrorCode.Cancelled)
            {
                checks.Insert(0, new DrillCheck("Restore", DrillOutcome.Failed, $"{e.Code}: {e.Message}", rsw.Elapsed));
                return Finish(client, options, checks, live, lag, null, null, total.Elapsed);
            }

            // 3. Integrity.
            var isw = Stopwatch.StartNew();
            var integrity = IntegrityCheck(restoredPath);
            checks.Add(new DrillCheck("Integrity", integrity == "ok" ? DrillOutcome.Passed : DrillOutcome.Failed, $"PRAGMA integrity_check: {integrity}", isw.Elapsed));

            // 4. Content.
            var csw = Stopwatch.StartNew();
            if (live is null)
            {
                checks.Add(new DrillCheck("Content", DrillOutcome.Skipped, "not compared: no live database was given (-DatabasePath)", TimeSpan.Zero));
            }
            else
            {
                var copy = DigestOf(restoredPath, ct);
                var diffs = live.Digest.Differences(copy);
                if (diffs.Count == 0)
                {
                    checks.Add(new DrillCheck("Content", DrillOutcome.Passed,
                        $"every table equal at {(live.Position is null ? "the replica's newest point" : live.Position.ToString())} ({live.Digest.Tables.Count} tables, {live.Digest.Tables.Values.Sum(t => t.Rows)} rows)", csw.Elapsed));
                    lag ??= TimeSpan.Zero;
                }
                else
                {
                    bool stale = !explicitPoint && (live.Position is null || checks.Any(c => c.Name == "Freshness" && c.Outcome == DrillOutcome.Failed));
                    if (live.Position is null && !explicitPoint)
                    {
                        var newest = await NewestObjectAsync(client, restored.Generation, ct).ConfigureAwait(false);
                        lag = live.NewestCommitAt > newest ? live.NewestCommitAt - newest : TimeSpan.Zero;
                        checks.Add(new DrillCheck("Freshness", lag <= options.MaxLag ? DrillOutcome.Passed : DrillOutcome.Failed,
                            $"no replicator state maps the live WAL; the live database's newest commit ({live.NewestCommitAt:u}) is {lag.Value.TotalSeconds:F0} s newer than the replica's newest object ({newest:u})", TimeSpan.Zero));
                    }

                    checks.Add(new DrillCheck("Content", DrillOutcome.Failed,
                        $"{(stale ? "the replica is stale: " : "")}restored content differs from the live database in {string.Join(", ", diffs.Take(10))}{(diffs.Count > 10 ? ", ..." : "")}", csw.Elapsed));
                }
            }

            return Finish(client, options, checks, live, lag, restored, restoredPath, total.Elapsed);
        }
        finally
        {
            if (!options.KeepRestoredDatabase)
            {
                try
                {
                    Directory.Delete(scratchDir, recursive: true);
                }
                catch (DirectoryNotFoundException)
                {
                }
                catch (IOException e)
                {
                    log.Warning($"drill: could not remove the scratch directory '{scratchDir}': {e.Message}");
                }
            }
        }
    }

    private static DrillResult Finish(IReplicaClient client, DrillOptions options, List<DrillCheck> checks, LiveSnapshot? live, TimeSpan? lag, RestoreResult? restored, string? restoredPath, TimeSpan elapsed)
    {
        var failed = checks.Where(c => c.Outcome == DrillOutcome.Failed).ToList();
        var skipped = checks.Where(c => c.Outcome == DrillOutcome.Skipped).ToList();
        string status = failed.Count > 0 ? DrillOutcome.Failed : skipped.Count > 0 ? DrillOutcome.Skipped : DrillOutcome.Passed;
        string reason = status switch
        {
            DrillOutcome.Failed => string.Join("; ", failed.Select(c => $"{c.Name}: {c.Detail}")),
            DrillOutcome.Skipped => string.Join("; ", skipped.Select(c => $"{c.Name} {c.Detail}")),
            _ => "restored, integrity ok, content equal to the live database",
        };
        return new DrillResult
        {
            ReplicaUrl = client.Url,
            DatabasePath = options.LiveDatabasePath,
            Status = status,
            Reason = reason,
            Checks = checks,
            RestoredPosition = restored?.Position.ToString(),
            RestoredTo = restored?.RestoredTo,
            Lag = lag,
            LiveSize = live?.Size ?? 0,
            RestoredSize = restored?.DatabaseSize ?? 0,
            RestoredPath = options.KeepRestoredDatabase && restored is not null ? restoredPath : null,
            Duration = elapsed,
        };
    }

    /// <summary>Waits until the replica holds <paramref name="point"/>; returns how long that took, or null on timeout.</summary>
    private static async Task<TimeSpan?> WaitForReplicaAsync(IReplicaClient client, Position point, TimeSpan maxWait, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await HoldsAsync(client, point, ct).ConfigureAwait(false))
            {
                return sw.Elapsed;
            }

            if (sw.Elapsed >= maxWait)
            {
                return null;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
        }
    }

    private static async Task<bool> HoldsAsync(IReplicaClient client, Position point, CancellationToken ct)
    {
        var segments = await client.ListSegmentsAsync(point.Generation, ct).ConfigureAwait(false);
        if (segments.Any(s => s.Index > point.Index || (s.Index == point.Index && s.Offset >= point.Offset)))
        {
            return true;
        }

        var last = segments.Where(s => s.Index == point.Index).LastOrDefault();
        if (last is null)
        {
            // Index 0 of a generation whose snapshot was taken at this very point needs no segment.
            var snapshots = await client.ListSnapshotsAsync(point.Generation, ct).ConfigureAwait(false);
            return point.Offset <= Wal.WalHeader.Size && snapshots.Any(s => s.Index == point.Index);
        }

        await using var raw = await client.OpenSegmentAsync(last.Generation, last.Index, last.Offset, ct).ConfigureAwait(false);
        await using var decoded = new VerifiedLz4Stream(raw, ReplicaNames.SegmentName(last.Index, last.Offset));
        await decoded.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
        return last.Offset + decoded.DecodedLength >= point.Offset;
    }

    private static async Task<DateTimeOffset> NewestObjectAsync(IReplicaClient client, string generation, CancellationToken ct)
    {
        var snaps = await client.ListSnapshotsAsync(generation, ct).ConfigureAwait(false);
        var segs = await client.ListSegmentsAsync(generation, ct).ConfigureAwait(false);
        return snaps.Select(s => s.CreatedAt).Concat(segs.Select(s => s.CreatedAt)).DefaultIfEmpty(DateTimeOffset.MinValue).Max();
    }

    private static string IntegrityCheck(string path)
    {
        try
        {
            using var c = Open(path);
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA integrity_check(20)";
            using var r = cmd.ExecuteReader();
            var lines = new List<string>();
            while (r.Read())
            {
                lines.Add(r.GetString(0));
            }

            return string.Join("; ", lines);
        }
        catch (SqliteException e)
        {
            return e.Message;
        }
    }

    private static DatabaseDigest DigestOf(string path, CancellationToken ct)
    {
        using var c = Open(path);
        return DatabaseDigest.Compute(c, ct);
    }

    private static SqliteConnection Open(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = new Uri(path).AbsoluteUri + "?immutable=1", Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        return c;
    }
}
