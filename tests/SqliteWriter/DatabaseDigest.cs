using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace SqliteWriter;

/// <summary>
/// A deterministic fingerprint of a database's content, for comparing a source with a restore.
/// </summary>
/// <remarks>
/// Covers every table except SQLite's own (<c>sqlite_%</c>) and Litestream's (<c>_litestream_%</c>),
/// in name order; for each: the name, the column names, then every row in rowid order
/// (primary-key order for WITHOUT ROWID tables). The rowid itself is not hashed unless it is
/// a declared column (as t.id is), so a VACUUM that renumbers hidden rowids keeps the digest.
/// Each value is written with a type tag and a length, so no two different contents serialise alike.
/// </remarks>
internal static class DatabaseDigest
{
    public static string Compute(SqliteConnection connection)
    {
        string integrity = IntegrityCheck(connection);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);

        foreach ((string table, bool withoutRowid) in UserTables(connection))
        {
            counts[table] = HashTable(connection, table, withoutRowid, hash);
        }

        long? maxId = counts.ContainsKey("t") ? Db.MaxId(connection) : null;
        string digest = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("integrity", integrity);
            json.WriteString("digest", digest);
            json.WriteStartObject("tables");
            foreach ((string table, long rows) in counts)
            {
                json.WriteNumber(table, rows);
            }

            json.WriteEndObject();
            if (maxId is { } value)
            {
                json.WriteNumber("maxId", value);
            }
            else
            {
                json.WriteNull("maxId");
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string IntegrityCheck(SqliteConnection connection)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        using SqliteDataReader reader = command.ExecuteReader();
        var lines = new List<string>();
        while (reader.Read())
        {
            lines.Add(reader.GetString(0));
        }

        return string.Join("; ", lines);
    }

    private static List<(string Name, bool WithoutRowid)> UserTables(SqliteConnection connection)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = """
            SELECT name, wr FROM pragma_table_list
            WHERE schema = 'main' AND type = 'table'
              AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
              AND name NOT LIKE '\_litestream\_%' ESCAPE '\'
            ORDER BY name
            """;
        using SqliteDataReader reader = command.ExecuteReader();
        var tables = new List<(string, bool)>();
        while (reader.Read())
        {
            tables.Add((reader.GetString(0), reader.GetInt64(1) != 0));
        }

        tables.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return tables;
    }

    private static long HashTable(SqliteConnection connection, string table, bool withoutRowid, IncrementalHash hash)
    {
        using SqliteCommand command = connection.CreateCommand();
        string quoted = Db.Quote(table);
        command.CommandText = withoutRowid
            ? $"SELECT * FROM {quoted} ORDER BY {PrimaryKeyOrder(connection, table)}"
            : $"SELECT * FROM {quoted} ORDER BY _rowid_";
        using SqliteDataReader reader = command.ExecuteReader();

        AppendTag(hash, 'T');
        AppendText(hash, table);
        AppendInt64(hash, reader.FieldCount);
        for (int i = 0; i < reader.FieldCount; i++)
        {
            AppendText(hash, reader.GetName(i));
        }

        long rows = 0;
        while (reader.Read())
        {
            AppendTag(hash, 'r');
            for (int i = 0; i < reader.FieldCount; i++)
            {
                AppendValue(hash, reader.GetValue(i));
            }

            rows++;
        }

        AppendTag(hash, 'E');
        AppendInt64(hash, rows);
        return rows;
    }

    private static string PrimaryKeyOrder(SqliteConnection connection, string table)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM pragma_table_info($table) WHERE pk > 0 ORDER BY pk";
        command.Parameters.AddWithValue("$table", table);
        using SqliteDataReader reader = command.ExecuteReader();
        var columns = new List<string>();
        while (reader.Read())
        {
            columns.Add(Db.Quote(reader.GetString(0)));
        }

        return columns.Count > 0 ? string.Join(", ", columns) : "1";
    }

    private static void AppendValue(IncrementalHash hash, object value)
    {
        switch (value)
        {
            case DBNull:
                AppendTag(hash, 'N');
                break;
            case long l:
                AppendTag(hash, 'I');
                AppendInt64(hash, l);
                break;
            case double d:
                AppendTag(hash, 'F');
                AppendInt64(hash, BitConverter.DoubleToInt64Bits(d));
                break;
            case string s:
                AppendTag(hash, 'S');
                AppendText(hash, s);
                break;
            case byte[] bytes:
                AppendTag(hash, 'B');
                AppendInt64(hash, bytes.Length);
                hash.AppendData(bytes);
                break;
            default:
                AppendTag(hash, 'S');
                AppendText(hash, Convert.ToString(value, CultureInfo.InvariantCulture) ?? "");
                break;
        }
    }

    private static void AppendTag(IncrementalHash hash, char tag) => hash.AppendData([(byte)tag]);

    private static void AppendInt64(IncrementalHash hash, long value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        hash.AppendData(bytes);
    }

    private static void AppendText(IncrementalHash hash, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        AppendInt64(hash, bytes.Length);
        hash.AppendData(bytes);
    }
}
