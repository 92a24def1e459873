namespace SqliteReplica.Engine.Errors;

/// <summary>
/// The one exception type that crosses the engine boundary. It carries a code, the object it
/// concerns (a path, an object key, a URL: never a secret) and, in the message, what to do next.
/// </summary>
public sealed class ReplicaException : Exception
{
    public ReplicaException(ReplicaErrorCode code, string message, string? target = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Target = target;
    }

    /// <summary>What kind of failure this is.</summary>
    public ReplicaErrorCode Code { get; }

    /// <summary>The path, object name or URL the failure concerns, when there is one.</summary>
    public string? Target { get; }
}
