namespace SqliteReplica.Output;

/// <summary>
/// Written once per database and replica when Start-SqliteReplication ends: where the database
/// was, and what the replica had acknowledged after the final sync.
/// </summary>
public sealed class ReplicationSummary
{
    internal ReplicationSummary(string databasePath, string replicaName, string replicaUrl, string localPosition, string confirmedPosition, bool caughtUp, string? lastError, Engine.Replicas.S3.RequestCounters? requests)
    {
        PutRequests = requests?.Put ?? 0;
        GetRequests = requests?.Get ?? 0;
        ListRequests = requests?.List ?? 0;
        DeleteRequests = requests?.Delete ?? 0;
        MultipartRequests = requests?.Multipart ?? 0;
        ClassARequests = requests?.ClassA ?? 0;
        ClassBRequests = requests?.ClassB ?? 0;
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

    /// <summary>Object-store requests this run sent to the replica, by kind (zero for file replicas).</summary>
    public long PutRequests { get; }

    public long GetRequests { get; }

    public long ListRequests { get; }

    public long DeleteRequests { get; }

    /// <summary>Create, part, complete and abort calls of multipart uploads.</summary>
    public long MultipartRequests { get; }

    /// <summary>Requests Cloudflare R2 bills as class A (writes, lists, multipart).</summary>
    public long ClassARequests { get; }

    /// <summary>Requests Cloudflare R2 bills as class B (reads).</summary>
    public long ClassBRequests { get; }

    public override string ToString() => $"{DatabasePath} -> {ReplicaName}: {(CaughtUp ? "caught up" : "NOT caught up")} at {ConfirmedPosition}";
}
