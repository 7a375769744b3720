using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Tests.Postgres;

public sealed class PostgresConfigFilesTests
{
    private static PostgresSettings Settings(ReplicationSource? upstream = null, string? include = null) =>
        new(5433, "127.0.0.1", "/run/pg", "a", upstream, string.Empty, include);

    [Fact]
    public void Managed_settings_come_after_the_included_user_parameters_so_they_win()
    {
        var text = PostgresConfigFiles.PostgresqlConf(Settings(include: "/data/parameters/in-force.conf"));
        Assert.True(text.IndexOf("include_if_exists = '/data/parameters/in-force.conf'", StringComparison.Ordinal) is > 0 and var at && at < text.IndexOf("port = '5433'", StringComparison.Ordinal));
        Assert.DoesNotContain("include", PostgresConfigFiles.PostgresqlConf(Settings()), StringComparison.Ordinal);
        Assert.Contains("wal_log_hints = 'on'", text, StringComparison.Ordinal);
        Assert.Contains("primary_conninfo = ''", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_managers_overridable_defaults_come_before_the_included_user_parameters_so_the_user_wins()
    {
        var text = PostgresConfigFiles.PostgresqlConf(Settings(include: "/data/parameters/in-force.conf"));
        var at = text.IndexOf("recovery_init_sync_method = 'syncfs'\n", StringComparison.Ordinal);
        Assert.InRange(at, 0, text.IndexOf("include_if_exists", StringComparison.Ordinal));
        Assert.Contains("recovery_init_sync_method = 'syncfs'\n", PostgresConfigFiles.PostgresqlConf(Settings()), StringComparison.Ordinal);
    }

    [Fact]
    public void Replica_gets_its_upstream_and_slot_with_application_name()
    {
        var upstream = new ReplicationSource("127.0.0.1", 6000, "replicator", "/secrets/pass", "b", "b");
        var text = PostgresConfigFiles.PostgresqlConf(Settings(upstream));
        Assert.Contains("primary_conninfo = 'host=127.0.0.1 port=6000 user=replicator passfile=/secrets/pass application_name=b", text, StringComparison.Ordinal);
        Assert.Contains("primary_slot_name = 'b'", text, StringComparison.Ordinal);
    }

    [Fact]
    public void With_tls_postgresql_serves_the_copies_and_replication_verifies_the_upstream_by_the_clusters_ca()
    {
        var upstream = new ReplicationSource("demo-0.demo-hl.memory.svc", 5432, "replicator", "/data/pass", "demo-1", "demo_1", "/data/tls/ca.crt");
        var text = PostgresConfigFiles.PostgresqlConf(Settings(upstream) with { Tls = new PostgresTls("/data/tls/server.crt", "/data/tls/server.key", "/data/tls/ca.crt") });
        Assert.Contains("ssl = 'on'\n", text, StringComparison.Ordinal);
        Assert.Contains("ssl_cert_file = '/data/tls/server.crt'\n", text, StringComparison.Ordinal);
        Assert.Contains("ssl_key_file = '/data/tls/server.key'\n", text, StringComparison.Ordinal);
        Assert.Contains("ssl_ca_file = '/data/tls/ca.crt'\n", text, StringComparison.Ordinal);
        Assert.EndsWith(" sslmode=verify-full sslrootcert=/data/tls/ca.crt", upstream.ConnInfo, StringComparison.Ordinal);

        var plain = PostgresConfigFiles.PostgresqlConf(Settings(upstream with { SslRootCert = null }));
        Assert.DoesNotContain("ssl", plain, StringComparison.Ordinal);
    }

    [Fact]
    public void With_tls_every_tcp_line_of_pg_hba_requires_it()
    {
        var lines = PostgresConfigFiles.PgHbaConf("replicator", tls: true).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToList();
        Assert.Equal(4, lines.Count(l => l.StartsWith("hostssl ", StringComparison.Ordinal)));
        Assert.All(lines, l => Assert.True(l.StartsWith("local ", StringComparison.Ordinal) || l.StartsWith("hostssl ", StringComparison.Ordinal), l));
        Assert.DoesNotContain("hostssl", PostgresConfigFiles.PgHbaConf("replicator"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("it's", "'it''s'")]
    [InlineData(@"C:\x", @"'C:\\x'")]
    [InlineData("", "''")]
    public void Values_are_quoted_so_they_cannot_escape_their_line(string value, string expected) =>
        Assert.Equal(expected, PostgresConfigFiles.QuoteValue(value));

    [Theory]
    [InlineData(3, new[] { "b", "c" }, "ANY 1 (\"b\", \"c\")")]
    [InlineData(5, new[] { "e", "b", "c", "d" }, "ANY 2 (\"b\", \"c\", \"d\", \"e\")")]
    [InlineData(3, new[] { "b" }, "ANY 1 (\"b\")")]
    public void Quorum_mode_waits_for_enough_standbys_to_reach_a_majority(int members, string[] standbys, string expected) =>
        Assert.Equal(expected, PostgresConfigFiles.SynchronousStandbyNames(true, standbys, members));

    [Theory]
    [InlineData("ANY 2 (\"b\", \"c\", \"d\", \"e\")", 2, "b,c,d,e")]
    [InlineData("any 1 (b, \"c\")", 1, "b,c")]
    [InlineData("", 0, "")]
    [InlineData("  ", 0, "")]
    [InlineData("FIRST 1 (b, c)", null, null)]
    [InlineData("b, c", null, null)]
    [InlineData("ANY x (b)", null, null)]
    [InlineData("ANY 2", null, null)]
    [InlineData("ANY 1 (b, )", null, null)]
    public void The_setting_in_force_is_read_from_our_form_only(string value, int? k, string? names)
    {
        var setting = QuorumSetting.Parse(value);
        Assert.Equal(k, setting?.K);
        Assert.Equal(names is null ? null : names.Length == 0 ? [] : names.Split(','), setting?.Names);
    }

    [Fact]
    public void The_setting_written_is_the_setting_read_back() =>
        Assert.Equal(new[] { "b", "c", "d", "e" }, QuorumSetting.Parse(PostgresConfigFiles.SynchronousStandbyNames(true, ["e", "b", "c", "d"], 5))!.Names);

    [Fact]
    public void Async_mode_waits_for_no_standby() =>
        Assert.Equal(string.Empty, PostgresConfigFiles.SynchronousStandbyNames(false, ["b", "c"], 3));

    [Fact]
    public void Scram_verifier_matches_the_rfc_7677_test_vector_shape_and_is_deterministic_for_a_salt()
    {
        var salt = Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==");
        var verifier = PgClient.ScramVerifier("pencil", salt);
        // RFC 7677's example uses the same password and salt; its StoredKey/ServerKey follow from them.
        Assert.Equal(
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
            verifier);
    }

    [Theory]
    [InlineData("pencil", true)]
    [InlineData("pencil ", false)]
    [InlineData("Pencil", false)]
    [InlineData("", false)]
    public void A_stored_scram_verifier_is_recognised_only_for_its_own_password(string password, bool matches) =>
        Assert.Equal(matches, PgClient.ScramVerifierMatches(
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
            password));

    [Fact]
    public void A_verifier_with_another_salt_or_iteration_count_is_checked_with_its_own()
    {
        Assert.True(PgClient.ScramVerifierMatches(PgClient.ScramVerifier("s3cret"), "s3cret"));
        Assert.True(PgClient.ScramVerifierMatches(PgClient.ScramVerifier("s3cret", [1, 2, 3], 10), "s3cret"));
        Assert.False(PgClient.ScramVerifierMatches(PgClient.ScramVerifier("s3cret", [1, 2, 3], 10), "s3cret2"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("md5a3556571e93b0d20722ba62be61e8c2d")]
    [InlineData("SCRAM-SHA-256$")]
    [InlineData("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==")]
    [InlineData("SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$a:b")]
    [InlineData("SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$a:b")]
    [InlineData("SCRAM-SHA-256$4096:not base64!$a:b")]
    [InlineData("SCRAM-SHA-256$4096:$a:b")]
    public void Anything_but_a_well_formed_scram_verifier_never_matches(string stored) =>
        Assert.False(PgClient.ScramVerifierMatches(stored, "pencil"));
}
