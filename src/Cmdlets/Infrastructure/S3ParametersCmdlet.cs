using System.Management.Automation;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Replicas;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// Base of cmdlets that take a replica URL: the S3 settings a bare s3:// URL cannot carry.
/// They belong to the "Url" parameter set of every derived cmdlet.
/// </summary>
public abstract class S3ParametersCmdlet : EngineCmdlet
{
    protected const string UrlSet = "Url";

    /// <summary>S3 endpoint, used verbatim (e.g. https://&lt;account&gt;.r2.cloudflarestorage.com).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    public string? Endpoint { get; set; }

    /// <summary>S3 signing region (auto for R2; default us-east-1).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    public string? Region { get; set; }

    /// <summary>Path-style S3 addressing (the default when -Endpoint is given).</summary>
    [Parameter(ParameterSetName = UrlSet)]
    public SwitchParameter ForcePathStyle { get; set; }

    /// <summary>Do not verify the S3 endpoint's TLS certificate.</summary>
    [Parameter(ParameterSetName = UrlSet)]
    public SwitchParameter SkipVerify { get; set; }

    /// <summary>S3 access key id (user name) and secret (password); default: LITESTREAM_* variables, then the AWS chain.</summary>
    [Parameter(ParameterSetName = UrlSet)]
    [Credential]
    public PSCredential? Credential { get; set; }

    protected S3Settings S3Settings() => new()
    {
        Endpoint = Endpoint,
        Region = Region,
        ForcePathStyle = ForcePathStyle.IsPresent ? true : null,
        SkipVerify = SkipVerify,
        Credentials = Credential is null ? null : new Credentials(Credential.UserName, Credential.GetNetworkCredential().Password),
    };
}
