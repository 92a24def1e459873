using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;

namespace SqliteWriter;

/// <summary>
/// Mixed application traffic for the soak campaign, deterministic from a seed: commit k is
/// a function of (seed, k) and of the database state before it, so replaying commits 1..k
/// into a fresh database gives exactly the state the live database had after commit k.
/// Each commit inserts, updates and deletes rows of t (texts and blobs, some large), now and
/// then changes the schema (new tables, a new column, an index, a dropped table) and records
/// its number in soak_log. The row count of t hovers around a target, so the database stays
/// about the same size however long the traffic runs.
/// </summary>
internal static class Soak
{
    private const int TargetRows = 1200;

    public static void Run(Options options, CancellationToken stop)
    {
        string db = options.Required("db");
        int seed = options.Int("seed", 1, min: 0);
        long until = options.Long("until", 0, min: 0);
        int intervalMs = options.Int("interval-ms", 0, min: 0);
        int vacuumEvery = options.Int("vacuum-every", 0, min: 0);
        int schemaEvery = options.Int("schema-every", 0, min: 0);
        bool fast = options.Has("fast");
        options.EnsureAllUsed();

        using SqliteConnection connection = Db.Open(db, create: false);
        if (fast)
        {
            // Replays only: the content is what matters, not durability.
            Db.Execute(connection, "PRAGMA synchronous = OFF");
        }

        Db.Execute(connection, "CREATE TABLE IF NOT EXISTS soak_log(seq INTEGER PRIMARY KEY)");
        long k = Convert.ToInt64(Db.Scalar(connection, "SELECT coalesce(max(seq), 0) FROM soak_log") ?? 0L, CultureInfo.InvariantCulture);
        while (!stop.IsCancellationRequested && (until == 0 || k < until))
        {
            k++;
            long started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            using (SqliteTransaction tx = connection.BeginTransaction(deferred: false))
            {
                Commit(connection, tx, seed, k, schemaEvery);
                tx.Commit();
            }

            long ended = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            Line($"commit {k.ToString(CultureInfo.InvariantCulture)} {started.ToString(CultureInfo.InvariantCulture)} {ended.ToString(CultureInfo.InvariantCulture)}");
            if (vacuumEvery > 0 && k % vacuumEvery == 0)
            {
                // Outside any transaction; the content does not change, so replays skip it.
                Db.Execute(connection, "VACUUM");
                Line($"vacuum {k.ToString(CultureInfo.InvariantCulture)}");
            }

            if (intervalMs > 0)
            {
                stop.WaitHandle.WaitOne(intervalMs);
            }
        }

        Line($"done {k.ToString(CultureInfo.InvariantCulture)}");
    }

    private static void Commit(SqliteConnection c, SqliteTransaction tx, int seed, long k, int schemaEvery)
    {
        var rng = new Random((int)(((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)k * 0xBF58476D1CE4E5B9UL) >> 33));
        long rows = Convert.ToInt64(Db.Scalar(c, "SELECT count(*) FROM t", tx) ?? 0L, CultureInfo.InvariantCulture);
        int ops = 1 + rng.Next(6);
        for (int i = 0; i < ops; i++)
        {
            int roll = rng.Next(100);
            // Above the target, deletes win; below it, inserts do.
            int insertShare = rows < TargetRows ? 55 : 30;
            if (rows == 0 || roll < insertShare)
            {
                long id = Convert.ToInt64(Db.Scalar(c, "SELECT coalesce(max(id), 0) + 1 FROM t", tx) ?? 1L, CultureInfo.InvariantCulture);
                Exec(c, tx, "INSERT INTO t(id, v, b) VALUES ($id, $v, $b)", ("$id", id), ("$v", Text(rng)), ("$b", Blob(rng)));
                rows++;
            }
            else if (roll < insertShare + 25)
            {
                long id = PickId(c, tx, rng, rows);
                Exec(c, tx, "UPDATE t SET v = $v, b = $b WHERE id = $id", ("$id", id), ("$v", Text(rng)), ("$b", rng.Next(4) == 0 ? DBNull.Value : Blob(rng)));
            }
            else if (roll < 90)
            {
                long id = PickId(c, tx, rng, rows);
                int n = 1 + rng.Next(rows > TargetRows ? 8 : 3);
                rows -= Exec(c, tx, "DELETE FROM t WHERE id >= $id AND id < $id + $n", ("$id", id), ("$n", n));
            }
            else
            {
                var extra = Convert.ToString(Db.Scalar(c, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'extra\\_%' ESCAPE '\\' ORDER BY name LIMIT 1 OFFSET $o".Replace("$o", rng.Next(4).ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal), tx), CultureInfo.InvariantCulture);
                if (!string.IsNullOrEmpty(extra))
                {
                    Exec(c, tx, $"INSERT INTO {Db.Quote(extra)}(v) VALUES ($v)", ("$v", Text(rng)));
                }
            }
        }

        if (schemaEvery > 0 && k % schemaEvery == 0)
        {
            ChangeSchema(c, tx, k / schemaEvery);
        }

        Exec(c, tx, "INSERT INTO soak_log(seq) VALUES ($k)", ("$k", k));
    }

    /// <summary>Cycles through four kinds of schema change.</summary>
    private static void ChangeSchema(SqliteConnection c, SqliteTransaction tx, long n)
    {
        string suffix = n.ToString(CultureInfo.InvariantCulture);
        switch (n % 4)
        {
            case 1:
                Db.Execute(c, $"CREATE TABLE extra_{suffix}(id INTEGER PRIMARY KEY, v TEXT)", tx);
                Db.Execute(c, $"INSERT INTO extra_{suffix}(v) VALUES ('created at change {suffix}')", tx);
                break;
            case 2:
                Db.Execute(c, $"ALTER TABLE t ADD COLUMN c{suffix} TEXT DEFAULT 'added {suffix}'", tx);
                break;
            case 3:
                Db.Execute(c, $"CREATE INDEX IF NOT EXISTS t_v_{suffix} ON t(v)", tx);
                break;
            default:
                var oldest = Convert.ToString(Db.Scalar(c, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'extra\\_%' ESCAPE '\\' ORDER BY name LIMIT 1", tx), CultureInfo.InvariantCulture);
                if (!string.IsNullOrEmpty(oldest))
                {
                    Db.Execute(c, $"DROP TABLE {Db.Quote(oldest)}", tx);
                }

                break;
        }
    }

    private static long PickId(SqliteConnection c, SqliteTransaction tx, Random rng, long rows)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT id FROM t ORDER BY id LIMIT 1 OFFSET $o";
        cmd.Parameters.AddWithValue("$o", rows <= 0 ? 0 : rng.NextInt64(rows));
        return Convert.ToInt64(cmd.ExecuteScalar() ?? 0L, CultureInfo.InvariantCulture);
    }

    private static int Exec(SqliteConnection c, SqliteTransaction tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return cmd.ExecuteNonQuery();
    }

    private static string Text(Random rng)
    {
        const string Alphabet = "abcdefghijklmnopqrstuvwxyz ÄÖÜß日本語🙂0123456789";
        var sb = new StringBuilder();
        int n = rng.Next(rng.Next(10) == 0 ? 2000 : 60);
        for (int i = 0; i < n; i++)
        {
            sb.Append(Alphabet[rng.Next(Alphabet.Length - 2)]);
        }

        return sb.ToString();
    }

    /// <summary>Mostly small blobs, some medium, now and then a large one (overflow pages).</summary>
    private static byte[] Blob(Random rng)
    {
        int roll = rng.Next(100);
        int size = roll < 70 ? rng.Next(0, 2000) : roll < 96 ? rng.Next(2000, 20000) : rng.Next(50_000, 200_000);
        var bytes = new byte[size];
        rng.NextBytes(bytes);
        return bytes;
    }

    private static void Line(string text)
    {
        Console.Out.WriteLine(text);
        Console.Out.Flush();
    }
}
