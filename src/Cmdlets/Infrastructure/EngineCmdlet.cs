using System.Management.Automation;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Restore;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// Base of every cmdlet: one cancellation token (created in BeginProcessing, cancelled by
/// Ctrl+C through StopProcessing) that reaches every engine call, and a pump that runs engine
/// work in the background while writing its messages and progress from the pipeline thread.
/// </summary>
public abstract class EngineCmdlet : PSCmdlet
{
    private const int ProgressActivityId = 0x5152;
    private CancellationTokenSource? _cts;
    private bool _progressShown;

    internal PipelineMessages Messages { get; } = new();

    protected CancellationToken CancellationToken => _cts?.Token ?? CancellationToken.None;

    /// <summary>Cancels the cmdlet's token (used by signal handlers too).</summary>
    protected void Cancel() => _cts?.Cancel();

    protected override void BeginProcessing()
    {
        _cts = new CancellationTokenSource();
    }

    protected override void StopProcessing()
    {
        _cts?.Cancel();
    }

    protected override void EndProcessing()
    {
        _cts?.Dispose();
        _cts = null;
    }

    /// <summary>Runs engine work and pumps its messages until it finishes; rethrows its exception.</summary>
    protected T Run<T>(Func<CancellationToken, Task<T>> work, string? progressActivity = null)
    {
        var task = Task.Run(() => work(CancellationToken));
        task.ContinueWith(_ => Messages.Wake(), TaskScheduler.Default);
        while (!task.IsCompleted)
        {
            Messages.Signal.Wait();
            Drain(progressActivity);
        }

        Drain(progressActivity);
        CompleteProgress(progressActivity);
        return task.GetAwaiter().GetResult();
    }

    protected void Run(Func<CancellationToken, Task> work, string? progressActivity = null) =>
        Run<bool>(async ct => { await work(ct).ConfigureAwait(false); return true; }, progressActivity);

    /// <summary>Writes an engine failure as a terminating error with its stable id.</summary>
    protected void ThrowEngineError(Exception e, object? target = null)
    {
        ThrowTerminatingError(ErrorMap.ToErrorRecord(Unwrap(e), target));
    }

    /// <summary>Writes an engine failure as a non-terminating error with its stable id.</summary>
    protected void WriteEngineError(Exception e, object? target = null)
    {
        WriteError(ErrorMap.ToErrorRecord(Unwrap(e), target));
    }

    protected static Exception Unwrap(Exception e) => e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : e;

    /// <summary>Resolves a user path (relative to the current location, ~ expanded) to a full file-system path.</summary>
    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    private void Drain(string? progressActivity)
    {
        while (Messages.TryTake(out var item))
        {
            try
            {
                switch (item)
                {
                    case (EngineLogLevel level, string message):
                        switch (level)
                        {
                            case EngineLogLevel.Debug:
                                WriteDebug(message);
                                break;
                            case EngineLogLevel.Verbose:
                                WriteVerbose(message);
                                break;
                            default:
                                WriteWarning(message);
                                break;
                        }

                        break;
                    case RestoreProgress p when progressActivity is not null:
                        var record = new ProgressRecord(ProgressActivityId, progressActivity, $"{p.Phase}: {FormatBytes(p.BytesDone)} of {FormatBytes(p.BytesTotal)}");
                        if (p.BytesTotal > 0)
                        {
                            record.PercentComplete = (int)Math.Min(100, p.BytesDone * 100 / p.BytesTotal);
                        }

                        WriteProgress(record);
                        _progressShown = true;
                        break;
                }
            }
            catch (PipelineStoppedException)
            {
                // Ctrl+C: the pipeline no longer takes output, but the engine still finishes its
                // final work (a last sync, removing temporary files) before the cmdlet returns.
            }
            catch (System.Management.Automation.Host.HostException)
            {
                // A preference set to Inquire (e.g. -Debug on a compiled cmdlet) cannot prompt in a
                // non-interactive service: a log line must never stop replication.
            }
            catch (PSInvalidOperationException e) when (e.Message.Contains("NonInteractive", StringComparison.Ordinal))
            {
                // Same, as pwsh -NonInteractive reports it.
            }
        }
    }

    private void CompleteProgress(string? activity)
    {
        if (activity is null || !_progressShown)
        {
            return;
        }

        try
        {
            WriteProgress(new ProgressRecord(ProgressActivityId, activity, "done") { RecordType = ProgressRecordType.Completed });
        }
        catch (PipelineStoppedException)
        {
        }
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:F1} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / 1024.0 / 1024:F1} MiB",
        _ => $"{bytes / 1024.0 / 1024 / 1024:F2} GiB",
    };
}
