using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replication;

namespace SqliteReplica.Engine.Tests;

/// <summary>The inotify watcher that wakes the monitor: only its database's files, once per look.</summary>
public class ChangeWatcherTests
{
    private sealed class NullLog : IEngineLog
    {
        public void Write(EngineLogLevel level, string message)
        {
        }
    }

    private static bool WaitFor(Func<bool> condition, int milliseconds)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < milliseconds)
        {
            if (condition())
            {
                return true;
            }

            Thread.Sleep(10);
        }

        return condition();
    }

    private static void Append(string path) => File.AppendAllText(path, "x");

    [Fact]
    public void Wakes_on_its_wal_once_per_look_and_never_for_other_files_of_the_directory()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var dir = Directory.CreateTempSubdirectory("sqlitereplica-watch-").FullName;
        try
        {
            var db = Path.Combine(dir, "app.db");
            File.WriteAllText(db, "");
            File.WriteAllText(db + "-wal", "");
            File.WriteAllText(Path.Combine(dir, "other.db-wal"), "");
            int wakes = 0;
            using var watcher = ChangeWatcher.TryStart(db, () => Interlocked.Increment(ref wakes), new NullLog());
            Assert.NotNull(watcher);

            // Another database's WAL in the same directory: no wake-up.
            for (int i = 0; i < 50; i++)
            {
                Append(Path.Combine(dir, "other.db-wal"));
            }

            Assert.False(WaitFor(() => Volatile.Read(ref wakes) > 0, 600), "woken by another file");

            // Its own WAL: one wake-up, however many writes, until the monitor re-arms it.
            for (int i = 0; i < 50; i++)
            {
                Append(db + "-wal");
            }

            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 1, 3000), $"wakes {wakes}");
            Append(db + "-wal");
            Assert.False(WaitFor(() => Volatile.Read(ref wakes) > 1, 600), "woken again before re-arming");

            // Re-armed: the change made meanwhile wakes it at once.
            watcher!.Arm();
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 2, 3000), $"wakes {wakes}");

            // A WAL deleted and created again (a replaced database) is still watched.
            File.Delete(db + "-wal");
            watcher.Arm();
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 3, 3000), $"wakes {wakes}");
            File.WriteAllText(db + "-wal", "");
            watcher.Arm();
            WaitFor(() => Volatile.Read(ref wakes) == 4, 3000);
            int before = Volatile.Read(ref wakes);
            watcher.Arm();
            Append(db + "-wal");
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) > before, 3000), $"the new WAL file is not watched (wakes {wakes})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
