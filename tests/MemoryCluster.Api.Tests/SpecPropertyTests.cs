using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace MemoryCluster.Api.Tests;

public sealed class SpecPropertyTests
{
    private static Gen<MemoryClusterSpec> ValidSpecs =>
        from instances in Gen.Elements(3, 5)
        from mode in Gen.Elements(ReplicationModes.Async, ReplicationModes.Quorum)
        from m in Gen.Choose(2, 100)
        from efExtra in Gen.Choose(0, 300)
        from efSearch in Gen.Choose(1, 4096)
        from replicas in Gen.Choose(0, 16)
        from dims in Gen.Choose(1, 4096)
        from sizeGi in Gen.Choose(1, 4096)
        select new MemoryClusterSpec
        {
            Instances = instances,
            Storage = new StorageSpec { Size = new Quantity($"{sizeGi}Gi") },
            Replication = new ReplicationSpec { Mode = mode },
            Compute = new ComputeSpec
            {
                Replicas = replicas,
                EmbeddingDimensions = dims,
                Hnsw = new HnswSpec { M = m, EfConstruction = m + efExtra, EfSearch = efSearch },
            },
        };

    [Property(MaxTest = 300)]
    public Property Specs_within_every_rule_are_accepted_by_both_sides() =>
        Prop.ForAll(ValidSpecs.ToArbitrary(), spec =>
        {
            var cluster = Fixtures.Valid() with { Spec = spec };
            var errors = SpecValidator.Validate(cluster);
            var violations = SchemaEvaluator.Violations(Fixtures.Schema, Fixtures.ToJsonNode(cluster));
            return (errors.Count == 0 && violations.Count == 0)
                .Label(string.Join("; ", errors.Select(e => e.ToString()).Concat(violations)));
        });

    [Property(MaxTest = 300)]
    public Property Any_instance_count_but_3_or_5_is_refused_at_spec_instances() =>
        Prop.ForAll(Gen.Choose(-10, 100).Where(n => n is not (3 or 5)).ToArbitrary(), n =>
        {
            var errors = SpecValidator.Validate(Fixtures.Valid() with { Spec = new MemoryClusterSpec { Instances = n } });
            return errors.Count == 1 && errors[0].Path == "spec.instances" && errors[0].RuleId == RuleIds.InstancesThreeOrFive;
        });

    [Property(MaxTest = 200)]
    public Property Validation_is_deterministic_and_changes_nothing() =>
        Prop.ForAll(ValidSpecs.ToArbitrary(), Gen.Choose(0, 9).ToArbitrary(), (spec, n) =>
        {
            var broken = spec with { Instances = n };
            var before = System.Text.Json.JsonSerializer.Serialize(broken, ApiJson.Options);
            var first = SpecValidator.ValidateSpec(broken);
            var second = SpecValidator.ValidateSpec(broken);
            var after = System.Text.Json.JsonSerializer.Serialize(broken, ApiJson.Options);
            return before == after && first.SequenceEqual(second);
        });
}
