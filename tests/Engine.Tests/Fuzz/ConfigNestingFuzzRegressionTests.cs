using System.Text;
using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>Config nesting deeper than YamlDotNet's recursive loader survives (found by the config fuzz target).</summary>
public class ConfigNestingFuzzRegressionTests
{
    private static ReplicaException ParseFails(string yaml) =>
        Assert.Throws<ReplicaException>(() => new ConfigLoader(_ => null).Parse(yaml, "/etc/litestream.yml"));

    [Theory]
    [InlineData("[", "]", 20000)]
    [InlineData("{a: ", "}", 5000)]
    [InlineData("[", "]", 65)]
    public void Config_nested_deeper_than_64_levels_is_ConfigInvalid_not_a_stack_overflow(string open, string close, int depth)
    {
        // Found by the config fuzz target: "dbs: [[[[...x...]]]]" overflowed the stack inside
        // YamlDotNet's recursive loader and killed the process.
        var yaml = "dbs:\n  - path: " + string.Concat(Enumerable.Repeat(open, depth)) + "x" + string.Concat(Enumerable.Repeat(close, depth)) + "\n";
        var e = ParseFails(yaml);
        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
        Assert.Contains("64 levels", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_nested_a_little_is_still_read_as_before()
    {
        var e = ParseFails("dbs:\n  - path: [[[x]]]\n");
        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
        Assert.Contains("must be a single value", e.Message, StringComparison.Ordinal);
    }
}
