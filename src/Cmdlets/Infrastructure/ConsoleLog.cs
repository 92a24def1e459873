using System.Text.Json;
using SqliteReplica.Engine.Logging;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// The log a litestream.yml 'logging' section asks for: lines written by the replicator itself
/// to stdout (or stderr), as text (<c>time=… level=… msg=…</c>) or JSON, filtered by level, so a
/// service's journal shows what Litestream's would. Without that section the cmdlet uses
/// PowerShell's streams (-Verbose, -Debug) instead.
/// </summary>
internal sealed class ConsoleLog : IEngineLog
{
    private readonly object _gate = new();
    private readonly TextWriter _writer;
    private readonly bool _json;
    private readonly EngineLogLevel _minimum;

    public ConsoleLog(string level, string type, bool toStderr)
    {
        _writer = toStderr ? Console.Error : Console.Out;
        _json = type == "json";
        _minimum = level switch
        {
            "debug" => EngineLogLevel.Debug,
            "warn" => EngineLogLevel.Warning,
            "error" => EngineLogLevel.Error,
            _ => EngineLogLevel.Verbose,
        };
    }

    public void Write(EngineLogLevel level, string message)
    {
        if (level < _minimum)
        {
            return;
        }

        var name = level switch
        {
            EngineLogLevel.Debug => "DEBUG",
            EngineLogLevel.Verbose => "INFO",
            EngineLogLevel.Warning => "WARN",
            _ => "ERROR",
        };
        var time = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
        var line = _json
            ? JsonSerializer.Serialize(new Dictionary<string, string> { ["time"] = time, ["level"] = name, ["msg"] = message })
            : $"time={time} level={name} msg={JsonSerializer.Serialize(message)}";
        lock (_gate)
        {
            _writer.WriteLine(line);
            _writer.Flush();
        }
    }
}
