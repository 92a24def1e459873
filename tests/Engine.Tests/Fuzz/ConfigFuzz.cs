using System.Text;
using System.Text.RegularExpressions;

namespace SqliteReplica.Engine.Tests.Fuzz;

/// <summary>
/// Structured mutations of a litestream.yml: a value replaced by a wrong type, a huge or odd
/// number, unicode, control characters or a variable reference; keys duplicated, renamed or
/// removed; nesting made deep; an anchor/alias bomb; lines reindented or tabbed.
/// </summary>
internal static partial class ConfigFuzz
{
    private static readonly string[] OddValues =
    [
        "[a, b]", "{k: v}", "[]", "{}", "~", "null", "\"\"", "''", "99999999999999999999999", "-1", "-9223372036854775808",
        "2147483648", "1e309", "0x7fffffff", ".inf", "-.nan", "NaN", "true", "no", "0", "0s", "-5s", "9999999999h",
        "2562047h47m16.854775807s", "2562048h", "1.5h", "1h1h1h", "5", "7d", "1µs", "1us", "1ns", "\"\\u0000\"",
        "\"\\uD800\"", "\"\\U0001F600 emoji\"", "日本語/データ.db", "\u202Ertl", "'a''b'", "|\n    block\n    text", ">\n    folded",
        "$", "${", "${}", "${UNSET_VAR}", "$UNSET", "${KEY_ID:-x}", "${EMPTY}", "$$", "${KEY_ID}${SECRET}",
        "!!binary aGVsbG8=", "!!int 12", "!!str 12", "!custom x", "&a x", "*undefined", "file://", "s3://", "s3:///x",
        "file:///a%00b", "s3://b.localhost:99999/p", "http://[::1", "https://", "::", ":", "-", "? x", "@x", "`x",
        "file://host/path", "s3://bucket.localhost/p", "gcs://b/p", "abs://c/p", "sftp://h/p",
    ];

    private static readonly string[] Keys =
    [
        "path", "type", "url", "bucket", "endpoint", "region", "force-path-style", "skip-verify", "retention",
        "snapshot-interval", "sync-interval", "monitor-interval", "checkpoint-interval", "min-checkpoint-page-count",
        "max-checkpoint-page-count", "access-key-id", "secret-access-key", "addr", "exec", "logging", "level", "dbs",
        "replicas", "meta-path", "age", "name", "validation-interval", "heartbeat-url", "unknown-key", "Path", "",
    ];

    [GeneratedRegex(@"^(?<indent>\s*-?\s*)(?<key>[A-Za-z<][\w<-]*):(?<rest>.*)$")]
    private static partial Regex KeyLine();

    public static (byte[], string)? Mutate(string yaml, Random rng)
    {
        var lines = yaml.Replace("\r\n", "\n").Split('\n').ToList();
        var keyed = Enumerable.Range(0, lines.Count).Where(i => KeyLine().IsMatch(lines[i])).ToList();
        if (keyed.Count == 0)
        {
            return null;
        }

        int at = keyed[rng.Next(keyed.Count)];
        var m = KeyLine().Match(lines[at]);
        string indent = m.Groups["indent"].Value, key = m.Groups["key"].Value;
        string what;
        switch (rng.Next(9))
        {
            case 0:
            case 1:
                {
                    var v = OddValues[rng.Next(OddValues.Length)];
                    lines[at] = $"{indent}{key}: {v}";
                    what = $"line {at + 1}: {key} = {v}";
                    break;
                }

            case 2:
                {
                    var k = Keys[rng.Next(Keys.Length)];
                    lines.Insert(at + 1, $"{new string(' ', indent.Length)}{k}:{m.Groups["rest"].Value}");
                    what = $"line {at + 1}: key {k} added after {key}";
                    break;
                }

            case 3:
                lines.RemoveAt(at);
                what = $"line {at + 1} ({key}) removed";
                break;

            case 4:
                {
                    int depth = rng.Next(2) == 0 ? rng.Next(2, 64) : rng.Next(500, 20000);
                    var open = rng.Next(2) == 0 ? "[" : "{a: ";
                    var close = open == "[" ? "]" : "}";
                    var nested = new StringBuilder();
                    for (int i = 0; i < depth; i++) nested.Append(open);
                    nested.Append('x');
                    for (int i = 0; i < depth; i++) nested.Append(close);
                    lines[at] = $"{indent}{key}: {nested}";
                    what = $"line {at + 1}: {key} nested {depth} deep ({open})";
                    break;
                }

            case 5:
                {
                    // A billion-laughs style alias bomb, at the top or as a value.
                    int levels = rng.Next(3, 12);
                    var bomb = new List<string> { "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]" };
                    for (int i = 1; i < levels; i++)
                    {
                        bomb.Add($"x{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]");
                    }

                    if (rng.Next(2) == 0)
                    {
                        lines.InsertRange(0, bomb);
                        what = $"alias bomb of {levels} levels as top-level keys";
                    }
                    else
                    {
                        lines.Insert(0, "bomb: &b");
                        lines.InsertRange(1, bomb.Select(l => "  " + l));
                        lines[at + 1 + bomb.Count] = $"{indent}{key}: *a{levels - 1}";
                        what = $"alias bomb of {levels} levels used as {key}";
                    }

                    break;
                }

            case 6:
                {
                    var c = rng.Next(4) switch { 0 => "\t", 1 => "\u00a0", 2 => "\0", _ => "\ufeff" };
                    lines[at] = c + lines[at];
                    what = $"line {at + 1}: prefixed with U+{(int)c[0]:X4}";
                    break;
                }

            case 7:
                {
                    var copy = lines.GetRange(at, Math.Min(lines.Count - at, 1 + rng.Next(6)));
                    int repeat = rng.Next(2) == 0 ? 2 : rng.Next(2, 300);
                    for (int i = 0; i < repeat; i++) lines.InsertRange(at, copy);
                    what = $"lines {at + 1}.. ({copy.Count}) repeated {repeat} times";
                    break;
                }

            default:
                {
                    var huge = new string((char)('a' + rng.Next(26)), rng.Next(2) == 0 ? 70_000 : 1_000_000);
                    lines[at] = rng.Next(2) == 0 ? $"{indent}{key}: {huge}" : $"{indent}{huge}: x";
                    what = $"line {at + 1}: a {huge.Length}-character {(lines[at].EndsWith(": x", StringComparison.Ordinal) ? "key" : "value")}";
                    break;
                }
        }

        return (Encoding.UTF8.GetBytes(string.Join('\n', lines)), what);
    }
}
