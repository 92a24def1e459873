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
            // A first read transaction maps the wal-index, which is then read through SQLite's
            // own mapping (opening the -shm file would drop the process's locks on it).
            Exec(c, "BEGIN");
            Exec(c, "SELECT COUNT(*) FROM sqlite_master");
            Exec(c, "ROLLBACK");
            for (int attempt = 0; ; attempt++)
            {
                ct.ThrowIfCancellationRequested();
                var before = PublishedEnd(c, walPath);
                var newest = NewestCommit(dbPath, walPath);
                Exec(c, "BEGIN");
                try
                {
                    Exec(c, "SELECT COUNT(*) FROM sqlite_master");
                    var after = PublishedEnd(c, walPath);

                    // The transaction sees exactly the commits the wal-index had published when
                    // it began; a commit published between the two looks makes the point unsure.
                    if (before != after && attempt < 50)
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

    /// <summary>
    /// The live WAL's header and its published end (the wal-index's mxFrame), or null when there
    /// is no WAL or the wal-index describes another incarnation (a restart under way).
    /// </summary>
    private static WalEnd? PublishedEnd(SqliteConnection c, string walPath)
    {
        WalHeader? header;
        try
        {
            using var h = File.OpenHandle(walPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var raw = new byte[WalHeader.Size];
            header = RandomAccess.Read(h, raw, 0) == WalHeader.Size ? WalHeader.TryParseValid(raw) : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        return header is not null && WalIndexHeader.Read(c) is { } index && index.Describes(header)
            ? new WalEnd(header, index.PublishedEnd(header))
            : null;
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
