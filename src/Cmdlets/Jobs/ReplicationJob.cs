using System.Management.Automation;
using SqliteReplica.Engine.Logging;
using SqliteReplica.Engine.Replication;
using SqliteReplica.Output;

namespace SqliteReplica.Jobs;

/// <summary>
/// Start-SqliteReplication -AsJob: replication running in the background of the session as a
/// real PowerShell job (Get-Job, Receive-Job, Wait-Job, Stop-Job, Remove-Job). Stop-Job copies
/// the last commits and flushes every replica before the job reports Stopped; the per-replica
/// summaries are the job's output.
/// </summary>
public sealed class ReplicationJob : Job
{
    private readonly CancellationTokenSource _cts = new();
    private Task? _run;
    private string _status = "starting";

    internal ReplicationJob(string command, string? name)
        : base(command, name)
    {
        PSJobTypeName = "SqliteReplicationJob";
    }

    public override string Location => Environment.MachineName;

    public override string StatusMessage => _status;

    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Warning.Count > 0 || Verbose.Count > 0 || Debug.Count > 0;

    /// <summary>Engine messages go to the job's own streams (Receive-Job shows them).</summary>
    internal IEngineLog Log => new JobLog(this);

    internal void Start(Replicator replicator)
    {
        SetJobState(JobState.Running);
        _status = "replicating";
        _run = RunAsync(replicator);
    }

    private async Task RunAsync(Replicator replicator)
    {
        try
        {
            await replicator.RunAsync(_cts.Token).ConfigureAwait(false);
            foreach (var db in replicator.Databases)
            {
                var local = db.Capture.Position;
                foreach (var s in db.Syncers)
                {
                    var confirmed = s.ConfirmedPosition;
                    Output.Add(PSObject.AsPSObject(new ReplicationSummary(db.DbPath, s.Name, s.Client.Url, local.ToString(), confirmed.ToString(), !local.IsNone && confirmed == local, s.LastError, (s.Client as Engine.Replicas.S3.S3ReplicaClient)?.Counters)));
                }
            }

            _status = "stopped after a final sync";
        }
        catch (Exception e)
        {
            _status = "failed: " + e.Message;
            Error.Add(Infrastructure.ErrorMap.ToErrorRecord(e));
        }
        finally
        {
            await replicator.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops replication after the final sync; returns when the last commits are in the replicas.</summary>
    public override void StopJob()
    {
        if (IsFinishedState(JobStateInfo.State))
        {
            return;
        }

        SetJobState(JobState.Stopping);
        _cts.Cancel();
        _run?.GetAwaiter().GetResult();
        SetJobState(Error.Count > 0 ? JobState.Failed : JobState.Stopped);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            StopJob();
            _cts.Dispose();
        }

        base.Dispose(disposing);
    }

    private static bool IsFinishedState(JobState s) => s is JobState.Completed or JobState.Failed or JobState.Stopped;

    private sealed class JobLog(ReplicationJob job) : IEngineLog
    {
        public void Write(EngineLogLevel level, string message)
        {
            switch (level)
            {
                case EngineLogLevel.Debug:
                    job.Debug.Add(new DebugRecord(message));
                    break;
                case EngineLogLevel.Verbose:
                    job.Verbose.Add(new VerboseRecord(message));
                    break;
                default:
                    job.Warning.Add(new WarningRecord(message));
                    break;
            }
        }
    }
}
