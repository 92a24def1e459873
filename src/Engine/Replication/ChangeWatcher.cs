using System.Runtime.InteropServices;
using System.Text;
using SqliteReplica.Engine.Logging;

namespace SqliteReplica.Engine.Replication;

/// <summary>
/// Wakes the monitor when a database or its WAL changes, through Linux inotify on those two files
/// (and on their directory for files created, moved or deleted under those names), at most once
/// per look. The two files are watched one-shot: the first write after <see cref="Arm"/> removes
/// their watches, so until the monitor re-arms them (just before its next look) the application's
/// writes cost nothing in the kernel for us. A watch that stays on costs every write of the
/// application a notification (allocated, then merged with the last one): about 2% of its commit
/// rate at tens of thousands of commits a second, measured with perf. A FileSystemWatcher on the
/// directory instead handed over an event for every write of every file there: an application
/// committing tens of thousands of times a second lost two thirds of its rate to the replicator
/// reading them (and each other database in the directory multiplied that). The thread blocks
/// in poll with a second descriptor that disposing signals, so an idle database costs no wake-ups.
/// </summary>
internal sealed partial class ChangeWatcher : IDisposable
{
    private const uint InModify = 0x2;
    private const uint InMovedFrom = 0x40;
    private const uint InMovedTo = 0x80;
    private const uint InCreate = 0x100;
    private const uint InDelete = 0x200;
    private const uint InIgnored = 0x8000;
    private const uint InOneShot = 0x8000_0000;
    private const int InNonBlock = 0x800;
    private const int InCloExec = 0x80000;
    private const short PollIn = 1;

    private readonly int _fd;
    private readonly int _stopFd;
    private readonly object _sync = new();
    private readonly string _dbPath;
    private readonly string _walPath;
    private readonly byte[] _dbName;
    private readonly byte[] _walName;
    private readonly Action _onChange;
    private readonly IEngineLog _log;
    private readonly ManualResetEventSlim _armed = new(true);
    private readonly Thread _thread;
    private volatile bool _disposed;
    private int _dirWd;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    private ChangeWatcher(int fd, int stopFd, string dbPath, Action onChange, IEngineLog log)
    {
        _fd = fd;
        _stopFd = stopFd;
        _dbPath = dbPath;
        _walPath = dbPath + "-wal";
        _dbName = Encoding.UTF8.GetBytes(Path.GetFileName(dbPath));
        _walName = Encoding.UTF8.GetBytes(Path.GetFileName(dbPath) + "-wal");
        _onChange = onChange;
        _log = log;
        _thread = new Thread(Run) { IsBackground = true, Name = "sqlitereplica-watch" };
    }

    /// <summary>Starts watching, or returns null when inotify is not available (not Linux, or its limits reached).</summary>
    public static ChangeWatcher? TryStart(string dbPath, Action onChange, IEngineLog log)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        int fd = InotifyInit1(InNonBlock | InCloExec);
        if (fd < 0)
        {
            log.Debug($"inotify unavailable (errno {Marshal.GetLastPInvokeError()})");
            return null;
        }

        // EFD_CLOEXEC | EFD_NONBLOCK share their values with the inotify flags.
        int stopFd = EventFd(0, InNonBlock | InCloExec);
        if (stopFd < 0)
        {
            log.Debug($"eventfd unavailable (errno {Marshal.GetLastPInvokeError()})");
            Close(fd);
            return null;
        }

        var w = new ChangeWatcher(fd, stopFd, dbPath, onChange, log);
        w._dirWd = InotifyAddWatch(fd, Path.GetDirectoryName(dbPath)!, InCreate | InMovedTo | InMovedFrom | InDelete);
        if (w._dirWd < 0)
        {
            log.Debug($"inotify cannot watch the directory of '{dbPath}' (errno {Marshal.GetLastPInvokeError()})");
            Close(fd);
            Close(stopFd);
            return null;
        }

        w.WatchFiles();
        w._thread.Start();
        return w;
    }

    /// <summary>The inotify descriptor (tests read its watch list from /proc).</summary>
    internal int Descriptor => _fd;

    /// <summary>
    /// Lets the next change wake the monitor again. Called just before each look: what changed
    /// before it is the look's to see, so notifications still queued from before are dropped
    /// (they would only cause a second look at the same state).
    /// </summary>
    public unsafe void Arm()
    {
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }

            var buffer = stackalloc byte[4096];
            while (Read(_fd, buffer, 4096) > 0)
            {
            }

            WatchFiles();
            _armed.Set();
        }
    }

    private void WatchFiles()
    {
        // A file that does not exist yet is covered by the directory watch (created or moved in);
        // adding the watch again for the same file replaces its mask (same watch descriptor).
        InotifyAddWatch(_fd, _walPath, InModify | InOneShot);
        InotifyAddWatch(_fd, _dbPath, InModify | InOneShot);
    }

    private unsafe void Run()
    {
        var buffer = new byte[16 * 1024];
        var fds = stackalloc PollFd[2];
        while (!_disposed)
        {
            try
            {
                _armed.Wait();
                fds[0] = new PollFd { Fd = _fd, Events = PollIn };
                fds[1] = new PollFd { Fd = _stopFd, Events = PollIn };
                if (Poll(fds, 2, -1) <= 0 || _disposed)
                {
                    continue;
                }

                bool any = false;
                lock (_sync)
                {
                    // Arm may have drained the queue meanwhile (then nothing is read here).
                    nint n;
                    fixed (byte* p = buffer)
                    {
                        while ((n = Read(_fd, p, (nuint)buffer.Length)) > 0)
                        {
                            for (int off = 0; off + 16 <= n;)
                            {
                                int wd = BitConverter.ToInt32(buffer, off);
                                uint mask = BitConverter.ToUInt32(buffer, off + 4);
                                int len = (int)BitConverter.ToUInt32(buffer, off + 12);
                                var name = buffer.AsSpan(off + 16, Math.Min(len, (int)n - off - 16));
                                int end = name.IndexOf((byte)0);
                                name = end >= 0 ? name[..end] : name;
                                if (wd == _dirWd)
                                {
                                    any |= name.SequenceEqual(_dbName) || name.SequenceEqual(_walName);
                                }
                                else
                                {
                                    // A one-shot watch's removal (IN_IGNORED) follows its event,
                                    // or a deletion the directory watch reports: not a change.
                                    any |= (mask & InIgnored) == 0;
                                }

                                off += 16 + len;
                            }
                        }
                    }

                    if (any)
                    {
                        _armed.Reset();
                    }
                }

                if (any)
                {
                    _onChange();
                }
            }
            catch (Exception e)
            {
                // Polling continues whatever happens here; this only makes looks come sooner.
                _log.Debug($"change watcher: {e.Message}");
                Thread.Sleep(500);
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        lock (_sync)
        {
            _disposed = true;
        }

        _armed.Set();
        unsafe
        {
            ulong one = 1;
            Write(_stopFd, (byte*)&one, sizeof(ulong));
        }

        if (_thread.Join(TimeSpan.FromSeconds(2)))
        {
            Close(_fd);
            Close(_stopFd);
            _armed.Dispose();
        }
    }
}
