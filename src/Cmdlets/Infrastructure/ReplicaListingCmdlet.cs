using System.Management.Automation;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// The shared shape of the listing cmdlets that can be narrowed to one generation: the replica
/// parameters, -Generation, and one listing written object by object.
/// </summary>
public abstract class ReplicaListingCmdlet : ReplicaCmdlet
{
    /// <summary>With -ConfigPath: the database, as its path appears in the config.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConfigSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ConfiguredDatabaseCompleter))]
    public override string DatabasePath { get; set; } = null!;

    /// <summary>Only this generation.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-f]{16}$")]
    [ArgumentCompleter(typeof(GenerationCompleter))]
    public string? Generation { get; set; }

    /// <summary>Lists what the replica holds, as the cmdlet's output objects.</summary>
    protected abstract Task<IEnumerable<object>> ListAsync(IReplicaClient client, CancellationToken ct);

    protected override void ProcessRecord()
    {
        try
        {
            var client = CreateClient();
            foreach (var item in Run(ct => ListAsync(client, ct)))
            {
                WriteObject(item);
            }
        }
        catch (Exception e) when (e is not PipelineStoppedException)
        {
            WriteEngineError(e, ReplicaTarget);
        }
    }
}
