using SqliteReplica.Engine.Capture;

namespace SqliteReplica.Engine.Status;

/// <summary>Reads and writes the status file in a database's meta directory.</summary>
public static class StatusFile
{
    public static string PathFor(MetaDirectory meta) => Path.Combine(meta.Root, ReplicationState.FileName);

    /// <summary>Replaces the file atomically (temp file + rename). Throws on I/O failure: a heartbeat that cannot be written must go stale.</summary>
    public static void Write(MetaDirectory meta, ReplicationState state)
    {
        var path = PathFor(meta);
        var tmp = path + ".tmp";
        IO.PrivateFiles.WriteAllText(tmp, state.ToJson());
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// The heartbeat between rewrites: sets the file's modification time to now, but only if the
    /// file is still the one this process left (its modification time is
    /// <paramref name="expected"/>); otherwise returns false and the caller rewrites it. A
    /// replaced, deleted or damaged file is therefore never kept fresh. Throws on I/O failure,
    /// like <see cref="Write"/>: a heartbeat that cannot be written must go stale.
    /// </summary>
    public static bool TryTouch(string path, DateTime expected, out DateTime touched)
    {
        touched = default;
        if (expected == default || File.GetLastWriteTimeUtc(path) != expected)
        {
            return false;
        }

        File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        touched = File.GetLastWriteTimeUtc(path);
        return true;
    }

    public static ReplicationState? Read(string metaRoot) => Read(metaRoot, out _);

    /// <summary>
    /// The published state, or null. <paramref name="problem"/> tells a file that exists but
    /// cannot be read or is not a status file (damaged, truncated, garbage) from no file at all
    /// (then it is null): the first is not "no replicator has published" and must say so.
    /// </summary>
    public static ReplicationState? Read(string metaRoot, out string? problem)
    {
        problem = null;
        var path = Path.Combine(metaRoot, ReplicationState.FileName);
        string text;
        DateTime modified;
        try
        {
            text = File.ReadAllText(path);
            modified = File.GetLastWriteTimeUtc(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"the status file '{path}' cannot be read ({e.Message}); check its permissions (the replicator writes it as its own user)";
            return null;
        }

        var state = ReplicationState.FromJson(text);
        if (state is null || state.Version < 1 || string.IsNullOrEmpty(state.Host))
        {
            problem = $"the status file '{path}' is corrupt (not a status the replicator wrote); no replicator is keeping it up to date: start the replicator (it replaces the file at its next heartbeat), or delete the file";
            return null;
        }

        // Between rewrites the replicator beats by setting the file's modification time (see
        // TryTouch); heartbeatAt in the JSON is when the content was last written.
        var touched = new DateTimeOffset(modified, TimeSpan.Zero);
        return touched > state.HeartbeatAt ? state with { HeartbeatAt = touched } : state;
    }
}
