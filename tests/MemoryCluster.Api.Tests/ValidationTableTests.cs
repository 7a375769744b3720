using System.Reflection;
using System.Text.Json;
using MemoryCluster.Api.Crd;

namespace MemoryCluster.Api.Tests;

/// <summary>
/// One table for both sides of validation. Each case states the C# verdict (the operator's
/// <see cref="SpecValidator"/>) and what the API server would say: a schema keyword (evaluated here by
/// <see cref="SchemaEvaluator"/>) or a CEL rule (whose text is asserted, since CEL cannot be evaluated here).
/// </summary>
public sealed class ValidationTableTests
{
    /// <param name="Name">Case name, shown by the test runner.</param>
    /// <param name="Change">Turns a valid cluster into the case.</param>
    /// <param name="CSharpPath">The path C# must report, or null when C# must accept the cluster.</param>
    /// <param name="RuleId">The CEL rule id the C# error must carry, when CEL checks the same rule.</param>
    /// <param name="SchemaViolation">"path: keyword" the schema must report, or null when the schema accepts.</param>
    /// <param name="CelPath">Schema node holding the CEL rule that rejects the case ("" for the root).</param>
    /// <param name="CelRule">The exact CEL rule text expected at <paramref name="CelPath"/>.</param>
    /// <param name="Old">For update cases: turns a valid cluster into the stored one.</param>
    public sealed record Case(
        string Name,
        Func<MemoryClusterResource, MemoryClusterResource> Change,
        string? CSharpPath,
        string? RuleId = null,
        string? SchemaViolation = null,
        string? CelPath = null,
        string? CelRule = null,
        Func<MemoryClusterResource, MemoryClusterResource>? Old = null);

    private static MemoryClusterResource Spec(MemoryClusterResource c, Func<MemoryClusterSpec, MemoryClusterSpec> f) =>
        c with { Spec = f(c.Spec) };

    private static MemoryClusterResource Params(MemoryClusterResource c, string key, string value) =>
        Spec(c, s => s with { Postgres = s.Postgres with { Parameters = new Dictionary<string, string> { [key] = value } } });

    private static MemoryClusterResource RemovedReplicationField(MemoryClusterResource c, string field, int value) =>
        Spec(c, s => s with { Replication = s.Replication with { Unmodeled = new() { [field] = JsonSerializer.SerializeToElement(value) } } });

    private static MemoryClusterResource Storage(MemoryClusterResource c, string size, string? className) =>
        Spec(c, s => s with { Storage = new StorageSpec { Size = new Quantity(size), StorageClassName = className } });

    private const string ThreeOrFive = "self == 3 || self == 5";
    private const string ClassImmutable =
        "!has(oldSelf.storageClassName) || (has(self.storageClassName) && self.storageClassName == oldSelf.storageClassName)";

    public static readonly IReadOnlyList<Case> Cases =
    [
        // Valid clusters: C#, schema and CEL all accept.
        new("defaults", c => c, null),
        new("five instances", c => Spec(c, s => s with { Instances = 5 }), null),
        new("quorum mode", c => Spec(c, s => s with { Replication = s.Replication with { Mode = ReplicationModes.Quorum } }), null),
        new("ordinary parameters", c => Params(c, "shared_buffers", "256MB"), null),
        new("custom parameter with a dot", c => Params(c, "pg_stat_statements.max", "5000"), null),
        new("storage class set for the first time", c => Storage(c, "1Gi", "fast"), null, Old: c => Storage(c, "1Gi", null)),
        new("storage grows", c => Storage(c, "20Gi", "fast"), null, Old: c => Storage(c, "10Gi", "fast")),
        new("compute off", c => Spec(c, s => s with { Compute = s.Compute with { Replicas = 0 } }), null),
        new("requests within limits", c => Spec(c, s => s with { Postgres = s.Postgres with { Resources = new() { Requests = new Dictionary<string, Quantity> { ["cpu"] = new("500m") }, Limits = new Dictionary<string, Quantity> { ["cpu"] = new("1") } } } }), null),
        new("name of 50 characters", c => c with { Metadata = new() { Name = new string('a', 50) } }, null),

        // Rules CEL checks too.
        new("two instances", c => Spec(c, s => s with { Instances = 2 }), "spec.instances", RuleIds.InstancesThreeOrFive, CelPath: "spec.instances", CelRule: ThreeOrFive),
        new("four instances", c => Spec(c, s => s with { Instances = 4 }), "spec.instances", RuleIds.InstancesThreeOrFive, CelPath: "spec.instances", CelRule: ThreeOrFive),
        new("seven instances", c => Spec(c, s => s with { Instances = 7 }), "spec.instances", RuleIds.InstancesThreeOrFive, CelPath: "spec.instances", CelRule: ThreeOrFive),
        new("storage class changed", c => Storage(c, "1Gi", "slow"), "spec.storage.storageClassName", RuleIds.StorageClassImmutable, CelPath: "spec.storage", CelRule: ClassImmutable, Old: c => Storage(c, "1Gi", "fast")),
        new("storage class removed", c => Storage(c, "1Gi", null), "spec.storage.storageClassName", RuleIds.StorageClassImmutable, CelPath: "spec.storage", CelRule: ClassImmutable, Old: c => Storage(c, "1Gi", "fast")),
        new("efConstruction below m", c => Spec(c, s => s with { Compute = s.Compute with { Hnsw = new HnswSpec { M = 32, EfConstruction = 8 } } }), "spec.compute.hnsw.efConstruction", RuleIds.EfConstructionAtLeastM, CelPath: "spec.compute.hnsw", CelRule: "self.efConstruction >= self.m"),
        new("name of 51 characters", c => c with { Metadata = new() { Name = new string('a', 51) } }, "metadata.name", RuleIds.NameLength, CelPath: "", CelRule: "self.metadata.name.size() <= 50"),
        new("managed parameter port", c => Params(c, "port", "5433"), "spec.postgres.parameters[port]", RuleIds.ParametersNotManaged, CelPath: "spec.postgres.parameters", CelRule: Defaults.ManagedParametersCel),
        new("managed parameter synchronous_standby_names", c => Params(c, "synchronous_standby_names", "*"), "spec.postgres.parameters[synchronous_standby_names]", RuleIds.ParametersNotManaged, CelPath: "spec.postgres.parameters", CelRule: Defaults.ManagedParametersCel),

        // Rules the schema's keywords check.
        new("unknown replication mode", c => Spec(c, s => s with { Replication = s.Replication with { Mode = "sync" } }), "spec.replication.mode", SchemaViolation: "spec.replication.mode: enum"),
        new("unknown anti-affinity", c => Spec(c, s => s with { Scheduling = s.Scheduling with { AntiAffinity = "always" } }), "spec.scheduling.antiAffinity", SchemaViolation: "spec.scheduling.antiAffinity: enum"),
        new("embedding dimensions zero", c => Spec(c, s => s with { Compute = s.Compute with { EmbeddingDimensions = 0 } }), "spec.compute.embeddingDimensions", SchemaViolation: "spec.compute.embeddingDimensions: minimum"),
        new("negative compute replicas", c => Spec(c, s => s with { Compute = s.Compute with { Replicas = -1 } }), "spec.compute.replicas", SchemaViolation: "spec.compute.replicas: minimum"),
        new("size that is not a quantity", c => Storage(c, "ten gigabytes", null), "spec.storage.size", SchemaViolation: "spec.storage.size: pattern"),
        new("parameter value with a newline", c => Params(c, "work_mem", "4MB\nport = 1"), "spec.postgres.parameters[work_mem]", SchemaViolation: "spec.postgres.parameters[work_mem]: pattern"),
        new("empty image", c => Spec(c, s => s with { Postgres = s.Postgres with { Image = "" } }), "spec.postgres.image", SchemaViolation: "spec.postgres.image: minLength"),
        new("topology spread skew of zero", c => Spec(c, s => s with { Scheduling = s.Scheduling with { TopologySpread = new TopologySpreadSpec { MaxSkew = 0 } } }), "spec.scheduling.topologySpread.maxSkew", SchemaViolation: "spec.scheduling.topologySpread.maxSkew: minimum"),

        // Rules only the operator checks (CEL cannot, or its check would be too costly): the API server accepts.
        new("managed parameter in capitals", c => Params(c, "PORT", "5433"), "spec.postgres.parameters[PORT]", RuleIds.ParametersNotManaged),
        new("recovery_target prefix", c => Params(c, "recovery_target_something", "x"), "spec.postgres.parameters[recovery_target_something]", RuleIds.ParametersNotManaged),
        new("parameter name starting with a digit", c => Params(c, "1work_mem", "4MB"), "spec.postgres.parameters[1work_mem]"),
        new("storage too small", c => Storage(c, "10Mi", null), "spec.storage.size"),
        new("storage shrinks", c => Storage(c, "5Gi", null), "spec.storage.size", Old: c => Storage(c, "10Gi", null)),
        new("upper-case name", c => c with { Metadata = new() { Name = "Demo" } }, "metadata.name"),
        new("missing name", c => c with { Metadata = new() }, "metadata.name"),
        new("request above limit", c => Spec(c, s => s with { Compute = s.Compute with { Resources = new() { Requests = new Dictionary<string, Quantity> { ["memory"] = new("2Gi") }, Limits = new Dictionary<string, Quantity> { ["memory"] = new("1Gi") } } } }), "spec.compute.resources.requests[memory]"),
        new("storage class that is not a name", c => Storage(c, "1Gi", "Fast SSD"), "spec.storage.storageClassName"),

        // Fields the API no longer has. The schema does not declare them, so the API server refuses them as
        // unknown under strict field validation (kubectl's default) and otherwise drops them with a warning;
        // C# names them and says what replaced them.
        new("removed leaseSeconds", c => RemovedReplicationField(c, "leaseSeconds", 4), "spec.replication.leaseSeconds", SchemaViolation: "spec.replication.leaseSeconds: unknown field"),
        new("removed failoverDelaySeconds", c => RemovedReplicationField(c, "failoverDelaySeconds", 6), "spec.replication.failoverDelaySeconds", SchemaViolation: "spec.replication.failoverDelaySeconds: unknown field"),
    ];

    public static TheoryData<string> CaseNames => [.. Cases.Select(c => c.Name)];

    private static Case Find(string name) => Cases.Single(c => c.Name == name);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Csharp_verdict_matches_the_table(string name)
    {
        var @case = Find(name);
        var errors = SpecValidator.Validate(@case.Change(Fixtures.Valid()), @case.Old?.Invoke(Fixtures.Valid()));

        if (@case.CSharpPath is null)
        {
            Assert.Empty(errors);
            return;
        }

        var error = Assert.Single(errors, e => e.Path == @case.CSharpPath);
        Assert.Equal(@case.RuleId, error.RuleId);
        Assert.StartsWith(@case.CSharpPath + ": ", error.ToString(), StringComparison.Ordinal);
        Assert.True(error.Message.Length > 10, $"the message '{error.Message}' should say what the rule is");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Schema_verdict_matches_the_table(string name)
    {
        var @case = Find(name);
        var violations = SchemaEvaluator.Violations(Fixtures.Schema, Fixtures.ToJsonNode(@case.Change(Fixtures.Valid())));

        if (@case.SchemaViolation is null)
        {
            Assert.Empty(violations);
        }
        else
        {
            Assert.Contains(@case.SchemaViolation, violations);
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Cel_rule_of_the_case_is_in_the_crd_at_its_path(string name)
    {
        var @case = Find(name);
        if (@case.CelPath is null)
        {
            // Nothing in the table says CEL rejects this case; make sure the C# side agrees that no CEL rule
            // with the same id would, except for the rules whose CEL form is knowingly narrower.
            Assert.True(
                @case.RuleId is null or RuleIds.ParametersNotManaged,
                $"case '{name}' carries CEL rule {@case.RuleId} but the table names no CEL path");
            return;
        }

        var rules = Fixtures.SchemaAt(@case.CelPath)["x-kubernetes-validations"]!.AsArray()
            .Select(r => r!["rule"]!.GetValue<string>());
        Assert.Contains(@case.CelRule, rules);

        var attribute = AllCelRules().Single(r => r.Id == @case.RuleId);
        Assert.Equal(@case.CelRule, attribute.Rule);
    }

    [Fact]
    public void Every_cel_rule_in_the_crd_is_exercised_by_a_rejecting_case()
    {
        var exercised = Cases.Where(c => c.CelRule is not null).Select(c => c.CelRule).ToHashSet();
        foreach (var rule in AllCelRules())
        {
            Assert.Contains(rule.Rule, exercised);
        }
    }

    [Fact]
    public void Cases_the_operator_accepts_are_accepted_by_the_api_server_too()
    {
        foreach (var @case in Cases.Where(c => c.CSharpPath is null))
        {
            Assert.Null(@case.SchemaViolation);
            Assert.Null(@case.CelPath);
        }
    }

    [Theory]
    [InlineData("port", true, true)]
    [InlineData("listen_addresses", true, true)]
    [InlineData("primary_conninfo", true, true)]
    [InlineData("recovery_target_lsn", true, true)]
    [InlineData("Port", true, false)]
    [InlineData("WAL_LEVEL", true, false)]
    [InlineData("recovery_target_custom", true, false)]
    [InlineData("shared_buffers", false, false)]
    [InlineData("synchronous_commit", true, true)]
    [InlineData("include_dir", true, true)]
    [InlineData("work_mem", false, false)]
    public void Managed_parameter_is_refused_by_csharp_and_by_cel_only_in_its_exact_spelling(string key, bool csharpRefuses, bool celRefuses)
    {
        Assert.Equal(csharpRefuses, Defaults.IsManagedParameter(key));
        Assert.Equal(celRefuses, Defaults.ManagedParametersCel.Contains($"!has(self.{key})", StringComparison.Ordinal));
    }

    [Fact]
    public void Cel_parameter_rule_lists_exactly_the_managed_parameters()
    {
        var inCel = System.Text.RegularExpressions.Regex.Matches(Defaults.ManagedParametersCel, @"!has\(self\.([a-z_]+)\)")
            .Select(m => m.Groups[1].Value)
            .Order(StringComparer.Ordinal);
        Assert.Equal(Defaults.ManagedParameters.Order(StringComparer.Ordinal), inCel);
        Assert.Equal(Defaults.ManagedParametersCel.Split("&&").Length, Defaults.ManagedParameters.Count);
    }

    private static IEnumerable<CelRuleAttribute> AllCelRules() =>
        typeof(MemoryClusterResource).Assembly.GetTypes()
            .SelectMany(t => t.GetCustomAttributes<CelRuleAttribute>()
                .Concat(t.GetProperties().SelectMany(p => p.GetCustomAttributes<CelRuleAttribute>())));

    [Fact]
    public void Errors_name_every_broken_rule_at_once()
    {
        var cluster = Spec(Fixtures.Valid("Bad"), s => s with { Instances = 4, Replication = s.Replication with { Mode = "sync" } });
        var paths = SpecValidator.Validate(cluster).Select(e => e.Path).ToList();
        Assert.Equal(["metadata.name", "spec.instances", "spec.replication.mode"], paths);
    }

    [Fact]
    public void Instance_count_error_explains_why()
    {
        var error = Assert.Single(SpecValidator.Validate(Spec(Fixtures.Valid(), s => s with { Instances = 2 })));
        Assert.Equal("spec.instances: must be 3 or 5 (2-node clusters cannot hold a safe majority)", error.ToString());
    }

    [Fact]
    public void Removed_replication_fields_read_from_json_are_refused_and_name_the_instance_manager_setting()
    {
        var cluster = ApiJson.Deserialize("""{"metadata":{"name":"demo"},"spec":{"replication":{"mode":"quorum","leaseSeconds":4,"failoverDelaySeconds":6}}}""");
        Assert.Equal(
            [
                "spec.replication.leaseSeconds: was removed from the API; delete it (the primary lease is the instance manager's primary-lease-ms setting, default 2500 ms; see docs/failover.md \"Tuning\")",
                "spec.replication.failoverDelaySeconds: was removed from the API; delete it (the failover delay follows from the instance manager's primary-lease-ms setting; see docs/failover.md \"Tuning\")",
            ],
            SpecValidator.Validate(cluster).Select(e => e.ToString()));
    }
}
