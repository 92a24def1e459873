using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Infrastructure;

/// <summary>Completes -DatabasePath from the databases of the -ConfigPath given on the same command line.</summary>
public sealed class ConfiguredDatabaseCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        if (fakeBoundParameters["ConfigPath"] is not string configPath)
        {
            return [];
        }

        try
        {
            var config = new ConfigLoader().Load(configPath);
            return config.Databases
                .Where(d => d.Path.StartsWith(wordToComplete.Trim('\'', '"'), StringComparison.Ordinal))
                .Select(d => new CompletionResult(Quote(d.Path), d.Path, CompletionResultType.ParameterValue, $"{d.Path} ({d.Replicas.Count} replica(s))"))
                .ToList();
        }
        catch (Exception)
        {
            return [];
        }
    }

    internal static string Quote(string s) => s.Contains(' ', StringComparison.Ordinal) ? $"'{s.Replace("'", "''", StringComparison.Ordinal)}'" : s;
}

/// <summary>Completes -Generation from the generations really present in the replica given on the command line.</summary>
public sealed class GenerationCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        try
        {
            IReplicaClient? client = fakeBoundParameters["ReplicaPath"] is string path
                ? ReplicaClientFactory.FromDirectory(path)
                : fakeBoundParameters["ReplicaUrl"] is string url && url.StartsWith("file:", StringComparison.OrdinalIgnoreCase)
                    ? ReplicaClientFactory.FromUrl(url)
                    : null;
            if (client is null)
            {
                return [];
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var generations = ReplicaCatalog.ListGenerationsAsync(client, cts.Token).GetAwaiter().GetResult();
            return generations
                .Where(g => g.Generation.StartsWith(wordToComplete, StringComparison.Ordinal))
                .Reverse()
                .Select(g => new CompletionResult(g.Generation, g.Generation, CompletionResultType.ParameterValue, $"{g.Generation}: {g.CreatedAt:u} .. {g.UpdatedAt:u}, {g.SnapshotCount} snapshot(s)"))
                .ToList();
        }
        catch (Exception)
        {
            return [];
        }
    }
}
