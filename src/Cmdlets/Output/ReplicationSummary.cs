namespace SqliteReplica.Output;

/// <summary>
/// Written once per database and replica when Start-SqliteReplication ends: where the database
/// was, and what the replica had acknowledged after the final sync.
/// </summary>
public sealed class ReplicationSummary
{
    internal ReplicationSummary(string databasePath, string replicaName, string replicaUrl, string localPosition, string confirmedPosition, bool caughtUp, string? lastError)
    {
        DatabasePath = databasePath;
        ReplicaName = replicaName;
        ReplicaUrl = replicaUrl;
        LocalPosition = localPosition;
        ConfirmedPosition = confirmedPosition;
        CaughtUp = caughtUp;
        LastError = lastError;
    }

    public string DatabasePath { get; }

    public string ReplicaName { get; }

    public string ReplicaUrl { get; }

    /// <summary>Position of the shadow WAL (what was captured locally).</summary>
    public string LocalPosition { get; }

    /// <summary>Position the replica acknowledged.</summary>
    public string ConfirmedPosition { get; }

    /// <summary>True only when the replica acknowledged everything captured.</summary>
    public bool CaughtUp { get; }

    public string? LastError { get; }

    public override string ToString() => $"{DatabasePath} -> {ReplicaName}: {(CaughtUp ? "caught up" : "NOT caught up")} at {ConfirmedPosition}";
}
