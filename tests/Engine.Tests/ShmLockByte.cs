using System.Runtime.InteropServices;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// Holds one of SQLite's WAL lock bytes in a database's -shm file from this process, the way
/// another process's connection would: an open-file-description lock conflicts with SQLite's
/// own (POSIX record) locks even within one process, so our connections see it as taken.
/// Linux x86-64 only (the struct flock layout and F_OFD_SETLK).
/// </summary>
internal sealed class ShmLockByte : IDisposable
{
    /// <summary>SQLite's unix VFS: the WAL locks start at this offset of the -shm file.</summary>
    private const long LockOffset = 120;

    /// <summary>WAL lock 1 (0 is the write lock, 3 on the read marks).</summary>
    public const int CheckpointLock = 1;

    private const int FOfdSetlk = 37;
    private const short FWrlck = 1;
    private const short FUnlck = 2;

    private readonly FileStream _shm;
    private readonly long _offset;

    [StructLayout(LayoutKind.Sequential)]
    private struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Len;
        public int Pid;
    }

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int cmd, ref Flock lk);

    private ShmLockByte(FileStream shm, long offset)
    {
        _shm = shm;
        _offset = offset;
    }

    /// <summary>Takes WAL lock <paramref name="lockIndex"/> of <paramref name="dbPath"/> exclusively; throws if it is held.</summary>
    public static ShmLockByte Take(string dbPath, int lockIndex)
    {
        var shm = new FileStream(dbPath + "-shm", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var held = new ShmLockByte(shm, LockOffset + lockIndex);
        if (held.Set(FWrlck) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            shm.Dispose();
            throw new IOException($"lock byte {LockOffset + lockIndex} of '{dbPath}-shm' is taken (errno {errno})");
        }

        return held;
    }

    private int Set(short type)
    {
        var lk = new Flock { Type = type, Whence = 0, Start = _offset, Len = 1, Pid = 0 };
        return Fcntl((int)_shm.SafeFileHandle.DangerousGetHandle(), FOfdSetlk, ref lk);
    }

    public void Dispose()
    {
        Set(FUnlck);
        _shm.Dispose();
    }
}
