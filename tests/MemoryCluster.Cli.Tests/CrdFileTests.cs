using System.Text.Json.Nodes;
using MemoryCluster.Cli.Manifests;

namespace MemoryCluster.Cli.Tests;

public sealed class CrdFileTests
{
    [Theory]
    [InlineData(CrdFile.RelativePath)]
    [InlineData(CrdFile.ChartCopyRelativePath)]
    public void Committed_crd_and_the_charts_copy_are_what_the_types_generate(string path)
    {
        var committed = File.ReadAllText(Repository.PathOf(path));
        Assert.True(
            committed == CrdFile.Generate(),
            $"{path} differs from what the C# types generate: run `make crds` and commit the result");
    }

    [Fact]
    public void Committed_api_reference_table_is_what_the_types_generate()
    {
        var committed = File.ReadAllText(Repository.PathOf(ApiReference.RelativePath));
        Assert.True(
            committed == ApiReference.Update(committed, CrdFile.Build()),
            $"the field table in {ApiReference.RelativePath} differs from the C# types: run `make crds` and commit the result");
        Assert.Contains("| `spec.instances` | integer | `3` |", committed, StringComparison.Ordinal);
    }

    [Fact]
    public void Api_reference_without_markers_is_refused_with_a_clear_error()
    {
        var error = Assert.Throws<InvalidOperationException>(() => ApiReference.Update("# no markers\n", CrdFile.Build()));
        Assert.Contains("must hold the markers", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generated_crd_yaml_reads_back_as_the_same_tree()
    {
        var yaml = CrdFile.Generate();
        var document = Assert.Single(YamlJson.ToJson(yaml));
        var again = YamlJson.FromJson(document);
        Assert.Equal(yaml[yaml.IndexOf("apiVersion", StringComparison.Ordinal)..], again);
        Assert.Equal("CustomResourceDefinition", document["kind"]!.GetValue<string>());
        Assert.Equal(3, document["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!["properties"]!["spec"]!["properties"]!["instances"]!["default"]!.GetValue<long>());
    }

    [Fact]
    public void Crds_check_reports_a_stale_file_and_passes_a_fresh_one()
    {
        var dir = Directory.CreateTempSubdirectory("mc-crds-");
        try
        {
            var path = Path.Combine(dir.FullName, "crd.yaml");
            var copy = Path.Combine(dir.FullName, "chart", "crds", "crd.yaml");
            string[] paths = ["--output", path, "--api-reference", "", "--chart-copy", copy];
            var (code, _, _) = Cli.Run(["crds", .. paths]);
            Assert.Equal(0, code);
            Assert.Equal(File.ReadAllText(path), File.ReadAllText(copy));
            (code, var stdout, _) = Cli.Run(["crds", .. paths, "--check"]);
            Assert.Equal(0, code);
            Assert.Contains("up to date", stdout, StringComparison.Ordinal);

            File.AppendAllText(path, "# edited by hand\n");
            (code, _, var stderr) = Cli.Run(["crds", .. paths, "--check"]);
            Assert.Equal(1, code);
            Assert.Contains("make crds", stderr, StringComparison.Ordinal);

            // The chart's copy alone going stale fails the check as well, naming the copy.
            (code, _, _) = Cli.Run(["crds", .. paths]);
            Assert.Equal(0, code);
            File.AppendAllText(copy, "# edited by hand\n");
            (code, _, stderr) = Cli.Run(["crds", .. paths, "--check"]);
            Assert.Equal(1, code);
            Assert.Contains(copy + " differs", stderr, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Strings_that_look_like_other_types_are_quoted_in_yaml()
    {
        var node = new JsonObject { ["a"] = "true", ["b"] = "3", ["c"] = "", ["d"] = "null", ["e"] = "plain text", ["f"] = 3, ["g"] = false };
        var back = Assert.Single(YamlJson.ToJson(YamlJson.FromJson(node)));
        Assert.Equal(node.ToJsonString(), back.ToJsonString());
    }
}
