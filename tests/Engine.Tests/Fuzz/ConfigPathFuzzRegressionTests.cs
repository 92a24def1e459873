using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>Paths no file system can hold (found by the config fuzz target in a long run).</summary>
public class ConfigPathFuzzRegressionTests
{
    [Theory]
    [InlineData("dbs:\n  - path: \"\\u0000\"\n", "dbs[0].path")]
    [InlineData("dbs:\n  - path: /data/app.db\n    meta-path: \"/var/\\u0000meta\"\n", "dbs[0].meta-path")]
    [InlineData("dbs:\n  - path: /data/app.db\n    replicas:\n      - path: \"/backups/\\u0000\"\n", "dbs[0].replicas[0].path")]
    [InlineData("dbs:\n  - path: /data/app.db\n    replicas:\n      - url: file:///a%00b\n", "dbs[0].replicas[0].url")]
    public void Config_path_with_a_NUL_character_is_ConfigInvalid_naming_the_key(string yaml, string key)
    {
        // Path.GetFullPath threw ArgumentException ("Null character in path"), which escaped.
        var e = Assert.Throws<ReplicaException>(() => new ConfigLoader(_ => null).Parse(yaml, "/etc/litestream.yml"));
        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
        Assert.Contains($"'{key}'", e.Message, StringComparison.Ordinal);
    }
}
