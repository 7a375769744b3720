namespace MemoryCluster.Cli.Tests;

public sealed class ValidateCommandTests
{
    private const string Header = "apiVersion: memorycluster.io/v1alpha1\nkind: MemoryCluster\nmetadata:\n  name: demo\n";

    [Fact]
    public void Valid_samples_pass()
    {
        var (code, stdout, stderr) = Cli.Run("validate", "crds/samples/minimal.yaml", "crds/samples/full.yaml");
        Assert.True(code == 0, stderr);
        Assert.Contains("memorycluster/demo is valid", stdout, StringComparison.Ordinal);
        Assert.Contains("memorycluster/memory-prod is valid", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_spec_is_refused_with_the_field_path_and_the_reason()
    {
        var (code, _, stderr) = Cli.RunWithInput(Header + "spec:\n  instances: 2\n  postgres:\n    parameters:\n      port: \"5433\"\n", "validate", "-");
        Assert.Equal(1, code);
        Assert.Contains("memorycluster/demo: spec.instances: must be 3 or 5 (2-node clusters cannot hold a safe majority)", stderr, StringComparison.Ordinal);
        Assert.Contains("spec.postgres.parameters[port]: is managed by the instance manager", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Removed_replication_fields_are_refused_with_their_path_and_the_setting_that_replaced_them()
    {
        var (code, stdout, stderr) = Cli.RunWithInput(Header + "spec:\n  replication:\n    mode: quorum\n    leaseSeconds: 4\n    failoverDelaySeconds: 6\n", "validate", "-");
        Assert.Equal(1, code);
        Assert.Empty(stdout);
        Assert.Equal(
            "-: memorycluster/demo: spec.replication.leaseSeconds: was removed from the API; delete it (the primary lease is the instance manager's primary-lease-ms setting, default 2500 ms; see docs/failover.md \"Tuning\")\n" +
            "-: memorycluster/demo: spec.replication.failoverDelaySeconds: was removed from the API; delete it (the failover delay follows from the instance manager's primary-lease-ms setting; see docs/failover.md \"Tuning\")\n",
            stderr.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Unknown_fields_are_refused_each_with_its_path_as_kubectl_strict_validation_does()
    {
        var yaml = Header + "spec:\n  replicaz: 3\n  postgres:\n    parameterz:\n      work_mem: 8MB\n  compute:\n    replicas: 1\n    extra: true\nstatuz: {}\n";
        var (code, stdout, stderr) = Cli.RunWithInput(yaml, "validate", "-f", "-");
        Assert.Equal(1, code);
        Assert.Empty(stdout);
        var lines = stderr.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.Equal(
            [
                "-: memorycluster/demo: spec.replicaz: unknown field: the MemoryCluster schema has no such field",
                "-: memorycluster/demo: spec.postgres.parameterz: unknown field: the MemoryCluster schema has no such field (did you mean 'parameters'?)",
                "-: memorycluster/demo: spec.compute.extra: unknown field: the MemoryCluster schema has no such field",
                "-: memorycluster/demo: statuz: unknown field: the MemoryCluster schema has no such field (did you mean 'status'?)",
            ],
            lines);

        // Maps of the schema take any key: parameters and labels are not unknown fields.
        var maps = Cli.RunWithInput(Header + "spec:\n  postgres:\n    parameters:\n      work_mem: 8MB\n", "validate", "--filename", "-");
        Assert.True(maps.ExitCode == 0, maps.Stderr);
    }

    [Fact]
    public void Manifests_are_named_with_f_or_filename_as_kubectl_takes_them_and_none_is_an_error()
    {
        var both = Cli.Run("validate", "-f", "crds/samples/minimal.yaml", "--filename", "crds/samples/full.yaml");
        Assert.True(both.ExitCode == 0, both.Stderr);
        Assert.Contains("crds/samples/minimal.yaml: memorycluster/demo is valid", both.Stdout, StringComparison.Ordinal);
        Assert.Contains("crds/samples/full.yaml: memorycluster/memory-prod is valid", both.Stdout, StringComparison.Ordinal);

        var none = Cli.Run("validate");
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("name the manifests", none.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("spec:\n  instances: three\n", "spec.instances: must be an integer")]
    [InlineData("spec:\n  postgres: []\n", "spec.postgres: must be an object")]
    [InlineData("spec:\n  postgres: null\n", "spec.postgres: must not be null")]
    [InlineData("spec:\n  monitoring:\n    enabled: maybe\n", "spec.monitoring.enabled: must be true or false")]
    public void Field_of_the_wrong_type_is_named(string spec, string expected)
    {
        var (code, _, stderr) = Cli.RunWithInput(Header + spec, "validate", "-");
        Assert.Equal(1, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Update_that_changes_the_storage_class_is_refused()
    {
        var dir = Directory.CreateTempSubdirectory("mc-validate-");
        try
        {
            var old = Path.Combine(dir.FullName, "old.yaml");
            File.WriteAllText(old, Header + "spec:\n  storage:\n    storageClassName: fast\n");
            var (code, _, stderr) = Cli.RunWithInput(Header + "spec:\n  storage:\n    storageClassName: slow\n", "validate", "-", "--old", old);
            Assert.Equal(1, code);
            Assert.Contains("spec.storage.storageClassName: is immutable once set (was 'fast')", stderr, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("spec: [unclosed\n", "not valid YAML")]
    [InlineData("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "holds no MemoryCluster")]
    public void Input_that_holds_no_cluster_is_reported(string yaml, string expected)
    {
        var (code, _, stderr) = Cli.RunWithInput(yaml, "validate", "-");
        Assert.Equal(1, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Instance_with_bad_settings_refuses_to_start_and_names_each_key()
    {
        var (code, _, stderr) = Cli.Run("instance", "--id", "9", "--mode", "sync", "--peers", "1=a@127.0.0.1:1:2:3");
        Assert.Equal(2, code);
        Assert.Contains("memorycluster instance: mode: must be async or quorum, not 'sync'", stderr, StringComparison.Ordinal);
        Assert.Contains("peers: must list 3 or 5 members", stderr, StringComparison.Ordinal);
        Assert.Contains("data-dir: required", stderr, StringComparison.Ordinal);
        Assert.Contains("id: 9 is not among the peers", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_reported()
    {
        var (code, _, stderr) = Cli.Run("validate", "does-not-exist.yaml");
        Assert.Equal(1, code);
        Assert.Contains("does-not-exist.yaml: no such file", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_without_its_settings_names_each_missing_one_and_fails()
    {
        var (code, _, stderr) = Cli.Run("compute", "--port", "http");
        Assert.Equal(2, code);
        Assert.Contains("memorycluster compute: rw: required", stderr, StringComparison.Ordinal);
        Assert.Contains("memorycluster compute: token: required", stderr, StringComparison.Ordinal);
        Assert.Contains("memorycluster compute: port: must be a whole number from 0 to 65535 (was 'http')", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_operator_without_a_reachable_configuration_says_which_and_fails()
    {
        var (code, _, stderr) = Cli.Run("operator", "run", "--kubeconfig", "does-not-exist.kubeconfig");
        Assert.Equal(2, code);
        Assert.StartsWith("memorycluster operator run: --kubeconfig does-not-exist.kubeconfig: no such file", stderr, StringComparison.Ordinal);
    }
}
