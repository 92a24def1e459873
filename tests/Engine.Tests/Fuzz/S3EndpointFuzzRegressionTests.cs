using System.Text;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>Endpoints the AWS SDK refuses (found by the config fuzz target).</summary>
public class S3EndpointFuzzRegressionTests
{
    private static ReplicaException ParseFails(string yaml) =>
        Assert.Throws<ReplicaException>(() => new ConfigLoader(_ => null).Parse(yaml, "/etc/litestream.yml"));

    [Theory]
    [InlineData("htt\u00f0\u00e3ps://accountid.r2.cloudflarestorage.com")]
    [InlineData("http\u0004://accountid.r2.cloudflarestorage.com")]
    [InlineData("s3://b.localhost:99999/p")]
    public void Config_endpoint_that_is_not_an_http_url_is_ConfigInvalid_naming_the_key(string endpoint)
    {
        // Found by the config fuzz target: the value reached the AWS SDK, whose
        // AmazonClientException ("Value for ServiceURL is not a valid URL") escaped as an internal error.
        var e = ParseFails($"dbs:\n  - path: /data/app.db\n    replicas:\n      - type: s3\n        bucket: b\n        endpoint: \"{endpoint}\"\n");
        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
        Assert.Contains("dbs[0].replicas[0].endpoint", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void S3_client_with_an_unusable_endpoint_is_InvalidArgument_not_an_sdk_exception()
    {
        var e = Assert.Throws<ReplicaException>(() => new SqliteReplica.Engine.Replicas.S3.S3ReplicaClient(
            new SqliteReplica.Engine.Replicas.S3.S3ReplicaOptions { Bucket = "b", Endpoint = "s3://b.localhost:99999/p" }, SqliteReplica.Engine.Logging.NullEngineLog.Instance));
        Assert.Equal(ReplicaErrorCode.InvalidArgument, e.Code);
    }

    [Theory]
    [InlineData("\"\"")]
    [InlineData("${EMPTY}")]
    public void Config_empty_endpoint_means_the_default_endpoint(string value)
    {
        // Found by the config fuzz target: an empty endpoint reached the AWS SDK as a ServiceURL
        // of "" and its AmazonClientException ("No RegionEndpoint or ServiceURL configured") escaped.
        var config = new ConfigLoader(name => name == "EMPTY" ? "" : null)
            .Parse($"dbs:\n  - path: /data/app.db\n    replicas:\n      - type: s3\n        bucket: b\n        endpoint: {value}\n", "/etc/litestream.yml");
        var replica = config.Databases[0].Replicas[0];
        Assert.Null(replica.Endpoint);
        using var client = (SqliteReplica.Engine.Replicas.S3.S3ReplicaClient)SqliteReplica.Engine.Replicas.ReplicaClientFactory.FromConfig(replica, SqliteReplica.Engine.Logging.NullEngineLog.Instance);
        Assert.Equal("s3://b/", client.Url);
    }
}
