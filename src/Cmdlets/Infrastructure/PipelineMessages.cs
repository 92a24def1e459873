using System.Collections.Concurrent;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// Collects what background engine work wants to say (log lines, progress) so the cmdlet can
/// write it from the pipeline thread, the only thread allowed to. The cmdlet sleeps on
/// <see cref="Signal"/> between messages: an idle replicator costs no wake-ups.
/// </summary>
internal sealed class PipelineMessages : IEngineLog, IProgress<RestoreProgress>
{
    private readonly ConcurrentQueue<object> _queue = new();

    public SemaphoreSlim Signal { get; } = new(0, int.MaxValue);

    public void Write(EngineLogLevel level, string message)
    {
        _queue.Enqueue((level, message));
        Signal.Release();
    }

    public void Report(RestoreProgress value)
    {
        _queue.Enqueue(value);
        Signal.Release();
    }

    public bool TryTake(out object item) => _queue.TryDequeue(out item!);

    /// <summary>Wakes the waiting pipeline thread without a message (e.g. when work completes).</summary>
    public void Wake() => Signal.Release();
}
