using System.Runtime.InteropServices;

namespace SqliteReplica.Engine.Native;

/// <summary>Small POSIX calls .NET has no API for: fsync of a directory, and file identity.</summary>
internal static partial class Libc
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000; // Linux x86-64 and arm64

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial IntPtr RealPathNative(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr ptr);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockNative(IntPtr fd, int operation);

    private const int LockEx = 2;
    private const int LockNb = 4;

    /// <summary>
    /// The canonical path of an existing file or directory (every symbolic link and '..' resolved),
    /// or null when it cannot be resolved (it does not exist, or this is not a POSIX system).
    /// </summary>
    public static string? RealPath(string path)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            return null;
        }

        var p = RealPathNative(path, IntPtr.Zero);
        if (p == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            Free(p);
        }
    }

    /// <summary>
    /// Takes an exclusive BSD advisory lock (flock) on an open file without waiting. Returns false
    /// when another open file description holds it; true when taken (or on a system without flock).
    /// </summary>
    public static bool TryLockExclusive(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            return true;
        }

        return FlockNative(handle.DangerousGetHandle(), LockEx | LockNb) == 0;
    }

    public const int SigInt = 2;
    public const int SigTerm = 15;

    /// <summary>Sends a signal to a process (false if it no longer exists).</summary>
    public static bool Signal(int pid, int signal) => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() ? KillNative(pid, signal) == 0 : false;

    /// <summary>Makes a rename inside <paramref name="directory"/> durable. Best effort.</summary>
    public static void FsyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        int fd = Open(directory, ORdOnly | ODirectory);
        if (fd < 0)
        {
            return;
        }

        try
        {
            Fsync(fd);
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>
    /// True when the file behind an open handle is no longer reachable under its name: it was
    /// deleted or another file was renamed over it (Linux marks the /proc fd link "(deleted)").
    /// </summary>
    public static bool IsUnlinked(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            var link = $"/proc/self/fd/{handle.DangerousGetHandle()}";
            var target = new FileInfo(link).LinkTarget;
            return target is not null && target.EndsWith(" (deleted)", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
