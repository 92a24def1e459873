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

    public static ReplicationState? Read(string metaRoot)
    {
        try
        {
            return ReplicationState.FromJson(File.ReadAllText(Path.Combine(metaRoot, ReplicationState.FileName)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
