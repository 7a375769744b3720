using System.Text.Json;
using System.Text.Json.Nodes;
using MemoryCluster.Api;
using MemoryCluster.Cli.Manifests;

namespace MemoryCluster.Cli.Tests;

public sealed class SampleTests
{
    public static TheoryData<string> Samples =>
        [.. SampleFiles()];

    private static IEnumerable<string> SampleFiles() =>
        Directory.GetFiles(Repository.PathOf("crds/samples"), "*.yaml").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal);

    [Fact]
    public void There_is_a_minimal_and_a_full_sample() =>
        Assert.Equal(["full.yaml", "minimal.yaml"], SampleFiles());

    [Theory]
    [MemberData(nameof(Samples))]
    public void Sample_parses_into_the_csharp_types_and_is_valid(string file)
    {
        var manifest = Assert.Single(ClusterManifest.Read(File.ReadAllText(Repository.PathOf($"crds/samples/{file}"))));
        Assert.Empty(manifest.Errors);
        Assert.NotNull(manifest.Cluster);
        Assert.Equal(ApiGroup.Kind, manifest.Cluster.Kind);
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Sample_round_trips_through_the_csharp_types(string file)
    {
        var yaml = File.ReadAllText(Repository.PathOf($"crds/samples/{file}"));
        var original = Assert.Single(YamlJson.ToJson(yaml));
        var cluster = ApiJson.Deserialize(original.ToJsonString());
        var written = YamlJson.FromJson(JsonSerializer.SerializeToNode(cluster, ApiJson.Options)!);
        var reread = ApiJson.Deserialize(Assert.Single(YamlJson.ToJson(written)).ToJsonString());

        Assert.Equal(ApiJson.Serialize(cluster), ApiJson.Serialize(reread));
        // Every field the sample sets survives, with its value (numbers written as strings stay strings).
        AssertContains(original, JsonSerializer.SerializeToNode(reread, ApiJson.Options)!, "");
    }

    [Fact]
    public void Full_sample_sets_every_spec_field()
    {
        var full = Assert.Single(YamlJson.ToJson(File.ReadAllText(Repository.PathOf("crds/samples/full.yaml"))));
        var defaults = JsonSerializer.SerializeToNode(new MemoryClusterSpec(), ApiJson.Options)!;
        AssertHasEveryField(defaults, full["spec"]!, "spec");

        static void AssertHasEveryField(JsonNode expected, JsonNode actual, string path)
        {
            if (expected is not JsonObject obj)
            {
                return;
            }

            foreach (var (key, child) in obj)
            {
                Assert.True(actual is JsonObject a && a.ContainsKey(key), $"full.yaml does not set {path}.{key}");
                AssertHasEveryField(child!, actual[key]!, $"{path}.{key}");
            }
        }
    }

    private static void AssertContains(JsonNode expected, JsonNode actual, string path)
    {
        switch (expected)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj)
                {
                    Assert.True(actual is JsonObject a && a.ContainsKey(key), $"{path}.{key} was lost");
                    AssertContains(child!, actual[key]!, $"{path}.{key}");
                }

                break;
            case JsonValue value:
                Assert.Equal(value.ToString(), actual.ToString());
                break;
            default:
                Assert.Equal(expected.ToJsonString(), actual.ToJsonString());
                break;
        }
    }
}
