using System.Text;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>YamlDotNet scanner failures that are not YamlException (found by the config fuzz target).</summary>
public class ConfigScannerFuzzRegressionTests
{
    private static ReplicaException ParseFails(string yaml) =>
        Assert.Throws<ReplicaException>(() => new ConfigLoader(_ => null).Parse(yaml, "/etc/litestream.yml"));

    [Fact]
    public void Config_that_makes_the_yaml_scanner_throw_InvalidOperationException_is_ConfigInvalid()
    {
        // Found by the config fuzz target (three bit flips in the README sample): YamlDotNet's
        // scanner threw InvalidOperationException, not YamlException, and it escaped.
        var e = ParseFails("access-key-id: ${KEY_ID}\n{earet-!ccess-key: ${SECRET}\ndbs:\n  - path: /pb/pb_data/data.db\n    replicas:\n      - type: s3\n        endpoint: https://accountid.r2.cloudflarestorage.com\n        bucket: my-pb-backups\n        path: app/data.db\n        region: auto\n        force-path-style: true\n        snapshot-interval: 12h\n        retention: 72h");
        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
    }

    [Fact]
    public void Config_with_an_anchor_on_an_empty_key_is_ConfigInvalid_not_ArgumentException()
    {
        // Found by a 150 s config fuzz run (a splice of two seeds): YamlDotNet's node loader threw
        // ArgumentException ("The current event is of an unsupported type") and it escaped.
        var e = ParseFails("dbs:\n  - path: /data/a.db\n    replicas:\n      - &r\n        : https://accountid.r2.cloudflarestorage.com\n        bucket: my-pb-backups\n        path: app/data.db\n        region: auto\n        force-path-style: true\n        snapshot-interval: 12h\n        retention: 72h");
        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
    }
}
