namespace SqliteReplica.Engine.IO;

/// <summary>
/// Files and directories the module creates hold database content or state: owner-only
/// (0600 / 0700), never world-readable, whatever the process umask.
/// </summary>
public static class PrivateFiles
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates a directory and any missing parents, each new one owner-only.</summary>
    public static void CreateDirectory(string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            return;
        }

        var parent = Path.GetDirectoryName(full);
        if (parent is not null && !Directory.Exists(parent))
        {
            CreateDirectory(parent);
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(full);
        }
        else
        {
            Directory.CreateDirectory(full, DirectoryMode);
        }
    }

    /// <summary>Opens a file, creating it owner-only when it does not exist.</summary>
    public static FileStream Open(string path, System.IO.FileMode mode, FileAccess access, FileShare share = FileShare.Read, int bufferSize = 4096, FileOptions options = FileOptions.None)
    {
        var o = new FileStreamOptions { Mode = mode, Access = access, Share = share, BufferSize = bufferSize, Options = options };
        if (!OperatingSystem.IsWindows() && mode != System.IO.FileMode.Open && mode != System.IO.FileMode.Truncate)
        {
            o.UnixCreateMode = FileMode;
        }

        return new FileStream(path, o);
    }

    /// <summary>Writes a whole text file owner-only.</summary>
    public static void WriteAllText(string path, string text)
    {
        using var fs = Open(path, System.IO.FileMode.Create, FileAccess.Write);
        using var w = new StreamWriter(fs);
        w.Write(text);
    }
}
