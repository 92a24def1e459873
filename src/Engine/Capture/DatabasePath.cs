using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Capture;

/// <summary>
/// The path of a database as SQLite itself uses it. SQLite's unix VFS resolves symbolic links
/// before it opens a database and puts <c>-wal</c> and <c>-shm</c> beside the final target, so
/// everything derived from a database path here (the WAL, the shared-memory index, the default
/// meta directory, the replicator lock) must be derived from the resolved path too. Otherwise a
/// replicator started through a link reads a WAL that does not exist, and two spellings of one
/// database look like two databases.
/// </summary>
public static class DatabasePath
{
    /// <summary>More hops than this is a loop (the kernel's own limit is 40).</summary>
    public const int MaxLinks = 40;

    /// <summary>
    /// The absolute path with its directory canonicalised and every symbolic link of its last
    /// component followed to the final target. The target need not exist yet (a dangling link
    /// names the file SQLite would create).
    /// </summary>
    public static string Resolve(string path)
    {
        var full = Path.GetFullPath(path);
        for (int hop = 0; hop <= MaxLinks; hop++)
        {
            var dir = Path.GetDirectoryName(full);
            var name = Path.GetFileName(full);
            if (dir is null || name.Length == 0)
            {
                return full;
            }

            dir = Native.Libc.RealPath(dir) ?? dir;
            full = Path.Combine(dir, name);
            string? target;
            try
            {
                target = new FileInfo(full).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return full;
            }

            if (target is null)
            {
                return full;
            }

            full = Path.GetFullPath(target, dir);
        }

        throw new ReplicaException(ReplicaErrorCode.DatabaseUnusable,
            $"'{path}' leads through more than {MaxLinks} symbolic links (a loop?). Give the path of the database file itself.", path);
    }
}
