namespace SqliteReplica.Engine.Logging;

/// <summary>How much an engine message matters.</summary>
public enum EngineLogLevel
{
    Debug,
    Verbose,
    Warning,
    Error,
}

/// <summary>
/// Where the engine tells what it does. Implementations must be thread-safe and must not block:
/// the cmdlets queue messages and write them from the pipeline thread.
/// </summary>
public interface IEngineLog
{
    void Write(EngineLogLevel level, string message);
}

/// <summary>Discards everything.</summary>
public sealed class NullEngineLog : IEngineLog
{
    public static readonly NullEngineLog Instance = new();

    public void Write(EngineLogLevel level, string message)
    {
    }
}

public static class EngineLogExtensions
{
    public static void Debug(this IEngineLog log, string message) => log.Write(EngineLogLevel.Debug, message);

    public static void Verbose(this IEngineLog log, string message) => log.Write(EngineLogLevel.Verbose, message);

    public static void Warning(this IEngineLog log, string message) => log.Write(EngineLogLevel.Warning, message);

    public static void Error(this IEngineLog log, string message) => log.Write(EngineLogLevel.Error, message);
}
