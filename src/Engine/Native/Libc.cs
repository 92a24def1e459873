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
