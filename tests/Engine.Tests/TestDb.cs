using Microsoft.Data.Sqlite;

namespace SqliteReplica.Engine.Tests;

/// <summary>A scratch directory with a WAL-mode database and helpers to write to and read it.</summary>
internal sealed class TestDb : IDisposable
{
    public TestDb(int pageSize = 4096)
    {
        Dir = Path.Combine(Path.GetTempPath(), "sr-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Dir);
        DbPath = Path.Combine(Dir, "app.db");
        ReplicaDir = Path.Combine(Dir, "replica");
        using var c = Open();
        Exec(c, $"PRAGMA page_size = {pageSize}");
        Exec(c, "PRAGMA journal_mode = wal");
        Exec(c, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
    }

    public string Dir { get; }

    public string DbPath { get; }

    public string ReplicaDir { get; }

    public SqliteConnection Open(string? path = null)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path ?? DbPath, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    public static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public static object? Scalar(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    /// <summary>Inserts rows [from, from+count) in transactions of <paramref name="perTx"/> rows.</summary>
    public void Insert(int from, int count, int perTx = 1, int blobBytes = 100)
    {
        using var c = Open();
        for (int i = from; i < from + count; i += perTx)
        {
            using var tx = c.BeginTransaction();
            for (int j = i; j < Math.Min(from + count, i + perTx); j++)
            {
                using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO t (id, v, b) VALUES ($id, $v, randomblob($n))";
                cmd.Parameters.AddWithValue("$id", j);
                cmd.Parameters.AddWithValue("$v", "row " + j);
                cmd.Parameters.AddWithValue("$n", blobBytes);
                cmd.ExecuteNonQuery();
            }

            tx.Commit();
        }
    }

    /// <summary>A digest of every user table's rows, for comparing two databases.</summary>
    public static string Digest(string path)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        c.Open();
        var sb = new System.Text.StringBuilder();
        var tables = new List<string>();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_litestream_%' ORDER BY name";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                tables.Add(r.GetString(0));
            }
        }

        foreach (var t in tables)
        {
            sb.Append("table ").Append(t).Append('\n');
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT * FROM \"{t}\" ORDER BY rowid";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                for (int i = 0; i < r.FieldCount; i++)
                {
                    var v = r.GetValue(i);
                    sb.Append(v is byte[] b ? Convert.ToHexString(b) : v?.ToString()).Append('|');
                }

                sb.Append('\n');
            }
        }

        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public static string IntegrityCheck(string path)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return Scalar(c, "PRAGMA integrity_check")?.ToString() ?? "";
    }

    public static long Count(string path)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return Convert.ToInt64(Scalar(c, "SELECT COUNT(*) FROM t"));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A log that drops everything.</summary>
internal sealed class NullLog : SqliteReplica.Engine.Logging.IEngineLog
{
    public void Write(SqliteReplica.Engine.Logging.EngineLogLevel level, string message)
    {
    }
}

/// <summary>A log that keeps every line ("Level: message"), for assertions and failure messages.</summary>
internal sealed class ListLog : SqliteReplica.Engine.Logging.IEngineLog
{
    public List<string> Lines { get; } = new();

    public void Write(SqliteReplica.Engine.Logging.EngineLogLevel level, string message)
    {
        lock (Lines)
        {
            Lines.Add($"{level}: {message}");
        }
    }

    /// <summary>Whether a line holds <paramref name="text"/>.</summary>
    public bool Contains(string text)
    {
        lock (Lines)
        {
            return Lines.Any(l => l.Contains(text, StringComparison.Ordinal));
        }
    }

    public override string ToString()
    {
        lock (Lines)
        {
            return string.Join("\n", Lines);
        }
    }
}
