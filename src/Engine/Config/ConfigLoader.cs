using System.Globalization;
using System.Text;
using SqliteReplica.Engine.Errors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SqliteReplica.Engine.Config;

/// <summary>
/// Reads Litestream's YAML schema strictly. Unlike Litestream, an unknown key, a wrong type, a bad
/// duration or an unset environment variable is an error naming the key and line, because a
/// silently ignored key once cost users their retention setting. Keys Litestream accepts but this
/// tool does not implement get their own "not supported" error. <c>$VAR</c> and <c>${VAR}</c> are
/// expanded inside values (never in comments).
/// </summary>
public sealed class ConfigLoader
{
    private static readonly HashSet<string> TopKeys = ["access-key-id", "secret-access-key", "addr", "dbs", "logging", "exec"];
    private static readonly HashSet<string> LoggingKeys = ["level", "type", "stderr"];
    private static readonly HashSet<string> DbKeys = ["path", "meta-path", "monitor-interval", "checkpoint-interval", "min-checkpoint-page-count", "max-checkpoint-page-count", "replicas", "heartbeat-url", "heartbeat-interval"];
    private static readonly HashSet<string> ReplicaKeys =
    [
        "type", "url", "name", "path", "bucket", "endpoint", "region", "force-path-style", "skip-verify",
        "access-key-id", "secret-access-key", "sync-interval", "snapshot-interval", "retention",
        "retention-check-interval", "validation-interval",
    ];

    // Accepted by some Litestream version, not implemented here: refused with their own error.
    private static readonly HashSet<string> UnsupportedReplicaKeys = ["age", "account-name", "account-key", "host", "user", "password", "key-path", "part-size", "concurrency"];
    private static readonly HashSet<string> UnsupportedTypes = ["gcs", "abs", "sftp"];

    private readonly Func<string, string?> _env;
    private string _file = "";

    public ConfigLoader(Func<string, string?>? environment = null)
    {
        _env = environment ?? Environment.GetEnvironmentVariable;
    }

    /// <summary>
    /// Refuses settings this version reads but cannot honour, so that none is silently ignored.
    /// (Every key of Litestream's v0.3 schema that this loader accepts is now applied.)
    /// </summary>
    public static void EnsureSupported(ReplicatorConfig config)
    {
        if (config.Address is { } addr && !addr.Contains(':', StringComparison.Ordinal))
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigInvalid, $"{config.SourcePath}: 'addr' must give a port, e.g. ':9090' or '127.0.0.1:9090' (not '{addr}').", config.SourcePath);
        }
    }

    public ReplicatorConfig Load(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        string text;
        try
        {
            text = File.ReadAllText(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigNotFound, $"Cannot read the configuration file '{full}': {e.Message}. Check the path given with -ConfigPath.", full, e);
        }

        return Parse(text, full);
    }

    public ReplicatorConfig Parse(string yaml, string sourcePath)
    {
        _file = sourcePath;
        var stream = new YamlStream();
        try
        {
            CheckNesting(yaml);
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw Invalid(null, (int)e.Start.Line, $"is not valid YAML: {e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet fails this way on some malformed input instead of with a YamlException:
            // its scanner (a '!' where a key is expected) and its node loader (an anchor on an
            // empty key, "&r\n  : value"). It is still malformed YAML.
            throw Invalid(null, 1, $"is not valid YAML ({e.Message})");
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw Invalid(null, 1, "must be a YAML mapping with a 'dbs' list");
        }

        var top = Map(root, TopKeys, null, "");
        Credentials? defaults = ReadCredentials(top, root, "", null);
        var config = new ReplicatorConfig
        {
            SourcePath = sourcePath,
            Address = OptString(top, "addr"),
            Exec = OptString(top, "exec"),
        };

        if (top.TryGetValue("logging", out var loggingNode))
        {
            var logging = Map(Mapping(loggingNode, "logging"), LoggingKeys, null, "logging.");
            var level = (OptString(logging, "level", "logging.") ?? "info").ToLowerInvariant();
            if (level is not ("debug" or "info" or "warn" or "warning" or "error"))
            {
                throw Invalid("logging.level", Line(logging["level"]), $"must be debug, info, warn or error, not '{level}'");
            }

            var type = (OptString(logging, "type", "logging.") ?? "text").ToLowerInvariant();
            if (type is not ("text" or "json"))
            {
                throw Invalid("logging.type", Line(logging["type"]), $"must be text or json, not '{type}'");
            }

            config = config with { LoggingConfigured = true, LogLevel = level == "warning" ? "warn" : level, LogType = type, LogToStderr = OptBool(logging, "stderr", "logging.") ?? false };
        }

        var dbs = new List<DatabaseConfig>();
        if (top.TryGetValue("dbs", out var dbsNode))
        {
            if (dbsNode is not YamlSequenceNode seq)
            {
                throw Invalid("dbs", Line(dbsNode), "must be a list of databases");
            }

            int i = 0;
            foreach (var item in seq)
            {
                dbs.Add(ReadDatabase(Mapping(item, $"dbs[{i}]"), $"dbs[{i}].", defaults));
                i++;
            }
        }

        var dup = dbs.GroupBy(d => d.Path).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
        {
            throw Invalid("dbs", dup.Skip(1).First().Line, $"lists database '{dup.Key}' twice");
        }

        return config with { Databases = dbs };
    }

    /// <summary>
    /// Deeper nesting than any litestream.yml needs is refused before the document is loaded:
    /// YamlDotNet builds its node tree recursively, and a few thousand nested '[' would overflow
    /// the stack and kill the process (no exception can be caught for that). The event parser
    /// used here is not recursive.
    /// </summary>
    private void CheckNesting(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        int depth = 0;
        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case YamlDotNet.Core.Events.MappingStart or YamlDotNet.Core.Events.SequenceStart:
                    if (++depth > MaxNesting)
                    {
                        throw Invalid(null, (int)parser.Current.Start.Line, $"nests lists and mappings more than {MaxNesting} levels deep; a litestream.yml needs fewer than 10");
                    }

                    break;
                case YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd:
                    depth--;
                    break;
            }
        }
    }

    private const int MaxNesting = 64;

    private DatabaseConfig ReadDatabase(YamlMappingNode node, string prefix, Credentials? defaults)
    {
        var map = Map(node, DbKeys, null, prefix);
        var path = NullIfEmpty(OptString(map, "path", prefix)) ?? throw Invalid(prefix + "path", Line(node), "is required (the database file)");
        var metaPath = OptString(map, "meta-path", prefix);
        if (metaPath is "")
        {
            throw Invalid(prefix + "meta-path", Line(map["meta-path"]), "is empty; remove it to use the default beside the database");
        }

        var db = new DatabaseConfig
        {
            Path = ExpandPath(path, prefix + "path", Line(map.GetValueOrDefault("path") ?? node)),
            MetaPath = metaPath is not null ? ExpandPath(metaPath, prefix + "meta-path", Line(map["meta-path"])) : null,
            MonitorInterval = OptDuration(map, "monitor-interval", prefix) ?? TimeSpan.FromSeconds(1),
            CheckpointInterval = OptDuration(map, "checkpoint-interval", prefix) ?? TimeSpan.FromMinutes(1),
            MinCheckpointPageCount = OptInt(map, "min-checkpoint-page-count", prefix) ?? 1000,
            MaxCheckpointPageCount = OptInt(map, "max-checkpoint-page-count", prefix) ?? 10000,
            HeartbeatUrl = OptString(map, "heartbeat-url", prefix),
            HeartbeatInterval = OptDuration(map, "heartbeat-interval", prefix) ?? TimeSpan.FromMinutes(1),
            Line = Line(node),
        };
        if (db.MinCheckpointPageCount <= 0)
        {
            throw Invalid(prefix + "min-checkpoint-page-count", Line(map["min-checkpoint-page-count"]), "must be greater than 0");
        }

        if (db.MaxCheckpointPageCount < 0)
        {
            throw Invalid(prefix + "max-checkpoint-page-count", Line(map["max-checkpoint-page-count"]), "must be 0 (off) or more");
        }

        var replicas = new List<ReplicaConfig>();
        if (map.TryGetValue("replicas", out var rn))
        {
            if (rn is not YamlSequenceNode seq)
            {
                throw Invalid(prefix + "replicas", Line(rn), "must be a list");
            }

            int i = 0;
            foreach (var item in seq)
            {
                replicas.Add(ReadReplica(Mapping(item, $"{prefix}replicas[{i}]"), $"{prefix}replicas[{i}].", defaults));
                i++;
            }
        }

        var dup = replicas.GroupBy(r => r.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
        {
            throw Invalid(prefix + "replicas", dup.Skip(1).First().Line, $"has two replicas named '{dup.Key}'; give each a unique 'name'");
        }

        return db with { Replicas = replicas };
    }

    private ReplicaConfig ReadReplica(YamlMappingNode node, string prefix, Credentials? defaults)
    {
        var map = Map(node, ReplicaKeys, UnsupportedReplicaKeys, prefix);
        var url = OptString(map, "url", prefix);
        var type = OptString(map, "type", prefix)?.ToLowerInvariant();
        var path = OptString(map, "path", prefix);
        var bucket = OptString(map, "bucket", prefix);
        string? localEndpoint = null;
        if (url is not null)
        {
            if (path is not null || bucket is not null)
            {
                throw Invalid(prefix + "url", Line(map["url"]), $"cannot be combined with '{(path is not null ? "path" : "bucket")}'; use one of them");
            }

            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !url.Contains("://", StringComparison.Ordinal))
            {
                throw Invalid(prefix + "url", Line(map["url"]), $"'{url}' is not a URL (e.g. file:///var/backups/db or s3://bucket/path)");
            }

            var scheme = uri.Scheme.ToLowerInvariant();
            type = scheme;
            if (scheme == "file")
            {
                path = Uri.UnescapeDataString(uri.AbsolutePath);
                if (!string.IsNullOrEmpty(uri.Host))
                {
                    path = "/" + uri.Host + path;
                }
            }
            else if (scheme == "s3")
            {
                bucket = uri.Host;
                path = Uri.UnescapeDataString(uri.AbsolutePath).Trim('/');
                int dot = bucket.IndexOf(".localhost", StringComparison.OrdinalIgnoreCase);
                if (dot > 0)
                {
                    // Litestream's form for a local endpoint: s3://bucket.localhost:9000/path.
                    localEndpoint = $"http://localhost{(uri.IsDefaultPort ? "" : ":" + uri.Port)}";
                    bucket = bucket[..dot];
                }
            }
        }
        else if (path is not null && path.Contains("://", StringComparison.Ordinal))
        {
            throw Invalid(prefix + "path", Line(map["path"]), "looks like a URL; put URLs in 'url'");
        }

        type ??= "file";
        if (UnsupportedTypes.Contains(type))
        {
            throw new ReplicaException(ReplicaErrorCode.ConfigNotSupported,
                $"{_file}:{Line(node)}: {prefix}type '{type}' is a Litestream replica type SqliteReplica does not support; use 'file' or 's3'.", _file);
        }

        if (type is not ("file" or "s3"))
        {
            throw Invalid(prefix + "type", Line(node), $"'{type}' is not a replica type; use 'file' or 's3'");
        }

        if (type == "file")
        {
            if (string.IsNullOrEmpty(path))
            {
                throw Invalid(prefix + "path", Line(node), "is required for a file replica (the replica directory)");
            }

            path = ExpandPath(path, prefix + (map.ContainsKey("url") ? "url" : "path"), Line(map.GetValueOrDefault("url") ?? map.GetValueOrDefault("path") ?? node));
            foreach (var k in new[] { "bucket", "endpoint", "region", "force-path-style", "skip-verify", "access-key-id", "secret-access-key" })
            {
                if (map.TryGetValue(k, out var v))
                {
                    throw Invalid(prefix + k, Line(v), "applies to s3 replicas only; a file replica would ignore it");
                }
            }
        }
        else if (string.IsNullOrEmpty(bucket))
        {
            throw Invalid(prefix + "bucket", Line(node), "is required for an s3 replica (or give url: s3://bucket/path)");
        }

        // Empty means not given (the AWS default endpoint), as in Litestream.
        var endpoint = NullIfEmpty(OptString(map, "endpoint", prefix));
        // Only the scheme is judged here (the README's "https://<accountid>..." placeholder must
        // still load); whatever else the SDK refuses becomes InvalidArgument in the S3 client.
        if (endpoint is not null && endpoint.Contains("://", StringComparison.Ordinal)
            && !endpoint.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !endpoint.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid(prefix + "endpoint", Line(map["endpoint"]), $"'{endpoint}' is not an http:// or https:// URL (e.g. https://<accountid>.r2.cloudflarestorage.com)");
        }

        var creds = type == "s3" ? ReadCredentials(map, node, prefix, defaults) : null;
        return new ReplicaConfig
        {
            Type = type,
            Name = OptString(map, "name", prefix) ?? type,
            Path = path,
            Bucket = bucket,
            Endpoint = endpoint ?? localEndpoint,
            Region = OptString(map, "region", prefix),
            ForcePathStyle = OptBool(map, "force-path-style", prefix),
            SkipVerify = OptBool(map, "skip-verify", prefix) ?? false,
            Credentials = creds,
            SyncInterval = OptDuration(map, "sync-interval", prefix) ?? TimeSpan.FromSeconds(1),
            SnapshotInterval = OptDuration(map, "snapshot-interval", prefix) ?? TimeSpan.Zero,
            Retention = OptDuration(map, "retention", prefix) ?? TimeSpan.FromHours(24),
            RetentionCheckInterval = OptDuration(map, "retention-check-interval", prefix) ?? TimeSpan.FromHours(1),
            ValidationInterval = OptDuration(map, "validation-interval", prefix) ?? TimeSpan.Zero,
            Line = Line(node),
        };
    }

    /// <summary>
    /// A key pair from this level, completed from <paramref name="defaults"/> (the top level) as
    /// Litestream does. Both empty means "not given": the environment and the AWS chain apply.
    /// </summary>
    private Credentials? ReadCredentials(Dictionary<string, YamlNode> map, YamlNode node, string prefix, Credentials? defaults)
    {
        var id = NullIfEmpty(OptString(map, "access-key-id", prefix)) ?? defaults?.AccessKeyId;
        var secret = NullIfEmpty(OptString(map, "secret-access-key", prefix)) ?? defaults?.SecretAccessKey;
        if (id is null && secret is null)
        {
            return null;
        }

        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(secret))
        {
            throw Invalid(prefix + (string.IsNullOrEmpty(id) ? "access-key-id" : "secret-access-key"), Line(node), "is missing or empty while its partner is set; give both or neither");
        }

        return new Credentials(id, secret);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private Dictionary<string, YamlNode> Map(YamlMappingNode node, HashSet<string> known, HashSet<string>? unsupported, string prefix)
    {
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in node.Children)
        {
            var key = (k as YamlScalarNode)?.Value ?? "";
            if (unsupported is not null && unsupported.Contains(key))
            {
                throw new ReplicaException(ReplicaErrorCode.ConfigNotSupported,
                    $"{_file}:{Line(k)}: '{prefix}{key}' is a Litestream setting SqliteReplica does not support. Remove it; it would not be applied.", _file);
            }

            if (!known.Contains(key))
            {
                var hint = known.OrderBy(x => Distance(x, key)).First();
                throw new ReplicaException(ReplicaErrorCode.ConfigUnknownKey,
                    $"{_file}:{Line(k)}: unknown key '{prefix}{key}'{(Distance(hint, key) <= 3 ? $" (did you mean '{hint}'?)" : "")}. Known keys here: {string.Join(", ", known.Order())}.", _file);
            }

            if (!result.TryAdd(key, v))
            {
                throw Invalid(prefix + key, Line(k), "is given twice");
            }
        }

        return result;
    }

    private YamlMappingNode Mapping(YamlNode node, string key) =>
        node as YamlMappingNode ?? throw Invalid(key, Line(node), "must be a mapping of keys");

    private string? OptString(Dictionary<string, YamlNode> map, string key, string prefix = "")
    {
        if (!map.TryGetValue(key, out var node))
        {
            return null;
        }

        if (node is not YamlScalarNode scalar)
        {
            throw Invalid(prefix + key, Line(node), "must be a single value, not a list or mapping");
        }

        if (scalar.Value is null || (scalar.Style == YamlDotNet.Core.ScalarStyle.Plain && scalar.Value is "~" or "null" or ""))
        {
            return null;
        }

        return Expand(scalar.Value, prefix + key, Line(node));
    }

    private bool? OptBool(Dictionary<string, YamlNode> map, string key, string prefix)
    {
        var s = OptString(map, key, prefix);
        return s?.ToLowerInvariant() switch
        {
            null => null,
            "true" or "yes" or "on" => true,
            "false" or "no" or "off" => false,
            _ => throw Invalid(prefix + key, Line(map[key]), $"must be true or false, not '{s}'"),
        };
    }

    private int? OptInt(Dictionary<string, YamlNode> map, string key, string prefix)
    {
        var s = OptString(map, key, prefix);
        if (s is null)
        {
            return null;
        }

        return int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw Invalid(prefix + key, Line(map[key]), $"must be a whole number, not '{s}'");
    }

    private TimeSpan? OptDuration(Dictionary<string, YamlNode> map, string key, string prefix)
    {
        var s = OptString(map, key, prefix);
        if (s is null)
        {
            return null;
        }

        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) && s != "0")
        {
            throw Invalid(prefix + key, Line(map[key]), $"'{s}' has no unit (Litestream would read it as nanoseconds); write e.g. '{s}s'");
        }

        if (!GoDuration.TryParse(s, out var d) || d < TimeSpan.Zero)
        {
            throw Invalid(prefix + key, Line(map[key]), $"'{s}' is not a duration; use Go syntax such as 500ms, 10s, 1m30s, 24h (days like '7d' are not valid: write '168h')");
        }

        return d;
    }

    /// <summary>Go os.ExpandEnv semantics, except that an unset variable is an error.</summary>
    private string Expand(string value, string key, int line)
    {
        if (!value.Contains('$'))
        {
            return value;
        }

        var sb = new StringBuilder();
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c != '$' || i + 1 >= value.Length)
            {
                sb.Append(c);
                continue;
            }

            string name;
            int end;
            if (value[i + 1] == '{')
            {
                int close = value.IndexOf('}', i + 2);
                if (close < 0)
                {
                    throw Invalid(key, line, $"has an unclosed '${{' in '{value}'");
                }

                name = value[(i + 2)..close];
                end = close;
                if (name.Length == 0 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
                {
                    throw Invalid(key, line, $"has '${{{name}}}', which is not a variable name (defaults such as ${{VAR:-x}} are not supported)");
                }
            }
            else if (char.IsAsciiLetterOrDigit(value[i + 1]) || value[i + 1] == '_')
            {
                int j = i + 1;
                while (j < value.Length && (char.IsAsciiLetterOrDigit(value[j]) || value[j] == '_'))
                {
                    j++;
                }

                name = value[(i + 1)..j];
                end = j - 1;
            }
            else
            {
                sb.Append(c);
                continue;
            }

            var v = _env(name) ?? throw new ReplicaException(ReplicaErrorCode.ConfigUnsetVariable,
                $"{_file}:{line}: '{key}' uses environment variable '{name}', which is not set. Set it (for a service, in its environment file) or write the value directly.", _file);
            sb.Append(v);
            i = end;
        }

        return sb.ToString();
    }

    private string ExpandPath(string path, string key, int line)
    {
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            // Path.GetFullPath throws ArgumentException for it, which escaped as an internal error.
            throw Invalid(key, line, "contains a NUL character, which no file path can hold");
        }

        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            path = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "");
        }

        return System.IO.Path.GetFullPath(path);
    }

    private ReplicaException Invalid(string? key, int line, string what) =>
        new(ReplicaErrorCode.ConfigInvalid, key is null ? $"{_file}:{line}: the file {what}." : $"{_file}:{line}: '{key}' {what}.", _file);

    private static int Line(YamlNode node) => (int)node.Start.Line;

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
        }

        return d[a.Length, b.Length];
    }
}
