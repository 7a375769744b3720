using MemoryCluster.Cli.Manifests;

namespace MemoryCluster.Cli.Tests.Chart;

/// <summary>
/// tests/schema-check/check.mjs: the official Kubernetes schemas (kubernetes-models) over what the operator
/// renders, and proof that the check fails on objects the API server would refuse.
/// </summary>
public sealed class SchemaCheckTests
{
    [Fact]
    public void Every_golden_render_of_the_operator_passes_the_official_kubernetes_schemas()
    {
        var goldens = Directory.GetFiles(Repository.PathOf("tests/MemoryCluster.Cli.Tests/Operator/golden"), "*.yaml").Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(goldens);
        var (code, output) = ChartTools.SchemaCheck(null, goldens);
        Assert.True(code == 0, output);
        Assert.Contains($"in {goldens.Length} files, 0 errors", output, StringComparison.Ordinal);

        foreach (var golden in goldens)
        {
            var documents = YamlJson.ToJson(File.ReadAllText(golden));
            Assert.Empty(documents.Select(ChartTools.UnknownField).OfType<string>());
        }
    }

    [Fact]
    public void The_samples_pass_the_schema_of_our_crd()
    {
        var samples = Directory.GetFiles(Repository.PathOf("crds/samples"), "*.yaml");
        var (code, output) = ChartTools.SchemaCheck(null, ["--crd", ChartTools.Crd, .. samples]);
        Assert.True(code == 0, output);
    }

    [Fact]
    public void A_service_with_a_port_that_is_not_a_number_fails_with_the_object_and_the_path()
    {
        const string broken = """
            apiVersion: v1
            kind: Service
            metadata:
              name: broken
              namespace: demo
            spec:
              ports:
                - name: postgres
                  port: postgres
            """;
        var (code, output) = ChartTools.SchemaCheck(broken, "-");
        Assert.Equal(1, code);
        Assert.Contains("<stdin>: document 1 (Service demo/broken): /spec/ports/0/port: must be integer", output, StringComparison.Ordinal);
        Assert.Contains("1 errors", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_error_of_every_document_is_reported()
    {
        const string broken = """
            # a comment before the first document, as the Secrets of a render carry
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: fine
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: broken
            spec:
              replicas: "2"
              selector: {}
              template:
                spec:
                  containers:
                    - image: x
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata:
              name: broken
            rules:
              - resources: ["pods"]
            """;
        var (code, output) = ChartTools.SchemaCheck(broken, "-");
        Assert.Equal(1, code);
        Assert.Contains("document 2 (Deployment broken): /spec/replicas: must be integer", output, StringComparison.Ordinal);
        Assert.Contains("document 2 (Deployment broken): /spec/template/spec/containers/0: must have required property name", output, StringComparison.Ordinal);
        Assert.Contains("document 3 (Role broken): /rules/0: must have required property verbs", output, StringComparison.Ordinal);
        Assert.DoesNotContain("document 1", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n", false, "no schema for apiVersion example.com/v1 kind Widget")]
    // A MemoryCluster is checked only against the CRD it is given, never passed unchecked.
    [InlineData("apiVersion: memorycluster.io/v1alpha1\nkind: MemoryCluster\nmetadata:\n  name: demo\n", false, "no schema for apiVersion memorycluster.io/v1alpha1 kind MemoryCluster")]
    [InlineData("apiVersion: memorycluster.io/v1alpha1\nkind: MemoryCluster\nmetadata:\n  name: demo\nspec:\n  instances: three\n", true, "(MemoryCluster demo): /spec/instances: must be integer")]
    [InlineData("apiVersion: v1\nkind: [unclosed\n", false, "document 1: not YAML")]
    public void What_cannot_be_checked_or_breaks_a_schema_fails(string yaml, bool withCrd, string expected)
    {
        var (code, output) = ChartTools.SchemaCheck(yaml, withCrd ? ["--crd", ChartTools.Crd, "-"] : ["-"]);
        Assert.Equal(1, code);
        Assert.Contains(expected, output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_field_the_official_model_does_not_know_is_found()
    {
        var document = System.Text.Json.Nodes.JsonNode.Parse("""{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"prots":[{"port":5432}]}}""")!.AsObject();
        var error = ChartTools.UnknownField(document);
        Assert.NotNull(error);
        Assert.Contains("prots", error, StringComparison.Ordinal);
        Assert.Null(ChartTools.UnknownField(System.Text.Json.Nodes.JsonNode.Parse("""{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":5432}]}}""")!.AsObject()));
    }
}
