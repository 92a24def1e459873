using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replication;

namespace SqliteReplica.Engine.Tests;

/// <summary>The inotify watcher that wakes the monitor: only its database's files, once per look.</summary>
public class ChangeWatcherTests
{
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

    /// <summary>How many watches the kernel holds for the watcher's inotify descriptor.</summary>
    private static int Watches(ChangeWatcher watcher) =>
        File.ReadAllLines($"/proc/self/fdinfo/{watcher.Descriptor}").Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal));

    [Fact]
    public void Wakes_on_its_wal_once_per_arming_watching_it_only_until_then_and_never_for_other_files_of_the_directory()
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
            watcher!.Arm();
            Assert.Equal(3, Watches(watcher));
            for (int i = 0; i < 50; i++)
            {
                Append(db + "-wal");
            }

            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 1, 3000), $"wakes {wakes}");

            // Fired: the WAL carries no watch any more (the application's writes cost nothing),
            // only the directory and the database file do.
            Assert.Equal(2, Watches(watcher));
            Append(db + "-wal");
            Assert.False(WaitFor(() => Volatile.Read(ref wakes) > 1, 600), "woken again before re-arming");

            // Re-armed (just before a look, which sees what changed before): only a change made
            // after it wakes the monitor.
            watcher.Arm();
            Assert.False(WaitFor(() => Volatile.Read(ref wakes) > 1, 600), "woken by a change the look covers");
            Append(db + "-wal");
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 2, 3000), $"wakes {wakes}");

            // A WAL deleted and created again (a replaced database) is still watched.
            watcher.Arm();
            File.Delete(db + "-wal");
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 3, 3000), $"wakes {wakes}");
            watcher.Arm();
            File.WriteAllText(db + "-wal", "");
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 4, 3000), $"wakes {wakes}");
            watcher.Arm();
            Append(db + "-wal");
            Assert.True(WaitFor(() => Volatile.Read(ref wakes) == 5, 3000), $"the new WAL file is not watched (wakes {wakes})");

            // The thread blocks without a timeout; disposing wakes it at once.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            watcher.Dispose();
            Assert.True(clock.ElapsedMilliseconds < 1500, $"dispose took {clock.ElapsedMilliseconds} ms");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
