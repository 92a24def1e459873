using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;

namespace SqliteReplica.Engine.Verification;

/// <summary>
/// The content of a database as comparable digests: one SHA-256 per table over every row in key
/// order (values typed, so 1, '1' and x'31' differ), plus the schema. Exact content, not counts.
/// </summary>
public sealed record DatabaseDigest(string SchemaHash, IReadOnlyDictionary<string, TableDigest> Tables)
{
    /// <summary>Reads the digest inside the connection's current transaction (the caller picks the snapshot).</summary>
    public static DatabaseDigest Compute(SqliteConnection c, CancellationToken ct)
    {
        var tables = new List<(string Name, bool WithoutRowId)>();
        var schema = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                schema.AppendData(Encoding.UTF8.GetBytes($"{r.GetString(0)}\u0001{r.GetString(1)}\u0001{r.GetString(2)}\u0001{r.GetString(3)}\u0002"));
                if (r.GetString(0) == "table" && !r.GetString(1).StartsWith("sqlite_stat", StringComparison.Ordinal))
                {
                    tables.Add((r.GetString(1), r.GetString(3).Contains("WITHOUT ROWID", StringComparison.OrdinalIgnoreCase)));
                }
            }
        }

        var result = new Dictionary<string, TableDigest>(StringComparer.Ordinal);
        foreach (var (name, withoutRowId) in tables)
        {
            ct.ThrowIfCancellationRequested();
            result[name] = HashTable(c, name, withoutRowId, ct);
        }

        return new DatabaseDigest(Convert.ToHexStringLower(schema.GetHashAndReset()), result);
    }

    /// <summary>Names of tables whose content differs (or exists on one side only), and a schema difference.</summary>
    public IReadOnlyList<string> Differences(DatabaseDigest other)
    {
        var diffs = new List<string>();
        if (SchemaHash != other.SchemaHash)
        {
            diffs.Add("(schema)");
        }

        foreach (var name in Tables.Keys.Union(other.Tables.Keys).Order(StringComparer.Ordinal))
        {
            if (!Tables.TryGetValue(name, out var a) || !other.Tables.TryGetValue(name, out var b) || a != b)
            {
                diffs.Add(name);
            }
        }

        return diffs;
    }

    private static TableDigest HashTable(SqliteConnection c, string name, bool withoutRowId, CancellationToken ct)
    {
        var quoted = "\"" + name.Replace("\"", "\"\"") + "\"";
        using var cmd = c.CreateCommand();
        cmd.CommandText = withoutRowId ? $"SELECT * FROM {quoted} ORDER BY 1" : $"SELECT rowid, * FROM {quoted} ORDER BY rowid";
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long rows = 0;
        using var r = cmd.ExecuteReader();
        var buffer = new byte[8];
        while (r.Read())
        {
            if ((++rows & 0xFFF) == 0)
            {
                ct.ThrowIfCancellationRequested();
            }

            for (int i = 0; i < r.FieldCount; i++)
            {
                if (r.IsDBNull(i))
                {
                    hash.AppendData("N"u8);
                    continue;
                }

                switch (r.GetFieldType(i))
                {
                    case var t when t == typeof(long):
                        hash.AppendData("I"u8);
                        BitConverter.TryWriteBytes(buffer, r.GetInt64(i));
                        hash.AppendData(buffer);
                        break;
                    case var t when t == typeof(double):
                        hash.AppendData("F"u8);
                        BitConverter.TryWriteBytes(buffer, r.GetDouble(i));
                        hash.AppendData(buffer);
                        break;
                    case var t when t == typeof(byte[]):
                        var blob = (byte[])r.GetValue(i);
                        hash.AppendData("B"u8);
                        BitConverter.TryWriteBytes(buffer, (long)blob.Length);
                        hash.AppendData(buffer);
                        hash.AppendData(blob);
                        break;
                    default:
                        var text = Encoding.UTF8.GetBytes(r.GetString(i));
                        hash.AppendData("T"u8);
                        BitConverter.TryWriteBytes(buffer, (long)text.Length);
                        hash.AppendData(buffer);
                        hash.AppendData(text);
                        break;
                }
            }
        }

        return new TableDigest(rows, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }
}

/// <summary>Rows and content hash of one table.</summary>
public sealed record TableDigest(long Rows, string Hash);
