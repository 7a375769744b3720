namespace MemoryCluster.Instance.Tests;

public sealed class InstanceOptionsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mc-options-");

    private Dictionary<string, string> Valid()
    {
        var key = Path.Combine(_dir.FullName, "key");
        var password = Path.Combine(_dir.FullName, "password");
        File.WriteAllBytes(key, new byte[32]);
        File.WriteAllText(password, "secret");
        return new Dictionary<string, string>
        {
            ["id"] = "1",
            ["data-dir"] = _dir.FullName,
            ["peers"] = "1=a@127.0.0.1:5001:6001:7001,2=b@127.0.0.1:5002:6002:7002,3=c@127.0.0.1:5003:6003:7003",
            ["cluster-key-file"] = key,
            ["replication-password-file"] = password,
        };
    }

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void Valid_settings_give_options()
    {
        var (options, errors) = InstanceOptionsParser.Parse(Valid());
        Assert.Empty(errors);
        Assert.Equal("a", options!.Name);
        Assert.Equal(3, options.Peers.Count);
        Assert.Equal("127.0.0.1:6002", options.Peers[1].RaftAddress);
        Assert.Null(options.ListenAddress);
        Assert.Equal("127.0.0.1", options.ListenHost);
    }

    [Theory]
    [InlineData("127.10.0.7", "127.10.0.7")]
    [InlineData("fd00::7", "[fd00::7]")]
    public void A_listen_address_is_where_every_listener_binds(string address, string host)
    {
        var values = Valid();
        values["listen-address"] = address;
        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Empty(errors);
        Assert.Equal(host, options!.ListenHost);
    }

    [Theory]
    [InlineData("id", "7", "id: 7 is not among the peers")]
    [InlineData("id", "x", "id: must be a whole number")]
    [InlineData("mode", "sync", "mode: must be async or quorum, not 'sync'")]
    [InlineData("peers", "1=a@127.0.0.1:5001:6001:7001,2=b@127.0.0.1:5002:6002:7002", "peers: must list 3 or 5 members")]
    [InlineData("peers", "1=a@127.0.0.1:5001:6001:7001,2=b@127.0.0.1:5001:6002:7002,3=c@127.0.0.1:5003:6003:7003", "peers: 127.0.0.1:5001 is used twice")]
    [InlineData("peers", "1=a@127.0.0.1:5001:6001:7001,1=b@127.0.0.1:5002:6002:7002,3=c@127.0.0.1:5003:6003:7003", "peers: id 1 appears twice")]
    [InlineData("peers", "1=A@127.0.0.1:5001:6001:7001", "is not ID=NAME@HOST:PGPORT:RAFTPORT:HTTPPORT")]
    [InlineData("peers", "1=a@127.0.0.1:99999:6001:7001", "port 99999 outside 1-65535")]
    [InlineData("data-dir", "relative/path", "data-dir: must be an absolute path")]
    [InlineData("cluster-key-file", "/nonexistent/key", "cluster-key-file: no file at /nonexistent/key")]
    [InlineData("primary-lease-ms", "1000", "primary-lease-ms: must be a whole number from 1500 to 60000")]
    [InlineData("switchover-timeout-seconds", "0", "switchover-timeout-seconds: must be a whole number from 1 to")]
    [InlineData("colour", "blue", "colour: unknown setting")]
    [InlineData("listen-address", "demo-0.demo-hl", "listen-address: 'demo-0.demo-hl' is not an IP address")]
    public void Bad_setting_is_refused_naming_the_key_and_why(string key, string value, string expected)
    {
        var values = Valid();
        values[key] = value;
        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Null(options);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Tls_files_are_given_all_three_or_none_and_must_exist()
    {
        var (plain, _) = InstanceOptionsParser.Parse(Valid());
        Assert.Null(plain!.Tls);

        var values = Valid();
        foreach (var key in new[] { "tls-cert-file", "tls-key-file", "tls-ca-file" })
        {
            values[key] = Path.Combine(_dir.FullName, key);
            File.WriteAllText(values[key], "pem");
        }

        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Empty(errors);
        Assert.Equal(new TlsFileSettings(values["tls-cert-file"], values["tls-key-file"], values["tls-ca-file"]), options!.Tls);
        Assert.Equal(Path.Combine(_dir.FullName, "tls"), options.TlsDirectory);

        values.Remove("tls-ca-file");
        Assert.Contains("tls-ca-file: required with tls-cert-file and tls-key-file (give the certificate, key and CA files, or none)", InstanceOptionsParser.Parse(values).Errors);
        values["tls-ca-file"] = "/nonexistent/ca.crt";
        Assert.Contains("tls-ca-file: no file at /nonexistent/ca.crt", InstanceOptionsParser.Parse(values).Errors);
    }

    [Fact]
    public void In_a_pod_the_member_is_the_peer_named_like_the_pod()
    {
        var values = Valid();
        values.Remove("id");
        values["pod-name"] = "b";
        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Empty(errors);
        Assert.Equal(2UL, options!.Id);
        Assert.Equal("b", options.Name);
    }

    [Theory]
    [InlineData("x", false, "pod-name: 'x' is not among the peers (a, b, c)")]
    [InlineData("a", true, "pod-name: give either id or pod-name, not both")]
    [InlineData(null, false, "id: required")]
    public void A_pod_name_that_names_no_peer_or_comes_with_an_id_is_refused(string? podName, bool keepId, string expected)
    {
        var values = Valid();
        if (!keepId)
        {
            values.Remove("id");
        }

        if (podName is not null)
        {
            values["pod-name"] = podName;
        }

        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Null(options);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("1", "1,2,3", false)]
    [InlineData("4", "1,2,3", true)]
    [InlineData("6", "1,2,3", true)]
    [InlineData("4", "1,2,3,4,5", false)]
    public void Founders_make_every_other_member_join_and_peers_may_list_members_added_later(string id, string founders, bool joins)
    {
        // Four peers: founded by three, one added by a scale (or one of five removed).
        var values = Valid();
        values["id"] = id;
        values["peers"] += $",{id switch { "1" => "4", _ => id }}=d@127.0.0.1:5004:6004:7004";
        values["founders"] = founders;
        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Empty(errors);
        Assert.Equal(joins, options!.Join);
        Assert.Equal(options.Peers.Where(p => founders.Split(',').Contains(p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))), options.FoundingPeers);
    }

    [Theory]
    [InlineData("1,2", "founders: must name 3 or 5 distinct member ids")]
    [InlineData("1,1,2", "founders: must name 3 or 5 distinct member ids")]
    [InlineData("1,x,3", "founders: 'x' is not a member id")]
    public void Founders_that_cannot_have_founded_a_cluster_are_refused(string founders, string expected)
    {
        var values = Valid();
        values["founders"] = founders;
        Assert.Contains(InstanceOptionsParser.Parse(values).Errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Without_founders_peers_must_still_list_3_or_5()
    {
        var values = Valid();
        values["peers"] += ",4=d@127.0.0.1:5004:6004:7004";
        Assert.Contains(InstanceOptionsParser.Parse(values).Errors, e => e.Contains("peers: must list 3 or 5 members", StringComparison.Ordinal));
    }

    [Fact]
    public void Superuser_password_and_parameters_files_are_read_from_their_settings()
    {
        var values = Valid();
        values["data-dir"] = Path.Combine(_dir.FullName, "data");
        values["superuser-password-file"] = values["replication-password-file"];
        values["parameters-file"] = Path.Combine(_dir.FullName, "postgresql.conf");
        File.WriteAllText(values["parameters-file"], "work_mem = '8MB'\n");
        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Empty(errors);
        Assert.Equal(values["superuser-password-file"], options!.SuperuserPasswordFile);
        Assert.Equal(values["parameters-file"], options.ParametersFile);
        Assert.Equal(Path.Combine(_dir.FullName, "data", "parameters", "in-force.conf"), options.ParametersInForce);
    }

    [Theory]
    [InlineData("superuser-password-file", "/nonexistent/password", null, "superuser-password-file: no file at /nonexistent/password")]
    [InlineData("superuser-password-file", "relative/password", null, "superuser-password-file: must be an absolute path, not 'relative/password'")]
    [InlineData("superuser-password-file", "{dir}/empty", "  \n", "superuser-password-file: {dir}/empty is empty; the postgres role's password cannot be empty")]
    [InlineData("parameters-file", "/nonexistent/postgresql.conf", null, "parameters-file: no file at /nonexistent/postgresql.conf")]
    [InlineData("parameters-file", "{dir}/inside.conf", "", "parameters-file: {dir}/inside.conf is inside data-dir")]
    public void Bad_superuser_password_or_parameters_file_is_refused_naming_why(string key, string value, string? content, string expected)
    {
        var values = Valid();
        var path = value.Replace("{dir}", _dir.FullName, StringComparison.Ordinal);
        if (content is not null)
        {
            File.WriteAllText(path, content);
        }

        values[key] = path;
        var (options, errors) = InstanceOptionsParser.Parse(values);
        Assert.Null(options);
        Assert.Contains(errors, e => e.Contains(expected.Replace("{dir}", _dir.FullName, StringComparison.Ordinal), StringComparison.Ordinal));
    }

    [Fact]
    public void Short_cluster_key_is_refused()
    {
        var values = Valid();
        File.WriteAllBytes(values["cluster-key-file"], new byte[8]);
        Assert.Contains(InstanceOptionsParser.Parse(values).Errors, e => e.Contains("must hold at least 32 bytes", StringComparison.Ordinal));
    }

    [Fact]
    public void Missing_required_settings_are_all_named_at_once()
    {
        var (_, errors) = InstanceOptionsParser.Parse(new Dictionary<string, string>());
        foreach (var key in new[] { "id", "data-dir", "peers", "cluster-key-file", "replication-password-file" })
        {
            Assert.Contains(errors, e => e.StartsWith(key + ": required", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Settings_file_reads_key_value_lines_and_reports_bad_ones()
    {
        var values = InstanceOptionsParser.ReadFile("# comment\nid = 2\n\nmode=quorum\nnonsense\n", out var errors);
        Assert.Equal("2", values["id"]);
        Assert.Equal("quorum", values["mode"]);
        Assert.Equal(["line 5: expected 'key = value'"], errors);
    }
}
