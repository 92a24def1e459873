using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace SqliteWriter;

/// <summary>
/// A small stand-in for "the application": a separate process that writes to a SQLite
/// database while the replicator runs, and that tests can kill at any moment.
/// Exit codes: 0 success, 1 runtime error (message on stderr), 2 bad command line.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: SqliteWriter <command> --db PATH [options]

          init    --db P [--page-size N (4096)] [--journal wal|delete (wal)]
                  creates table t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)
          write   --db P [--count N (100; 0 = until SIGTERM/SIGINT)] [--interval-ms M (0)]
                  [--start-id K (max(id)+1)] [--blob-bytes B (0 = NULL)] [--rows-per-tx R (1)]
                  [--autocheckpoint N (1000)] [--checkpoint-every N --checkpoint-mode truncate|restart|passive]
                  [--vacuum-every N] [--schema-change-every N] [--hold-open] [--stamp]
                  [--synchronous off|normal|full|extra (SQLite's default)] [--table NAME (t; created like t)]
                  prints "committed <last id>" after each COMMIT (with --stamp:
                  "committed <last id> at <unix ms>", the wall-clock time right after it)
          bigtx   --db P --pages N     one transaction writing about N pages
          hold    --db P [--renew-ms M (1000)]
                  holds a read transaction (renewed every M ms) until SIGTERM/SIGINT and does
                  nothing else; prints "holding" once it holds it
          exec    --db P --sql "..."   runs SQL, prints result rows tab-separated
          soak    --db P --seed S [--until K (0 = until SIGTERM/SIGINT)] [--interval-ms M (0)]
                  [--vacuum-every N] [--schema-every N] [--fast]
                  deterministic mixed traffic (inserts, updates, deletes, blobs, schema changes);
                  prints "commit <k> <start unix ms> <end unix ms>"; resumes after max(soak_log.seq),
                  so "init" then "soak --until K --fast" replays the state after commit K
          dump    --db P               prints {"integrity":..,"digest":..,"tables":{..},"maxId":N}
          replace --db P --from Q      copies Q to P.tmp, renames it over P, deletes P-wal and P-shm
        """;

    public static int Main(string[] args)
    {
        using var stop = new StopSignal();
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                Console.Out.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }

            string command = args[0];
            string[] rest = args[1..];
            switch (command)
            {
                case "init":
                    Commands.Init(new Options(rest, NoFlags));
                    break;
                case "write":
                    Commands.Write(new Options(rest, new HashSet<string> { "hold-open", "stamp" }), stop.Token);
                    break;
                case "soak":
                    Soak.Run(new Options(rest, new HashSet<string> { "fast" }), stop.Token);
                    break;
                case "hold":
                    Commands.HoldRead(new Options(rest, NoFlags), stop.Token);
                    break;
                case "bigtx":
                    Commands.BigTransaction(new Options(rest, NoFlags));
                    break;
                case "exec":
                    Commands.Exec(new Options(rest, NoFlags));
                    break;
                case "dump":
                    Commands.Dump(new Options(rest, NoFlags));
                    break;
                case "replace":
                    Commands.Replace(new Options(rest, NoFlags));
                    break;
                default:
                    throw new UsageException($"unknown command '{command}'");
            }

            Console.Out.Flush();
            return 0;
        }
        catch (UsageException ex)
        {
            Console.Error.WriteLine("error: " + ex.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Out.Flush();
            string code = ex is SqliteException sqlite ? $" (extended code {sqlite.SqliteExtendedErrorCode})" : "";
            Console.Error.WriteLine($"error: {ex.GetType().Name}: {ex.Message}{code}");
            return 1;
        }
    }

    private static readonly HashSet<string> NoFlags = new();

    /// <summary>
    /// SIGTERM and SIGINT cancel a token instead of ending the process, so the writer
    /// finishes the transaction in progress, reports it, and exits 0.
    /// </summary>
    private sealed class StopSignal : IDisposable
    {
        private readonly CancellationTokenSource _source = new();
        private readonly PosixSignalRegistration[] _registrations;

        public StopSignal()
        {
            _registrations =
            [
                PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
                PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            ];
        }

        public CancellationToken Token => _source.Token;

        private void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            _source.Cancel();
        }

        public void Dispose()
        {
            foreach (PosixSignalRegistration registration in _registrations)
            {
                registration.Dispose();
            }

            _source.Dispose();
        }
    }
}
