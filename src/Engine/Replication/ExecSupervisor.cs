using System.Diagnostics;
using System.Text;
using SqliteReplica.Engine.Errors;
using SqliteReplica.Engine.Logging;

namespace SqliteReplica.Engine.Replication;

/// <summary>
/// The <c>exec</c> setting (container-sidecar mode): runs the application as a child process,
/// passes SIGTERM/SIGINT on to it, and tells the replicator to stop (with a final sync) once the
/// application has exited, so its last writes are replicated.
/// </summary>
public sealed class ExecSupervisor : IDisposable
{
    private readonly Process _process;
    private readonly IEngineLog _log;

    private ExecSupervisor(Process process, IEngineLog log)
    {
        _process = process;
        _log = log;
    }

    public int ProcessId => _process.Id;

    /// <summary>Starts the command (split like a shell would: quotes and backslashes, no expansion).</summary>
    public static ExecSupervisor Start(string commandLine, IEngineLog log)
    {
        var words = SplitWords(commandLine);
        if (words.Count == 0)
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigInvalid, "'exec' is empty. Give the command that starts the application.", "exec");
        }

        var psi = new ProcessStartInfo(words[0]) { UseShellExecute = false };
        foreach (var w in words.Skip(1))
        {
            psi.ArgumentList.Add(w);
        }

        try
        {
            var p = Process.Start(psi) ?? throw new InvalidOperationException("no process");
            log.Verbose($"exec: started '{words[0]}' as process {p.Id}");
            return new ExecSupervisor(p, log);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigInvalid, $"'exec' could not start '{words[0]}': {e.Message}. Check the command and that it is on PATH.", "exec", e);
        }
    }

    /// <summary>Passes SIGTERM on to the application.</summary>
    public void ForwardTerminate() => Forward(Native.Libc.SigTerm);

    /// <summary>Passes SIGINT (Ctrl+C) on to the application.</summary>
    public void ForwardInterrupt() => Forward(Native.Libc.SigInt);

    private void Forward(int signal)
    {
        if (!_process.HasExited && Native.Libc.Signal(_process.Id, signal))
        {
            _log.Verbose($"exec: passed signal {signal} on to process {_process.Id}");
        }
    }

    /// <summary>Completes with the application's exit code.</summary>
    public async Task<int> WaitForExitAsync(CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct).ConfigureAwait(false);
        _log.Verbose($"exec: process {_process.Id} exited with code {_process.ExitCode}");
        return _process.ExitCode;
    }

    public void Dispose() => _process.Dispose();

    /// <summary>Shell-like word splitting: whitespace separates, quotes group, backslash escapes.</summary>
    public static List<string> SplitWords(string s)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        bool inWord = false;
        char quote = '\0';
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && quote == '"' && i + 1 < s.Length && s[i + 1] is '"' or '\\')
                {
                    cur.Append(s[++i]);
                }
                else
                {
                    cur.Append(c);
                }

                continue;
            }

            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(cur.ToString());
                    cur.Clear();
                    inWord = false;
                }

                continue;
            }

            inWord = true;
            if (c is '"' or '\'')
            {
                quote = c;
            }
            else if (c == '\\' && i + 1 < s.Length)
            {
                cur.Append(s[++i]);
            }
            else
            {
                cur.Append(c);
            }
        }

        if (quote != '\0')
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigInvalid, $"'exec' has an unclosed {quote} quote: {s}", "exec");
        }

        if (inWord)
        {
            words.Add(cur.ToString());
        }

        return words;
    }
}
