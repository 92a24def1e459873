using SqliteReplica.Engine.Config;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Engine.Tests;

/// <summary>
/// The strict litestream.yml loader: Litestream v0.3.13's schema (spec §6), but every unknown
/// key, bad type, bad duration or unset variable is an error that names the key and the line.
/// Environment variables come from a dictionary, never from the real environment.
/// </summary>
public class ConfigLoaderTests
{
    private const string KeyId = "AKIAEXAMPLEKEYID";
    private const string Secret = "wJalr/XUtnFEMI+K7MDENG/bPxRfiCYSECRET";

    private static readonly Dictionary<string, string> Vars = new()
    {
        ["LITESTREAM_ACCESS_KEY_ID"] = KeyId,
        ["LITESTREAM_SECRET_ACCESS_KEY"] = Secret,
    };

    // The configuration from the issue, verbatim.
    private const string Sample = """
        access-key-id: ${LITESTREAM_ACCESS_KEY_ID}
        secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}
        dbs:
          - path: /pb/pb_data/data.db
            replicas:
              - type: s3
                endpoint: https://<accountid>.r2.cloudflarestorage.com
                bucket: my-pb-backups
                path: taxwalaai/data.db
                region: auto
                force-path-style: true
                snapshot-interval: 12h
                retention: 72h
        """;

    private static ReplicatorConfig Parse(string yaml, Dictionary<string, string>? env = null)
    {
        var vars = env ?? Vars;
        return new ConfigLoader(name => vars.GetValueOrDefault(name)).Parse(yaml, "test.yml");
    }

    private static ReplicaException Fails(string yaml, ReplicaErrorCode code, Dictionary<string, string>? env = null)
    {
        var e = Assert.Throws<ReplicaException>(() => Parse(yaml, env));
        Assert.True(code == e.Code, $"expected {code}, got {e.Code}: {e.Message}");
        return e;
    }

    /// <summary>One db with one replica whose body is <paramref name="replicaLines"/> (indented by the helper).</summary>
    private static string OneReplica(params string[] replicaLines)
    {
        var body = string.Join("\n", replicaLines.Select((l, i) => (i == 0 ? "      - " : "        ") + l));
        return "dbs:\n  - path: /data/app.db\n    replicas:\n" + body + "\n";
    }

    private static ReplicaConfig SingleReplica(ReplicatorConfig config) => Assert.Single(Assert.Single(config.Databases).Replicas);

    private static string Home(string rest) =>
        Path.GetFullPath(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), rest));

    // ---- the issue's sample -------------------------------------------------------------------

    [Fact]
    public void Sample_config_parses_with_both_variables_set()
    {
        var config = Parse(Sample);

        Assert.Equal("test.yml", config.SourcePath);
        var db = Assert.Single(config.Databases);
        Assert.Equal(Path.GetFullPath("/pb/pb_data/data.db"), db.Path);
        var r = Assert.Single(db.Replicas);
        Assert.Equal("s3", r.Type);
        Assert.Equal("s3", r.Name);
        Assert.Equal("https://<accountid>.r2.cloudflarestorage.com", r.Endpoint);
        Assert.Equal("my-pb-backups", r.Bucket);
        Assert.Equal("taxwalaai/data.db", r.Path);
        Assert.Equal("auto", r.Region);
        Assert.True(r.ForcePathStyle);
        Assert.False(r.SkipVerify);
        Assert.Equal(TimeSpan.FromHours(12), r.SnapshotInterval);
        Assert.Equal(TimeSpan.FromHours(72), r.Retention);
        Assert.Equal(TimeSpan.FromSeconds(1), r.SyncInterval);
        Assert.Equal(TimeSpan.FromHours(1), r.RetentionCheckInterval);
        Assert.Equal(TimeSpan.Zero, r.ValidationInterval);
        Assert.NotNull(r.Credentials);
        Assert.Equal(KeyId, r.Credentials!.AccessKeyId);
        Assert.Equal(Secret, r.Credentials.SecretAccessKey);
        Assert.Equal(6, r.Line);
        Assert.Equal(4, db.Line);

        ConfigLoader.EnsureSupported(config); // nothing in it is unsupported
    }

    [Fact]
    public void Credentials_are_never_formatted_into_text()
    {
        var config = Parse(Sample);
        var r = SingleReplica(config);

        Assert.DoesNotContain(Secret, r.Credentials!.ToString());
        Assert.DoesNotContain(KeyId, r.Credentials.ToString()); // at most a prefix of the key id
        Assert.DoesNotContain(Secret, r.ToString()); // record ToString prints Credentials via its ToString
        Assert.DoesNotContain(Secret, config.ToString());
        Assert.DoesNotContain(Secret, config.Databases[0].ToString());
        Assert.DoesNotContain("TOPSECRET", new Credentials("ab", "TOPSECRET").ToString()); // short key ids too
        Assert.DoesNotContain("TOPSECRET", new Credentials("", "TOPSECRET").ToString());
    }

    [Fact]
    public void Unset_variable_names_the_variable_and_the_line()
    {
        var env = new Dictionary<string, string> { ["LITESTREAM_ACCESS_KEY_ID"] = KeyId };

        var e = Fails(Sample, ReplicaErrorCode.ConfigUnsetVariable, env);

        Assert.Contains("LITESTREAM_SECRET_ACCESS_KEY", e.Message);
        Assert.Contains("test.yml:2:", e.Message);
        Assert.Contains("secret-access-key", e.Message);
        Assert.Equal("test.yml", e.Target);
    }

    [Fact]
    public void Unset_variable_deep_in_a_replica_names_its_line()
    {
        var yaml = OneReplica("type: s3", "bucket: b", "endpoint: https://$ACCOUNT.r2.cloudflarestorage.com");

        var e = Fails(yaml, ReplicaErrorCode.ConfigUnsetVariable);

        Assert.Contains("'ACCOUNT'", e.Message);
        Assert.Contains("test.yml:6:", e.Message);
        Assert.Contains("dbs[0].replicas[0].endpoint", e.Message);
    }

    [Fact]
    public void A_variable_set_to_the_empty_string_is_set()
    {
        var env = new Dictionary<string, string> { ["SUFFIX"] = "" };

        var r = SingleReplica(Parse(OneReplica("type: s3", "bucket: b${SUFFIX}"), env));

        Assert.Equal("b", r.Bucket);
    }

    // ---- environment expansion -----------------------------------------------------------------

    [Fact]
    public void Dollar_and_braced_forms_are_both_expanded_inside_values()
    {
        var env = new Dictionary<string, string> { ["BUCKET"] = "my-bucket", ["ENV"] = "prod", ["DB"] = "data", ["ACCT"] = "1234" };
        var yaml = OneReplica(
            "type: s3",
            "bucket: $BUCKET",
            "path: backups/${ENV}/$DB.db",
            "endpoint: \"https://${ACCT}.r2.cloudflarestorage.com\"",
            "region: '$ENV'");

        var r = SingleReplica(Parse(yaml, env));

        Assert.Equal("my-bucket", r.Bucket);
        Assert.Equal("backups/prod/data.db", r.Path); // '$DB.db': the name stops at '.'
        Assert.Equal("https://1234.r2.cloudflarestorage.com", r.Endpoint);
        Assert.Equal("prod", r.Region); // single-quoted values are expanded too (Litestream expands the raw text)
    }

    [Fact]
    public void Expanded_values_are_not_expanded_again_or_parsed_as_yaml()
    {
        var env = new Dictionary<string, string> { ["P"] = "a$OTHER # not a comment: x" };

        var r = SingleReplica(Parse(OneReplica("type: s3", "bucket: b", "path: ${P}"), env));

        Assert.Equal("a$OTHER # not a comment: x", r.Path);
    }

    [Fact]
    public void Dollar_in_a_comment_is_not_expanded_and_not_an_error()
    {
        var yaml = """
            # Costs $5 a month; set ${NOT_SET} and $ALSO_NOT_SET before starting.
            dbs:
              - path: /data/app.db # $NOR_THIS
                replicas:
                  # ${NOR_THIS_ONE:-default}
                  - type: s3
                    bucket: b # ${UNSET_IN_TRAILING_COMMENT}
            """;

        var r = SingleReplica(Parse(yaml));

        Assert.Equal("b", r.Bucket);
    }

    [Fact]
    public void A_lone_dollar_is_kept()
    {
        var r = SingleReplica(Parse(OneReplica("type: s3", "bucket: b", "path: 'price$'")));

        Assert.Equal("price$", r.Path);
    }

    [Theory]
    [InlineData("${VAR:-x}")]
    [InlineData("${VAR-x}")]
    [InlineData("${}")]
    [InlineData("${VAR")]
    public void Shell_style_defaults_and_malformed_braces_are_invalid(string value)
    {
        var env = new Dictionary<string, string> { ["VAR"] = "set" };

        var e = Fails(OneReplica("type: s3", "bucket: b", $"path: '{value}'"), ReplicaErrorCode.ConfigInvalid, env);

        Assert.Contains("dbs[0].replicas[0].path", e.Message);
        Assert.Contains("test.yml:6:", e.Message);
    }

    // ---- unknown and unsupported keys ----------------------------------------------------------

    [Fact]
    public void Unknown_top_level_key_is_named_with_its_line_and_a_suggestion()
    {
        var e = Fails("logging:\n  level: info\ndbz:\n  - path: /a.db\n", ReplicaErrorCode.ConfigUnknownKey);

        Assert.Contains("test.yml:3:", e.Message);
        Assert.Contains("'dbz'", e.Message);
        Assert.Contains("did you mean 'dbs'", e.Message);
    }

    [Fact]
    public void Unknown_db_key_is_named_with_its_path_line_and_a_suggestion()
    {
        var e = Fails("dbs:\n  - path: /a.db\n    monitor-intervall: 1s\n", ReplicaErrorCode.ConfigUnknownKey);

        Assert.Contains("test.yml:3:", e.Message);
        Assert.Contains("'dbs[0].monitor-intervall'", e.Message);
        Assert.Contains("did you mean 'monitor-interval'", e.Message);
    }

    [Fact]
    public void Unknown_replica_key_is_named_with_its_path_line_and_a_suggestion()
    {
        var yaml = "dbs:\n  - path: /a.db\n  - path: /b.db\n    replicas:\n      - path: /r1\n      - path: /r2\n        retension: 72h\n";

        var e = Fails(yaml, ReplicaErrorCode.ConfigUnknownKey);

        Assert.Contains("test.yml:7:", e.Message);
        Assert.Contains("'dbs[1].replicas[1].retension'", e.Message);
        Assert.Contains("did you mean 'retention'", e.Message);
    }

    [Fact]
    public void Unknown_logging_key_is_named_with_its_path_line_and_a_suggestion()
    {
        var e = Fails("logging:\n  levle: debug\n", ReplicaErrorCode.ConfigUnknownKey);

        Assert.Contains("test.yml:2:", e.Message);
        Assert.Contains("'logging.levle'", e.Message);
        Assert.Contains("did you mean 'level'", e.Message);
    }

    [Fact]
    public void Unknown_key_far_from_every_known_key_gets_no_suggestion_but_the_known_keys()
    {
        var e = Fails("dbs:\n  - path: /a.db\n    completely-unrelated-setting: 1\n", ReplicaErrorCode.ConfigUnknownKey);

        Assert.DoesNotContain("did you mean", e.Message);
        Assert.Contains("min-checkpoint-page-count", e.Message); // the list of known keys
    }

    [Fact]
    public void Keys_are_case_sensitive()
    {
        var e = Fails(OneReplica("type: s3", "Bucket: b"), ReplicaErrorCode.ConfigUnknownKey);

        Assert.Contains("did you mean 'bucket'", e.Message);
    }

    [Theory]
    [InlineData("part-size: 5242880")]
    [InlineData("concurrency: 5")]
    [InlineData("account-name: acct")]
    [InlineData("host: example.com")]
    [InlineData("key-path: /k")]
    public void Litestream_keys_this_tool_does_not_implement_are_not_supported(string line)
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", line), ReplicaErrorCode.ConfigNotSupported);

        Assert.Contains("test.yml:6:", e.Message);
        Assert.Contains("dbs[0].replicas[0]." + line[..line.IndexOf(':')], e.Message);
    }

    [Fact]
    public void Age_encryption_is_not_supported()
    {
        var yaml = OneReplica("type: s3", "bucket: b", "age:", "  recipients: [age1xyz]");

        var e = Fails(yaml, ReplicaErrorCode.ConfigNotSupported);

        Assert.Contains("'dbs[0].replicas[0].age'", e.Message);
    }

    [Theory]
    [InlineData("gcs")]
    [InlineData("abs")]
    [InlineData("sftp")]
    [InlineData("GCS")]
    public void Other_litestream_replica_types_are_not_supported(string type)
    {
        var e = Fails(OneReplica($"type: {type}", "path: x"), ReplicaErrorCode.ConfigNotSupported);

        Assert.Contains(type.ToLowerInvariant(), e.Message);
    }

    [Theory]
    [InlineData("gcs://bucket/db")]
    [InlineData("abs://account@container/db")]
    [InlineData("sftp://user@host/db")]
    public void Other_litestream_replica_types_given_by_url_are_not_supported(string url)
    {
        Fails(OneReplica($"url: {url}"), ReplicaErrorCode.ConfigNotSupported);
    }

    [Theory]
    [InlineData("type: ftp")]
    [InlineData("type: s4")]
    [InlineData("url: http://example.com/x")]
    public void Unknown_replica_type_is_invalid(string line)
    {
        var e = Fails(line.StartsWith("url:") ? OneReplica(line) : OneReplica(line, "bucket: b"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].type", e.Message);
    }

    // ---- durations -----------------------------------------------------------------------------

    [Theory]
    [InlineData("retention", "7d")]
    [InlineData("sync-interval", "5")]
    [InlineData("snapshot-interval", "abc")]
    [InlineData("retention-check-interval", "-1s")]
    [InlineData("validation-interval", "1H")]
    [InlineData("retention", "24 h")]
    [InlineData("retention", "1h30")]
    public void Bad_replica_durations_are_invalid_and_name_the_key(string key, string value)
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", $"{key}: {value}"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains($"'dbs[0].replicas[0].{key}'", e.Message);
        Assert.Contains("test.yml:6:", e.Message);
        Assert.Contains(value, e.Message);
    }

    [Theory]
    [InlineData("monitor-interval", "7d")]
    [InlineData("checkpoint-interval", "5")]
    [InlineData("monitor-interval", "abc")]
    [InlineData("checkpoint-interval", "-1s")]
    public void Bad_db_durations_are_invalid_and_name_the_key(string key, string value)
    {
        var e = Fails($"dbs:\n  - path: /a.db\n    {key}: {value}\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains($"'dbs[0].{key}'", e.Message);
        Assert.Contains("test.yml:3:", e.Message);
    }

    [Fact]
    public void Bare_integer_duration_error_explains_the_missing_unit()
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", "sync-interval: 5"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("5s", e.Message);
    }

    [Theory]
    [InlineData("500ms", 500L)]
    [InlineData("1h30m", 90L * 60 * 1000)]
    [InlineData("0", 0L)]
    [InlineData("0s", 0L)]
    [InlineData("1.5h", 90L * 60 * 1000)]
    [InlineData("90s", 90L * 1000)]
    [InlineData("168h", 7L * 24 * 3600 * 1000)]
    public void Valid_durations_parse(string value, long milliseconds)
    {
        var r = SingleReplica(Parse(OneReplica("type: s3", "bucket: b", $"retention: {value}", $"sync-interval: {value}")));

        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), r.Retention);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), r.SyncInterval);
    }

    [Fact]
    public void Duration_can_come_from_a_variable()
    {
        var env = new Dictionary<string, string> { ["KEEP"] = "72h" };

        var r = SingleReplica(Parse(OneReplica("type: s3", "bucket: b", "retention: ${KEEP}"), env));

        Assert.Equal(TimeSpan.FromHours(72), r.Retention);
    }

    // ---- url / path / bucket -------------------------------------------------------------------

    [Fact]
    public void Url_and_path_together_are_an_error()
    {
        var e = Fails(OneReplica("url: s3://bucket/a", "path: a"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].url", e.Message);
        Assert.Contains("'path'", e.Message);
    }

    [Fact]
    public void Url_and_bucket_together_are_an_error()
    {
        Fails(OneReplica("url: s3://url-bucket/a", "bucket: key-bucket"), ReplicaErrorCode.ConfigInvalid);
    }

    [Fact]
    public void File_url_fills_type_and_absolute_path()
    {
        var r = SingleReplica(Parse(OneReplica("url: file:///x")));

        Assert.Equal("file", r.Type);
        Assert.Equal("file", r.Name);
        Assert.Equal(Path.GetFullPath("/x"), r.Path);
        Assert.Null(r.Bucket);
        Assert.Null(r.Credentials);
    }

    [Fact]
    public void File_url_with_a_host_reads_the_host_as_the_first_directory()
    {
        // Litestream: file://relative is /relative (spec §1.3).
        var r = SingleReplica(Parse(OneReplica("url: file://backups/app")));

        Assert.Equal(Path.GetFullPath("/backups/app"), r.Path);
    }

    [Fact]
    public void File_url_is_unescaped()
    {
        var r = SingleReplica(Parse(OneReplica("url: file:///my%20backups/app")));

        Assert.Equal(Path.GetFullPath("/my backups/app"), r.Path);
    }

    [Fact]
    public void S3_url_fills_type_bucket_and_path()
    {
        var r = SingleReplica(Parse(OneReplica("url: s3://bucket/a/b")));

        Assert.Equal("s3", r.Type);
        Assert.Equal("s3", r.Name);
        Assert.Equal("bucket", r.Bucket);
        Assert.Equal("a/b", r.Path);
    }

    [Theory]
    [InlineData("s3://bucket", "")]
    [InlineData("s3://bucket/", "")]
    [InlineData("s3://bucket/a/b/", "a/b")]
    public void S3_url_path_has_no_leading_or_trailing_slash(string url, string path)
    {
        var r = SingleReplica(Parse(OneReplica($"url: {url}")));

        Assert.Equal("bucket", r.Bucket);
        Assert.Equal(path, r.Path);
    }

    [Fact]
    public void S3_url_path_is_unescaped_like_litestream()
    {
        var r = SingleReplica(Parse(OneReplica("url: s3://bucket/my%20dir/app.db")));

        Assert.Equal("my dir/app.db", r.Path);
    }

    [Fact]
    public void S3_url_with_a_localhost_host_names_a_local_endpoint()
    {
        var r = SingleReplica(Parse(OneReplica("url: s3://mybucket.localhost:9000/app.db")));

        Assert.Equal("mybucket", r.Bucket);
        Assert.Equal("http://localhost:9000", r.Endpoint);
        Assert.Equal("app.db", r.Path);
    }

    [Fact]
    public void Url_scheme_wins_over_type()
    {
        var r = SingleReplica(Parse(OneReplica("type: s3", "url: file:///x")));

        Assert.Equal("file", r.Type);
    }

    [Fact]
    public void Url_that_is_not_a_url_is_invalid()
    {
        var e = Fails(OneReplica("url: /just/a/path"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].url", e.Message);
    }

    [Fact]
    public void Url_in_path_is_invalid()
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", "path: s3://b/x"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].path", e.Message);
        Assert.Contains("'url'", e.Message);
    }

    [Fact]
    public void S3_replica_without_bucket_is_an_error()
    {
        var e = Fails(OneReplica("type: s3", "path: a"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].bucket", e.Message);
        Assert.Contains("test.yml:4:", e.Message);
    }

    [Fact]
    public void S3_url_without_bucket_is_an_error()
    {
        var e = Fails(OneReplica("url: s3:///a"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].bucket", e.Message);
    }

    [Fact]
    public void S3_replica_with_empty_bucket_is_an_error()
    {
        Fails(OneReplica("type: s3", "bucket:"), ReplicaErrorCode.ConfigInvalid);
        Fails(OneReplica("type: s3", "bucket: ''"), ReplicaErrorCode.ConfigInvalid);
    }

    [Theory]
    [InlineData("bucket: b")]
    [InlineData("endpoint: https://example.com")]
    [InlineData("region: auto")]
    [InlineData("force-path-style: true")]
    [InlineData("skip-verify: true")]
    [InlineData("access-key-id: id")]
    public void File_replica_with_s3_settings_is_an_error(string line)
    {
        var key = line[..line.IndexOf(':')];

        var e = Fails(OneReplica("type: file", "path: /backups", line), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains($"'dbs[0].replicas[0].{key}'", e.Message);
        Assert.Contains("test.yml:6:", e.Message);
    }

    [Fact]
    public void File_replica_without_path_is_an_error()
    {
        var e = Fails(OneReplica("type: file", "name: backup"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("dbs[0].replicas[0].path", e.Message);
    }

    [Fact]
    public void Type_defaults_to_file()
    {
        var r = SingleReplica(Parse(OneReplica("path: /backups")));

        Assert.Equal("file", r.Type);
        Assert.Equal(Path.GetFullPath("/backups"), r.Path);
    }

    // ---- uniqueness ----------------------------------------------------------------------------

    [Fact]
    public void Two_unnamed_s3_replicas_have_the_same_name_and_are_an_error()
    {
        var yaml = "dbs:\n  - path: /a.db\n    replicas:\n      - type: s3\n        bucket: one\n      - type: s3\n        bucket: two\n";

        var e = Fails(yaml, ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'s3'", e.Message);
        Assert.Contains("test.yml:6:", e.Message); // the second one
        Assert.Contains("dbs[0].replicas", e.Message);
    }

    [Fact]
    public void Explicitly_duplicate_replica_names_are_an_error()
    {
        var yaml = "dbs:\n  - path: /a.db\n    replicas:\n      - name: x\n        path: /r1\n      - name: x\n        type: s3\n        bucket: b\n";

        var e = Fails(yaml, ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'x'", e.Message);
    }

    [Fact]
    public void Distinct_names_or_types_are_fine()
    {
        var yaml = """
            dbs:
              - path: /a.db
                replicas:
                  - type: s3
                    name: primary
                    bucket: one
                  - type: s3
                    name: secondary
                    bucket: two
                  - path: /backups/a
                  - url: s3://three/a
                    name: third
            """;

        var replicas = Assert.Single(Parse(yaml).Databases).Replicas;

        Assert.Equal(["primary", "secondary", "file", "third"], replicas.Select(r => r.Name));
        Assert.Equal([4, 7, 10, 11], replicas.Select(r => r.Line));
    }

    [Fact]
    public void Same_replica_name_in_different_dbs_is_fine()
    {
        var yaml = "dbs:\n  - path: /a.db\n    replicas:\n      - url: s3://b/a\n  - path: /b.db\n    replicas:\n      - url: s3://b/b\n";

        Assert.Equal(2, Parse(yaml).Databases.Count);
    }

    [Fact]
    public void Duplicate_db_paths_are_an_error()
    {
        var e = Fails("dbs:\n  - path: /data/a.db\n  - path: /data/b.db\n  - path: /data/a.db\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("test.yml:4:", e.Message);
        Assert.Contains(Path.GetFullPath("/data/a.db"), e.Message);
    }

    [Fact]
    public void Db_paths_that_are_the_same_once_made_absolute_are_duplicates()
    {
        Fails("dbs:\n  - path: /data/a.db\n  - path: /data/./x/../a.db\n", ReplicaErrorCode.ConfigInvalid);
    }

    // ---- numbers and booleans ------------------------------------------------------------------

    [Theory]
    [InlineData("min-checkpoint-page-count: 0")]
    [InlineData("min-checkpoint-page-count: -5")]
    [InlineData("max-checkpoint-page-count: -1")]
    [InlineData("min-checkpoint-page-count: lots")]
    [InlineData("max-checkpoint-page-count: 1.5")]
    [InlineData("min-checkpoint-page-count: 99999999999")]
    public void Bad_checkpoint_page_counts_are_invalid(string line)
    {
        var e = Fails($"dbs:\n  - path: /a.db\n    {line}\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'dbs[0]." + line[..line.IndexOf(':')] + "'", e.Message);
        Assert.Contains("test.yml:3:", e.Message);
    }

    [Fact]
    public void Max_checkpoint_page_count_zero_turns_restart_checkpoints_off()
    {
        var db = Assert.Single(Parse("dbs:\n  - path: /a.db\n    max-checkpoint-page-count: 0\n    min-checkpoint-page-count: 1\n").Databases);

        Assert.Equal(0, db.MaxCheckpointPageCount);
        Assert.Equal(1, db.MinCheckpointPageCount);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("false", false)]
    [InlineData("True", true)]
    [InlineData("yes", true)]
    [InlineData("off", false)]
    public void Booleans_parse(string value, bool expected)
    {
        var r = SingleReplica(Parse(OneReplica("type: s3", "bucket: b", $"force-path-style: {value}", $"skip-verify: {value}")));

        Assert.Equal(expected, r.ForcePathStyle);
        Assert.Equal(expected, r.SkipVerify);
    }

    [Fact]
    public void Bad_boolean_is_invalid()
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", "force-path-style: maybe"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'dbs[0].replicas[0].force-path-style'", e.Message);
    }

    [Fact]
    public void List_where_a_value_is_expected_is_invalid()
    {
        var e = Fails(OneReplica("type: s3", "bucket: [a, b]"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'dbs[0].replicas[0].bucket'", e.Message);
    }

    [Fact]
    public void Dbs_must_be_a_list_and_replicas_a_list()
    {
        Assert.Contains("'dbs'", Fails("dbs:\n  path: /a.db\n", ReplicaErrorCode.ConfigInvalid).Message);
        Assert.Contains("'dbs[0].replicas'", Fails("dbs:\n  - path: /a.db\n    replicas: /backups\n", ReplicaErrorCode.ConfigInvalid).Message);
        Assert.Contains("dbs[0]", Fails("dbs:\n  - /a.db\n", ReplicaErrorCode.ConfigInvalid).Message);
    }

    [Fact]
    public void Db_without_path_is_an_error()
    {
        var e = Fails("dbs:\n  - meta-path: /m\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'dbs[0].path'", e.Message);
    }

    [Theory]
    [InlineData("dbs:\n  - path: \"\"\n")]
    [InlineData("dbs:\n  - path: ${EMPTY}\n")]
    [InlineData("dbs:\n  - path: /a.db\n    meta-path: ''\n")]
    public void Empty_db_path_is_a_config_error(string yaml)
    {
        Fails(yaml, ReplicaErrorCode.ConfigInvalid, new Dictionary<string, string> { ["EMPTY"] = "" });
    }

    // ---- credentials ---------------------------------------------------------------------------

    [Fact]
    public void Access_key_id_without_secret_is_an_error_in_a_replica()
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", "access-key-id: id"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'dbs[0].replicas[0].secret-access-key'", e.Message);
    }

    [Fact]
    public void Secret_without_access_key_id_is_an_error_in_a_replica()
    {
        var e = Fails(OneReplica("type: s3", "bucket: b", "secret-access-key: s"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'dbs[0].replicas[0].access-key-id'", e.Message);
        Assert.DoesNotContain("'s'", e.Message);
    }

    [Fact]
    public void Access_key_id_without_secret_is_an_error_at_the_top()
    {
        var e = Fails("access-key-id: id\ndbs: []\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'secret-access-key'", e.Message);
    }

    [Fact]
    public void Top_level_credentials_fill_s3_replicas_without_their_own()
    {
        var yaml = """
            access-key-id: top-id
            secret-access-key: top-secret
            dbs:
              - path: /a.db
                replicas:
                  - type: s3
                    name: inherits
                    bucket: one
                  - type: s3
                    name: own
                    bucket: two
                    access-key-id: own-id
                    secret-access-key: own-secret
                  - path: /backups/a
              - path: /b.db
                replicas:
                  - url: s3://three/b
            """;

        var config = Parse(yaml);

        var a = config.Databases[0].Replicas;
        Assert.Equal("top-id", a[0].Credentials!.AccessKeyId);
        Assert.Equal("top-secret", a[0].Credentials!.SecretAccessKey);
        Assert.Equal("own-id", a[1].Credentials!.AccessKeyId);
        Assert.Equal("own-secret", a[1].Credentials!.SecretAccessKey);
        Assert.Null(a[2].Credentials); // file replicas never get credentials
        Assert.Equal("top-id", config.Databases[1].Replicas[0].Credentials!.AccessKeyId);
    }

    [Fact]
    public void Without_any_credentials_s3_replicas_have_none()
    {
        Assert.Null(SingleReplica(Parse(OneReplica("url: s3://b/a"))).Credentials);
    }

    // ---- defaults ------------------------------------------------------------------------------

    [Fact]
    public void Defaults_match_litestream()
    {
        var config = Parse(OneReplica("type: s3", "bucket: b"));

        Assert.Equal("info", config.LogLevel);
        Assert.Equal("text", config.LogType);
        Assert.False(config.LogToStderr);
        Assert.Null(config.Address);
        Assert.Null(config.Exec);

        var db = Assert.Single(config.Databases);
        Assert.Equal(TimeSpan.FromSeconds(1), db.MonitorInterval);
        Assert.Equal(TimeSpan.FromMinutes(1), db.CheckpointInterval);
        Assert.Equal(1000, db.MinCheckpointPageCount);
        Assert.Equal(10000, db.MaxCheckpointPageCount);
        Assert.Null(db.MetaPath);

        var r = Assert.Single(db.Replicas);
        Assert.Equal("s3", r.Name);
        Assert.Null(r.Path);
        Assert.Null(r.Endpoint);
        Assert.Null(r.Region);
        Assert.Null(r.ForcePathStyle); // the client decides from the endpoint
        Assert.False(r.SkipVerify);
        Assert.Equal(TimeSpan.FromSeconds(1), r.SyncInterval);
        Assert.Equal(TimeSpan.Zero, r.SnapshotInterval);
        Assert.Equal(TimeSpan.FromHours(24), r.Retention);
        Assert.Equal(TimeSpan.FromHours(1), r.RetentionCheckInterval);
        Assert.Equal(TimeSpan.Zero, r.ValidationInterval);
    }

    [Fact]
    public void Every_db_setting_is_read()
    {
        var yaml = """
            dbs:
              - path: /a.db
                meta-path: /meta/a
                monitor-interval: 250ms
                checkpoint-interval: 30s
                min-checkpoint-page-count: 500
                max-checkpoint-page-count: 20000
            """;

        var db = Assert.Single(Parse(yaml).Databases);

        Assert.Equal(Path.GetFullPath("/meta/a"), db.MetaPath);
        Assert.Equal(TimeSpan.FromMilliseconds(250), db.MonitorInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), db.CheckpointInterval);
        Assert.Equal(500, db.MinCheckpointPageCount);
        Assert.Equal(20000, db.MaxCheckpointPageCount);
        Assert.Empty(db.Replicas);
    }

    [Fact]
    public void No_dbs_key_means_no_databases()
    {
        Assert.Empty(Parse("logging:\n  level: info\n").Databases);
        Assert.Empty(Parse("dbs: []\n").Databases);
    }

    // ---- paths ---------------------------------------------------------------------------------

    [Fact]
    public void Relative_paths_are_made_absolute_against_the_current_directory()
    {
        var yaml = "dbs:\n  - path: data/app.db\n    meta-path: meta\n    replicas:\n      - path: backups/app\n";

        var db = Assert.Single(Parse(yaml).Databases);

        var cwd = Directory.GetCurrentDirectory();
        Assert.Equal(Path.GetFullPath(Path.Combine(cwd, "data/app.db")), db.Path);
        Assert.Equal(Path.GetFullPath(Path.Combine(cwd, "meta")), db.MetaPath);
        Assert.Equal(Path.GetFullPath(Path.Combine(cwd, "backups/app")), Assert.Single(db.Replicas).Path);
        Assert.True(Path.IsPathFullyQualified(db.Path));
    }

    [Fact]
    public void Relative_s3_path_stays_a_key_prefix()
    {
        Assert.Equal("backups/app", SingleReplica(Parse(OneReplica("type: s3", "bucket: b", "path: backups/app"))).Path);
    }

    [Fact]
    public void Tilde_is_the_home_directory()
    {
        var yaml = "dbs:\n  - path: ~/data/app.db\n    meta-path: \"~\"\n    replicas:\n      - path: ~/backups\n";

        var db = Assert.Single(Parse(yaml).Databases);

        Assert.Equal(Home("data/app.db"), db.Path);
        Assert.Equal(Home(""), db.MetaPath);
        Assert.Equal(Home("backups"), Assert.Single(db.Replicas).Path);
    }

    [Fact]
    public void Tilde_user_is_not_expanded()
    {
        var db = Assert.Single(Parse("dbs:\n  - path: ~other/app.db\n").Databases);

        Assert.Equal(Path.GetFullPath(Path.Combine(Directory.GetCurrentDirectory(), "~other/app.db")), db.Path);
    }

    [Fact]
    public void Find_matches_the_absolute_path()
    {
        var config = Parse(Sample + "\n  - path: /pb/pb_data/other.db\n");

        Assert.Equal(2, config.Databases.Count);
        Assert.Same(config.Databases[0], config.Find("/pb/pb_data/data.db"));
        Assert.Same(config.Databases[0], config.Find(Path.GetFullPath("/pb/pb_data/data.db")));
        Assert.Same(config.Databases[0], config.Find("/pb/pb_data/./x/../data.db")); // made absolute, like filepath.Abs
        Assert.Same(config.Databases[1], config.Find("/pb/pb_data/other.db"));
        Assert.Null(config.Find("/pb/pb_data/missing.db"));
        Assert.Null(config.Find("/pb/pb_data/data.db-wal"));
        Assert.Null(config.Find("data.db")); // relative to the current directory, not a file-name match
    }

    [Fact]
    public void Find_resolves_a_relative_argument_against_the_current_directory()
    {
        var config = Parse("dbs:\n  - path: rel/app.db\n");

        Assert.NotNull(config.Find(Path.Combine(Directory.GetCurrentDirectory(), "rel", "app.db")));
        Assert.NotNull(config.Find("rel/app.db"));
    }

    // ---- logging -------------------------------------------------------------------------------

    [Theory]
    [InlineData("debug", "debug")]
    [InlineData("info", "info")]
    [InlineData("warn", "warn")]
    [InlineData("warning", "warn")]
    [InlineData("WARNING", "warn")]
    [InlineData("Error", "error")]
    public void Logging_levels_are_read_case_insensitively(string value, string expected)
    {
        Assert.Equal(expected, Parse($"logging:\n  level: {value}\n").LogLevel);
    }

    [Fact]
    public void Logging_type_and_stderr_are_read()
    {
        var config = Parse("logging:\n  level: info\n  type: JSON\n  stderr: true\n");

        Assert.Equal("json", config.LogType);
        Assert.True(config.LogToStderr);
    }

    [Fact]
    public void Unknown_logging_type_is_invalid()
    {
        var e = Fails("logging:\n  level: info\n  type: xml\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'logging.type'", e.Message);
        Assert.Contains("test.yml:3:", e.Message);
        Assert.Contains("xml", e.Message);
    }

    [Fact]
    public void Unknown_logging_level_is_invalid()
    {
        var e = Fails("logging:\n  level: verbose\n", ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("'logging.level'", e.Message);
        Assert.Contains("test.yml:2:", e.Message);
    }

    [Fact]
    public void Bad_logging_stderr_and_non_mapping_logging_are_invalid()
    {
        Assert.Contains("'logging.stderr'", Fails("logging:\n  stderr: sometimes\n", ReplicaErrorCode.ConfigInvalid).Message);
        Assert.Contains("'logging'", Fails("logging: debug\n", ReplicaErrorCode.ConfigInvalid).Message);
    }

    // ---- EnsureSupported -----------------------------------------------------------------------

    [Fact]
    public void EnsureSupported_refuses_an_addr_without_a_port()
    {
        var config = Parse("addr: localhost\n" + OneReplica("type: s3", "bucket: b"));

        var e = Assert.Throws<ReplicaException>(() => ConfigLoader.EnsureSupported(config));

        Assert.Equal(ReplicaErrorCode.ConfigInvalid, e.Code);
        Assert.Contains("'addr'", e.Message);
    }

    [Theory]
    [InlineData("exec: myapp serve\n")]
    [InlineData("logging:\n  level: debug\n")]
    [InlineData("logging:\n  type: json\n  stderr: true\n")]
    public void EnsureSupported_accepts_exec_and_logging_which_are_applied(string top)
    {
        var config = Parse(top + OneReplica("type: s3", "bucket: b"));

        ConfigLoader.EnsureSupported(config);

        Assert.True(config.Exec is not null || config.LoggingConfigured);
    }

    [Fact]
    public void Validation_interval_addr_and_heartbeat_url_are_read_and_accepted()
    {
        var config = Parse("addr: \":9090\"\n" + OneReplica("type: s3", "bucket: b", "validation-interval: 6h"));
        Assert.Equal(TimeSpan.FromHours(6), SingleReplica(config).ValidationInterval);
        Assert.Equal(":9090", config.Address);

        ConfigLoader.EnsureSupported(config);
    }

    [Fact]
    public void EnsureSupported_accepts_explicit_defaults()
    {
        var config = Parse("logging:\n  level: INFO\n  type: text\n  stderr: false\n" + OneReplica("type: s3", "bucket: b", "validation-interval: 0s"));

        ConfigLoader.EnsureSupported(config);
    }

    // ---- YAML errors ---------------------------------------------------------------------------

    [Fact]
    public void Invalid_yaml_is_invalid_with_a_line()
    {
        var yaml = "dbs:\n  - path: /a.db\n    replicas: [\n      - url: s3://b/a\n";

        var e = Fails(yaml, ReplicaErrorCode.ConfigInvalid);

        Assert.Matches(@"^test\.yml:[1-9][0-9]*: the file is not valid YAML", e.Message);
    }

    [Fact]
    public void Bad_indentation_reports_its_line()
    {
        var yaml = "dbs:\n  - path: /a.db\n     monitor-interval: 1s\n";

        var e = Fails(yaml, ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("test.yml:3:", e.Message);
    }

    [Fact]
    public void Duplicate_key_is_invalid()
    {
        var e = Fails(OneReplica("type: s3", "bucket: a", "bucket: b"), ReplicaErrorCode.ConfigInvalid);

        Assert.Contains("bucket", e.Message);
        Assert.Contains("test.yml:6:", e.Message);
    }

    [Theory]
    [InlineData("- path: /a.db\n")]
    [InlineData("just text\n")]
    [InlineData("")]
    public void Root_must_be_a_mapping(string yaml)
    {
        Fails(yaml, ReplicaErrorCode.ConfigInvalid);
    }

    [Fact]
    public void Load_of_a_missing_file_is_config_not_found()
    {
        var missing = Path.Combine(Path.GetTempPath(), "sqlitereplica-no-such-dir-" + Guid.NewGuid().ToString("N"), "litestream.yml");

        var e = Assert.Throws<ReplicaException>(() => new ConfigLoader(_ => null).Load(missing));

        Assert.Equal(ReplicaErrorCode.ConfigNotFound, e.Code);
        Assert.Equal(missing, e.Target);
    }

    [Fact]
    public void Load_reads_the_file_and_records_its_full_path()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sqlitereplica-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var file = Path.Combine(dir, "litestream.yml");
            File.WriteAllText(file, Sample);

            var config = new ConfigLoader(name => Vars.GetValueOrDefault(name)).Load(file);

            Assert.Equal(file, config.SourcePath);
            Assert.Equal("my-pb-backups", SingleReplica(config).Bucket);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
