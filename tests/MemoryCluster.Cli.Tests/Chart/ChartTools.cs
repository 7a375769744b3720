using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s.Models;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Cli.Tests.Chart;

/// <summary>
/// The chart's tools outside .NET: the renderer (Go, built offline from Debian's packages by
/// charts/tools/render/build.sh) and the schema check (node and the kubernetes-models package in
/// tests/schema-check). .ci/run installs both; when one is missing the test fails and says how to get it.
/// </summary>
internal static class ChartTools
{
    public const string ChartDir = "charts/memorycluster-operator";

    private const string GoPackages =
        "golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev";

    private static readonly Lazy<string> Renderer = new(BuildRenderer, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The renderer's exit code and output for the chart with <paramref name="args"/> (e.g. <c>-f FILE</c>).</summary>
    public static (int Code, string Stdout, string Stderr) Render(params string[] args) =>
        Run(Renderer.Value, ["-chart", Repository.PathOf(ChartDir), "-name", "mc", "-namespace", "memorycluster-system", .. args]);

    /// <summary>Renders the chart and asserts that it worked.</summary>
    public static string RenderOrFail(params string[] args)
    {
        var (code, stdout, stderr) = Render(args);
        Assert.True(code == 0, $"the chart did not render: {stderr}");
        return stdout;
    }

    /// <summary>
    /// <c>node tests/schema-check/check.mjs ARGS</c>, with <paramref name="stdin"/> as '-'. Fails the test, saying
    /// what to install, when node or the package is missing, so that a missing tool can never pass as valid.
    /// </summary>
    public static (int Code, string Output) SchemaCheck(string? stdin, params string[] args)
    {
        var dir = Repository.PathOf("tests/schema-check");
        var package = Path.Combine(dir, "node_modules", "kubernetes-models", "package.json");
        Assert.True(File.Exists(package), $"{package} is missing: run `npm ci` in tests/schema-check (.ci/run does)");
        var (code, stdout, stderr) = Run("node", [Path.Combine(dir, "check.mjs"), .. args], stdin, "node is not installed: apt-get install nodejs npm (.ci/run does)");
        Assert.True(code is 0 or 1, $"the schema check could not run (exit {code}): {stderr}{stdout}");
        return (code, stdout + stderr);
    }

    /// <summary>The CRD that custom resources (MemoryCluster) are checked against.</summary>
    public static string Crd => Repository.PathOf("crds/memorycluster.io_memoryclusters.yaml");

    /// <summary>
    /// Every field of <paramref name="document"/> that its k8s.Models type does not know, read with unknown members
    /// refused: the official schemas behind the node check leave unknown fields alone, and a misspelt field in a
    /// template is silently dropped by the API server. Null when the document is fine; kinds that are not in the
    /// package (custom resources) are not checked here.
    /// </summary>
    public static string? UnknownField(JsonNode document)
    {
        var apiVersion = document["apiVersion"]?.GetValue<string>() ?? "";
        var kind = document["kind"]?.GetValue<string>() ?? "";
        if (!ModelTypes.Value.TryGetValue((apiVersion, kind), out var type))
        {
            return null;
        }

        try
        {
            _ = document.Deserialize(type, Strict.Value);
            return null;
        }
        catch (JsonException e)
        {
            return $"{kind} {document["metadata"]?["name"]}: {e.Message}";
        }
    }

    private static readonly Lazy<Dictionary<(string ApiVersion, string Kind), Type>> ModelTypes = new(() =>
        typeof(V1Pod).Assembly.GetTypes()
            .Select(t => (Type: t, Entity: t.GetCustomAttribute<KubernetesEntityAttribute>()))
            .Where(e => e.Entity is not null && !e.Type.Name.EndsWith("List", StringComparison.Ordinal))
            .ToDictionary(
                e => (string.IsNullOrEmpty(e.Entity!.Group) ? e.Entity.ApiVersion : e.Entity.Group + "/" + e.Entity.ApiVersion, e.Entity.Kind),
                e => e.Type));

    private static readonly Lazy<JsonSerializerOptions> Strict = new(() =>
        new JsonSerializerOptions(KubeJson.Models) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow });

    private static string BuildRenderer()
    {
        var (code, stdout, stderr) = Run("bash", [Repository.PathOf("charts/tools/render/build.sh")], missing: "bash is missing");
        Assert.True(code == 0, code == 2
            ? $"the chart renderer cannot be built: {stderr.Trim()}"
            : $"charts/tools/render/build.sh failed (exit {code}); it needs {GoPackages}: {stderr}");
        return Repository.PathOf(stdout.Trim());
    }

    private static (int Code, string Stdout, string Stderr) Run(string file, string[] args, string? stdin = null, string? missing = null) =>
        TestProcess.Run(file, args, stdin, missing ?? $"{file} could not be started", TimeSpan.FromSeconds(300));
}
