using MemoryCluster.Cli.Commands;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Cli.Tests.Operator;

/// <summary>
/// <c>memorycluster operator render</c> against golden manifests: a change to what the operator applies shows up
/// here as a diff to review. MEMORYCLUSTER_UPDATE_GOLDEN=1 rewrites the files after a deliberate change.
/// </summary>
public sealed class RenderCommandTests
{
    public static TheoryData<string, string, int?> Samples => new()
    {
        { "minimal-3", "minimal.yaml", null },
        { "minimal-5", "minimal.yaml", 5 },
        { "full-5", "full.yaml", null },
        { "full-3", "full.yaml", 3 },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void Render_of_a_sample_matches_its_golden_manifest(string golden, string sample, int? instances)
    {
        var yaml = File.ReadAllText(Path.Combine(Repository.Root, "crds", "samples", sample));
        if (instances is { } n)
        {
            var replaced = System.Text.RegularExpressions.Regex.Replace(yaml, @"(?m)^  instances: \d+$", $"  instances: {n}");
            Assert.NotEqual(yaml, replaced);
            yaml = replaced;
        }

        var (code, stdout, stderr) = Render(yaml);
        Assert.True(code == 0, stderr);
        var path = Path.Combine(Repository.Root, "tests", "MemoryCluster.Cli.Tests", "Operator", "golden", golden + ".yaml");
        if (Environment.GetEnvironmentVariable("MEMORYCLUSTER_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, stdout);
        }

        Assert.Equal(File.ReadAllText(path), stdout);
    }

    [Fact]
    public void Every_rendered_document_reads_back_as_yaml_and_names_its_kind()
    {
        var (code, stdout, _) = Render(File.ReadAllText(Path.Combine(Repository.Root, "crds", "samples", "full.yaml")));
        Assert.Equal(0, code);
        var documents = Manifests.YamlJson.ToJson(stdout);
        Assert.Equal(20, documents.Count); // 5 Secrets, the 2 certificate Secrets, 12 objects, and the NetworkPolicy the full sample turns on
        Assert.All(documents, d => Assert.False(string.IsNullOrEmpty(d["kind"]?.GetValue<string>())));
        Assert.DoesNotContain("password:", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", stdout, StringComparison.Ordinal);
        Assert.Single(documents, d => d["type"]?.GetValue<string>() == "kubernetes.io/tls" && d["data"] is null);
    }

    [Fact]
    public void An_invalid_cluster_is_refused_with_the_field_path_and_nothing_is_printed()
    {
        var (code, stdout, stderr) = Render("apiVersion: memorycluster.io/v1alpha1\nkind: MemoryCluster\nmetadata:\n  name: bad\nspec:\n  instances: 4\n");
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains("memorycluster/bad: spec.instances", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var stderr = new StringWriter();
        Assert.Equal(1, OperatorCommand.Render(["/nonexistent/cluster.yaml"], OperatorSettings.Default, TextReader.Null, new StringWriter(), stderr));
        Assert.Contains("/nonexistent/cluster.yaml: no such file", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_command_line_reads_the_file_given_with_f()
    {
        var (code, stdout, stderr) = Cli.Run("operator", "render", "-f", Path.Combine(Repository.Root, "crds", "samples", "minimal.yaml"));
        Assert.True(code == 0, stderr);
        Assert.Contains("kind: StatefulSet", stdout, StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Render(string yaml)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = OperatorCommand.Render(["-"], OperatorSettings.Default, new StringReader(yaml), stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
