using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;

namespace SqliteWriter;

/// <summary>The subcommands. Each writes its result lines to stdout, flushed line by line.</summary>
internal static class Commands
{
    private const string CreateTable = "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)";

    public static void Init(Options options)
    {
        string db = options.Required("db");
        int pageSize = options.Int("page-size", 4096, min: 512);
        string journal = options.Choice("journal", "wal", "wal", "delete");
        options.EnsureAllUsed();

        using SqliteConnection connection = Db.Open(db, create: true);
        // page_size only takes effect before the first table exists.
        Db.Execute(connection, $"PRAGMA page_size = {pageSize.ToString(CultureInfo.InvariantCulture)}");
        string mode = Convert.ToString(Db.Scalar(connection, $"PRAGMA journal_mode = {journal.ToUpperInvariant()}"), CultureInfo.InvariantCulture) ?? "";
        Db.Execute(connection, CreateTable);
        Line($"initialized journal={mode.ToLowerInvariant()} page_size={Db.PageSize(connection).ToString(CultureInfo.InvariantCulture)}");
    }

    public static void Write(Options options, CancellationToken stop)
    {
        string db = options.Required("db");
        long count = options.Long("count", 100, min: 0);
        int intervalMs = options.Int("interval-ms", 0, min: 0);
        long? startId = options.Has("start-id") ? options.Long("start-id", 1, min: 1) : null;
        int blobBytes = options.Int("blob-bytes", 0, min: 0);
        int rowsPerTx = options.Int("rows-per-tx", 1, min: 1);
        int autocheckpoint = options.Int("autocheckpoint", 1000, min: 0);
        int checkpointEvery = options.Int("checkpoint-every", 0, min: 0);
        string checkpointMode = options.Choice("checkpoint-mode", "truncate", "truncate", "restart", "passive");
        int vacuumEvery = options.Int("vacuum-every", 0, min: 0);
        int schemaChangeEvery = options.Int("schema-change-every", 0, min: 0);
        bool holdOpen = options.Has("hold-open");
        bool stamp = options.Has("stamp");
        string? synchronous = options.Has("synchronous") ? options.Choice("synchronous", "full", "off", "normal", "full", "extra") : null;
        string table = options.Optional("table") ?? "t";
        options.EnsureAllUsed();
        if (!System.Text.RegularExpressions.Regex.IsMatch(table, "^[A-Za-z_][A-Za-z0-9_]*$"))
        {
            throw new ArgumentException($"--table '{table}' is not a plain table name (letters, digits, underscore).");
        }

        using SqliteConnection connection = Db.Open(db, create: false);
        Db.Execute(connection, $"PRAGMA wal_autocheckpoint = {autocheckpoint.ToString(CultureInfo.InvariantCulture)}");
        if (synchronous is not null)
        {
            Db.Execute(connection, $"PRAGMA synchronous = {synchronous}");
        }

        if (table != "t")
        {
            // Another table with t's columns: a second writer beside the one whose ids a test
            // follows in t (those must stay the prefix 1..k).
            Db.Execute(connection, $"CREATE TABLE IF NOT EXISTS {table}(id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
        }

        long nextId = startId ?? Db.MaxId(connection, table: table) + 1;
        long written = 0;
        long transactions = 0;

        using SqliteCommand insert = connection.CreateCommand();
        insert.CommandText = $"INSERT INTO {table}(id, v, b) VALUES ($id, $v, $b)";
        SqliteParameter idParameter = insert.Parameters.Add("$id", SqliteType.Integer);
        SqliteParameter textParameter = insert.Parameters.Add("$v", SqliteType.Text);
        SqliteParameter blobParameter = insert.Parameters.Add("$b", SqliteType.Blob);

        while (!stop.IsCancellationRequested && (count == 0 || written < count))
        {
            long rows = count == 0 ? rowsPerTx : Math.Min(rowsPerTx, count - written);
            using (SqliteTransaction transaction = connection.BeginTransaction(deferred: false))
            {
                insert.Transaction = transaction;
                for (long i = 0; i < rows; i++)
                {
                    long id = nextId + i;
                    idParameter.Value = id;
                    textParameter.Value = Db.TextFor(id);
                    blobParameter.Value = blobBytes == 0 ? DBNull.Value : Db.BlobFor(id, blobBytes);
                    insert.ExecuteNonQuery();
                }

                transaction.Commit();
            }

            insert.Transaction = null;
            nextId += rows;
            written += rows;
            transactions++;
            Line(stamp
                ? "committed " + (nextId - 1).ToString(CultureInfo.InvariantCulture) + " at " + DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)
                : "committed " + (nextId - 1).ToString(CultureInfo.InvariantCulture));

            if (checkpointEvery > 0 && transactions % checkpointEvery == 0)
            {
                Checkpoint(connection, checkpointMode);
            }

            if (vacuumEvery > 0 && transactions % vacuumEvery == 0)
            {
                Db.Execute(connection, "VACUUM");
                Line("vacuum");
            }

            if (schemaChangeEvery > 0 && transactions % schemaChangeEvery == 0)
            {
                ChangeSchema(connection);
            }

            if (intervalMs > 0)
            {
                stop.WaitHandle.WaitOne(intervalMs);
            }
        }

        if (holdOpen && !stop.IsCancellationRequested)
        {
            Line("holding");
            stop.WaitHandle.WaitOne();
        }

        Line((stop.IsCancellationRequested ? "stopped " : "done ") + written.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The benchmark's control for application overhead: holds a read transaction on the
    /// database the way a WAL-reading replicator must (it keeps SQLite from restarting the WAL
    /// over frames not yet copied), renewed every --renew-ms, and does nothing else: it copies
    /// nothing and never checkpoints. What an application loses beside it is the cost of that
    /// lock when nobody restarts the WAL (a replicator gives part of it back by restarting the
    /// WAL itself after copying).
    /// </summary>
    public static void HoldRead(Options options, CancellationToken stop)
    {
        string db = options.Required("db");
        int renewMs = options.Int("renew-ms", 1000, min: 1);
        options.EnsureAllUsed();

        using SqliteConnection connection = Db.Open(db, create: false);
        bool announced = false;
        while (!stop.IsCancellationRequested)
        {
            using SqliteTransaction transaction = connection.BeginTransaction(deferred: true);
            // A deferred transaction takes its read snapshot (and read-mark lock) at its first read.
            Db.Scalar(connection, "SELECT count(*) FROM sqlite_master", transaction);
            if (!announced)
            {
                Line("holding");
                announced = true;
            }

            stop.WaitHandle.WaitOne(renewMs);
            transaction.Commit();
        }

        Line("stopped");
    }

    public static void BigTransaction(Options options)
    {
        string db = options.Required("db");
        long pages = options.Long("pages", 0, min: 1);
        if (!options.Has("pages"))
        {
            throw new UsageException("option --pages is required");
        }

        options.EnsureAllUsed();

        using SqliteConnection connection = Db.Open(db, create: false);
        // A record a little smaller than a page fills one leaf page by itself, so N rows ~ N pages.
        int blobBytes = Math.Max(1, Db.PageSize(connection) - 200);
        long lastId;
        using (SqliteTransaction transaction = connection.BeginTransaction(deferred: false))
        {
            long firstId = Db.MaxId(connection, transaction) + 1;
            using SqliteCommand insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO t(id, v, b) VALUES ($id, $v, $b)";
            SqliteParameter idParameter = insert.Parameters.Add("$id", SqliteType.Integer);
            SqliteParameter textParameter = insert.Parameters.Add("$v", SqliteType.Text);
            SqliteParameter blobParameter = insert.Parameters.Add("$b", SqliteType.Blob);
            for (long i = 0; i < pages; i++)
            {
                long id = firstId + i;
                idParameter.Value = id;
                textParameter.Value = Db.TextFor(id);
                blobParameter.Value = Db.BlobFor(id, blobBytes);
                insert.ExecuteNonQuery();
            }

            transaction.Commit();
            lastId = firstId + pages - 1;
        }

        Line("committed " + lastId.ToString(CultureInfo.InvariantCulture));
    }

    public static void Exec(Options options)
    {
        string db = options.Required("db");
        string sql = options.Required("sql");
        options.EnsureAllUsed();

        using SqliteConnection connection = Db.Open(db, create: false);
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        using SqliteDataReader reader = command.ExecuteReader();
        do
        {
            while (reader.Read())
            {
                var fields = new string[reader.FieldCount];
                for (int i = 0; i < fields.Length; i++)
                {
                    fields[i] = FormatValue(reader.GetValue(i));
                }

                Line(string.Join('\t', fields));
            }
        }
        while (reader.NextResult());
    }

    public static void Dump(Options options)
    {
        string db = options.Required("db");
        options.EnsureAllUsed();

        using SqliteConnection connection = Db.Open(db, create: false);
        Line(DatabaseDigest.Compute(connection));
    }

    public static void Replace(Options options)
    {
        string db = Path.GetFullPath(options.Required("db"));
        string from = Path.GetFullPath(options.Required("from"));
        options.EnsureAllUsed();

        if (!File.Exists(from))
        {
            throw new FileNotFoundException($"replacement file not found: {from}", from);
        }

        // PocketBase's backup restore: stage a copy, rename it over the live file, drop WAL and SHM.
        string staged = db + ".tmp";
        File.Copy(from, staged, overwrite: true);
        File.Move(staged, db, overwrite: true);
        File.Delete(db + "-wal");
        File.Delete(db + "-shm");
        Line("replaced " + db);
    }

    private static void Checkpoint(SqliteConnection connection, string mode)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = $"PRAGMA wal_checkpoint({mode.ToUpperInvariant()})";
        using SqliteDataReader reader = command.ExecuteReader();
        var result = new StringBuilder("checkpoint ").Append(mode);
        if (reader.Read())
        {
            for (int i = 0; i < reader.FieldCount; i++)
            {
                result.Append(' ').Append(FormatValue(reader.GetValue(i)));
            }
        }

        Line(result.ToString());
    }

    private static void ChangeSchema(SqliteConnection connection)
    {
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        long existing = Convert.ToInt64(
            Db.Scalar(connection, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'extra\\_%' ESCAPE '\\'", transaction),
            CultureInfo.InvariantCulture);
        string name = "extra_" + (existing + 1).ToString(CultureInfo.InvariantCulture);
        Db.Execute(connection, $"CREATE TABLE {Db.Quote(name)}(id INTEGER PRIMARY KEY, v TEXT)", transaction);
        Db.Execute(connection, $"INSERT INTO {Db.Quote(name)}(v) VALUES ('{name}')", transaction);
        transaction.Commit();
        Line("schema " + name);
    }

    private static string FormatValue(object value) => value switch
    {
        DBNull => "NULL",
        byte[] bytes => "x'" + Convert.ToHexString(bytes) + "'",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static void Line(string text)
    {
        Console.Out.WriteLine(text);
        Console.Out.Flush();
    }
}
