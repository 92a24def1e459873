using System.Globalization;
using Microsoft.Data.Sqlite;

namespace SqliteWriter;

/// <summary>Connection helpers shared by the commands.</summary>
internal static class Db
{
    /// <summary>Milliseconds SQLite waits on a lock before SQLITE_BUSY.</summary>
    public const int BusyTimeoutMs = 10_000;

    /// <summary>
    /// Opens a connection outside Microsoft.Data.Sqlite's pool, so that closing it really
    /// closes the file (the last close of a WAL database checkpoints and deletes the WAL).
    /// </summary>
    public static SqliteConnection Open(string path, bool create)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = BusyTimeoutMs / 1000,
        };

        if (!create && !File.Exists(path))
        {
            throw new FileNotFoundException($"database file not found: {path}", path);
        }

        var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        Execute(connection, $"PRAGMA busy_timeout = {BusyTimeoutMs.ToString(CultureInfo.InvariantCulture)}");
        return connection;
    }

    public static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }

    public static object? Scalar(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        object? value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    /// <summary>The largest id in t, or 0 when t is empty.</summary>
    public static long MaxId(SqliteConnection connection, SqliteTransaction? transaction = null, string table = "t") =>
        Convert.ToInt64(Scalar(connection, $"SELECT coalesce(max(id), 0) FROM {table}", transaction) ?? 0L, CultureInfo.InvariantCulture);

    public static int PageSize(SqliteConnection connection) =>
        Convert.ToInt32(Scalar(connection, "PRAGMA page_size"), CultureInfo.InvariantCulture);

    /// <summary>Deterministic row payload, so two runs with the same ids produce the same content.</summary>
    public static byte[] BlobFor(long id, int length)
    {
        var bytes = new byte[length];
        ulong state = unchecked((ulong)id * 0x9E3779B97F4A7C15UL) | 1UL;
        for (int i = 0; i < bytes.Length; i++)
        {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes[i] = (byte)state;
        }

        return bytes;
    }

    public static string TextFor(long id) => "row " + id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Quotes an identifier for SQL.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
