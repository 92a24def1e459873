using Microsoft.Data.Sqlite;
using SqliteReplica.Engine.Capture;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Native;
using SqliteReplica.Engine.Replicas;
using SqliteReplica.Engine.Wal;

namespace SqliteReplica.Engine.Verification;

/// <summary>
/// The live database's content at one committed point, and where that point lies in the
/// replica's numbering. The point is pinned honestly: the WAL's committed end is read before
/// and after a read transaction begins; only when both agree is that the transaction's snapshot.
/// The position is known when the replicator's shadow WAL belongs to the live WAL (same header);
/// otherwise it is null and the drill compares with the replica's newest state instead.
/// </summary>
public sealed record LiveSnapshot(DatabaseDigest Digest, Position? Position, DateTimeOffset NewestCommitAt, long Size)
{
    public static LiveSnapshot Take(string dbPath, string metaRoot, CancellationToken ct)
    {
        if (!File.Exists(dbPath))
        {
            throw new ReplicaException(ReplicaErrorCode.DatabaseNotFound, $"The live database '{dbPath}' does not exist. Leave out -DatabasePath to check the replica alone.", dbPath);
        }

        var walPath = dbPath + "-wal";
        var csb = new SqliteConnectionStringBuilder { DataSource = dbPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 5 };
        try
        {
            using var c = new SqliteConnection(csb.ToString());
            c.Open();
            SqliteNative.SetPersistWal(c);
            Exec(c, "PRAGMA busy_timeout = 5000");
            for (int attempt = 0; ; attempt++)
            {
                ct.ThrowIfCancellationRequested();
                var before = CommittedEnd(walPath);
                var publishedBefore = PublishedFrames(dbPath + "-shm");
                var newest = NewestCommit(dbPath, walPath);
                Exec(c, "BEGIN");
                try
                {
                    Exec(c, "SELECT COUNT(*) FROM sqlite_master");
                    var after = CommittedEnd(walPath);
                    var publishedAfter = PublishedFrames(dbPath + "-shm");

                    // SQLite writes a commit's frames first and publishes it in the wal-index
                    // (-shm) after: a transaction begun in between sees one commit less than the
                    // WAL file shows. Only a moment when the file and the index agree is a point.
                    bool agrees = before == after && publishedBefore == publishedAfter &&
                                  (before is null || publishedBefore is null || before.Offset == before.Header.FrameOffset(publishedBefore.Value));
                    if (!agrees && attempt < 50)
                    {
                        Thread.Sleep(5 + attempt);
                        continue;
                    }

                    var digest = DatabaseDigest.Compute(c, ct);
                    var position = before is { } b && before == after ? MapToReplica(metaRoot, walPath, b) : null;
                    return new LiveSnapshot(digest, position, newest, new FileInfo(dbPath).Length);
                }
                finally
                {
                    Exec(c, "ROLLBACK");
                }
            }
        }
        catch (SqliteException e)
        {
            throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable, $"Cannot read the live database '{dbPath}': {e.Message}.", dbPath, e);
        }
    }

    /// <summary>The time of the newest commit the live files show (mtime of the database or its WAL).</summary>
    private static DateTimeOffset NewestCommit(string dbPath, string walPath)
    {
        var db = File.GetLastWriteTimeUtc(dbPath);
        var wal = File.Exists(walPath) ? File.GetLastWriteTimeUtc(walPath) : DateTime.MinValue;
        return new DateTimeOffset(db > wal ? db : wal, TimeSpan.Zero);
    }

    private sealed record WalEnd(WalHeader Header, long Offset);

    /// <summary>mxFrame of SQLite's wal-index header (the first copy at the start of -shm, native byte order), or null.</summary>
    private static long? PublishedFrames(string shmPath)
    {
        try
        {
            using var h = File.OpenHandle(shmPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var hdr = new byte[48];
            return RandomAccess.Read(h, hdr, 0) == hdr.Length ? BitConverter.ToUInt32(hdr, 16) : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static WalEnd? CommittedEnd(string walPath)
    {
        try
        {
            using var h = File.OpenHandle(walPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var raw = new byte[WalHeader.Size];
            if (RandomAccess.Read(h, raw, 0) < WalHeader.Size || WalHeader.TryParseValid(raw) is not { } header)
            {
                return null;
            }

            var v = new WalChainVerifier(header);
            var frame = new byte[header.FrameSize];
            long length = RandomAccess.GetLength(h);
            while (v.Offset + frame.Length <= length && RandomAccess.Read(h, frame, v.Offset) == frame.Length && v.Accept(frame) is null)
            {
            }

            return new WalEnd(header, v.LastCommitOffset);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static Position? MapToReplica(string metaRoot, string walPath, WalEnd end)
    {
        var meta = new MetaDirectory(metaRoot);
        if (meta.ReadGeneration() is not { } gen || meta.ShadowIndexes(gen) is not { Count: > 0 } indexes)
        {
            return null;
        }

        var shadow = meta.ShadowPath(gen, indexes[^1]);
        try
        {
            using var h = File.OpenHandle(shadow, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var raw = new byte[WalHeader.Size];
            return RandomAccess.Read(h, raw, 0) == WalHeader.Size && WalHeader.TryParseValid(raw) == end.Header
                ? new Position(gen, indexes[^1], end.Offset)
                : null;
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return null;
        }
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
