using System.Text.Json.Nodes;
using k8s.Models;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tests.Planning;

public sealed class ObjectDiffTests
{
    private static JsonNode? J(string json) => JsonNode.Parse(json);

    [Theory]
    [InlineData("""{"a":1}""", """{"a":1,"b":2}""", true)]
    [InlineData("""{"a":1}""", """{"a":2}""", false)]
    [InlineData("""{"a":{"b":[1,2]}}""", """{"a":{"b":[1,2],"c":3}}""", true)]
    [InlineData("""{"a":[{"n":"x"}]}""", """{"a":[{"n":"x","default":true}]}""", true)]
    [InlineData("""{"a":[{"n":"x"}]}""", """{"a":[{"n":"x"},{"n":"y"}]}""", false)]
    [InlineData("""{"a":"1"}""", """{"a":1}""", false)]
    [InlineData("""{"a":1}""", """{"a":1.0}""", true)]
    [InlineData("""{"a":1}""", """{}""", false)]
    public void Desired_fields_must_be_in_the_observed_object_with_the_same_value(string desired, string observed, bool contained) =>
        Assert.Equal(contained, ObjectDiff.Contains(J(observed), J(desired)));

    [Fact]
    public void A_field_the_operator_stopped_setting_changes_the_hash_so_it_is_applied()
    {
        var before = new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "c" }, Data = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" } };
        var after = new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "c" }, Data = new Dictionary<string, string> { ["a"] = "1" } };
        var observed = ObjectDiff.ToJson(ObjectDiff.WithHash(before));

        Assert.True(ObjectDiff.Satisfied(observed, ObjectDiff.ToJson(ObjectDiff.WithHash(before))));
        // Without the hash the smaller object is contained in the observed one; with it, the change shows.
        Assert.True(ObjectDiff.Contains(observed, ObjectDiff.ToJson(after)));
        Assert.False(ObjectDiff.Satisfied(observed, ObjectDiff.ToJson(ObjectDiff.WithHash(after))));
    }

    [Fact]
    public void The_hash_ignores_its_own_annotation()
    {
        var map = new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "c" } };
        var hash = ObjectDiff.Hash(map);
        Assert.Equal(hash, ObjectDiff.Hash(ObjectDiff.WithHash(map)));
    }
}
