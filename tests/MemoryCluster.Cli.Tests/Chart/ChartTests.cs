using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using MemoryCluster.Cli.Manifests;

namespace MemoryCluster.Cli.Tests.Chart;

/// <summary>
/// The Helm chart, rendered without helm by charts/tools/render: what it creates, that every object passes the
/// official Kubernetes schemas, and that its RBAC covers what the operator applies.
/// </summary>
public sealed partial class ChartTests
{
    private static readonly string FullValues = Repository.PathOf("tests/MemoryCluster.Cli.Tests/Chart/chart-values-full.yaml");

    public static TheoryData<string> ValueSets => new() { "default", "full" };

    [Fact]
    public void Chart_version_and_app_version_are_the_project_version()
    {
        var version = XDocument.Load(Repository.PathOf("Directory.Build.props")).Descendants("Version").Single().Value;
        var chart = ChartYaml();
        Assert.Equal(version, chart["version"]!.GetValue<string>());
        Assert.Equal(version, chart["appVersion"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(ValueSets))]
    public void Every_rendered_object_passes_the_official_kubernetes_schemas(string values)
    {
        var rendered = ChartTools.RenderOrFail(["-include-crds", .. ValuesArgs(values)]);
        var (code, output) = ChartTools.SchemaCheck(rendered, "-");
        Assert.True(code == 0, output);
        Assert.Contains("0 errors", output, StringComparison.Ordinal);
        Assert.Empty(YamlJson.ToJson(rendered).Select(ChartTools.UnknownField).OfType<string>());
    }

    [Fact]
    public void Default_values_make_a_two_replica_operator_with_cluster_wide_rights()
    {
        var objects = Objects(ChartTools.RenderOrFail());
        Assert.Equal(
            ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"],
            objects.Select(o => o["kind"]!.GetValue<string>()).Order(StringComparer.Ordinal));

        var deployment = Single(objects, "Deployment");
        Assert.Equal(2, deployment["spec"]!["replicas"]!.GetValue<long>());
        var pod = deployment["spec"]!["template"]!["spec"]!;
        var container = pod["containers"]![0]!;
        Assert.Equal("memorycluster-operator:0.1.0", container["image"]!.GetValue<string>());
        Assert.Equal(["memorycluster"], Strings(container["command"]));
        Assert.Equal(
            ["operator", "run", "--leader-elect", "--metrics-port=8080", "--health-port=8081",
             "--compute-image=memorycluster-compute:0.1.0", "--instance-image=memorycluster-instance:0.1.0"],
            Strings(container["args"]));
        Assert.Equal(["POD_NAME=metadata.name", "POD_NAMESPACE=metadata.namespace"],
            container["env"]!.AsArray().Select(e => $"{e!["name"]}={e["valueFrom"]!["fieldRef"]!["fieldPath"]}"));
        Assert.Equal("/healthz", container["livenessProbe"]!["httpGet"]!["path"]!.GetValue<string>());
        Assert.Equal("/readyz", container["readinessProbe"]!["httpGet"]!["path"]!.GetValue<string>());
        Assert.Equal([8080L, 8081L], container["ports"]!.AsArray().Select(p => p!["containerPort"]!.GetValue<long>()));

        var podSecurity = pod["securityContext"]!;
        Assert.Equal(26, podSecurity["runAsUser"]!.GetValue<long>());
        Assert.Equal(26, podSecurity["runAsGroup"]!.GetValue<long>());
        Assert.Equal(26, podSecurity["fsGroup"]!.GetValue<long>());
        Assert.Equal("RuntimeDefault", podSecurity["seccompProfile"]!["type"]!.GetValue<string>());
        var security = container["securityContext"]!;
        Assert.True(security["readOnlyRootFilesystem"]!.GetValue<bool>());
        Assert.False(security["allowPrivilegeEscalation"]!.GetValue<bool>());
        Assert.Equal(["ALL"], Strings(security["capabilities"]!["drop"]));

        var service = Single(objects, "Service");
        var port = Assert.Single(service["spec"]!["ports"]!.AsArray())!;
        Assert.Equal("metrics", port["name"]!.GetValue<string>());
        Assert.Equal(8080, port["port"]!.GetValue<long>());

        var lease = Single(objects, "Role")["rules"]![0]!;
        Assert.Equal(["coordination.k8s.io"], Strings(lease["apiGroups"]));
        Assert.Equal(["get", "create", "update", "patch"], Strings(lease["verbs"]));
        Assert.All(objects.Where(o => o["kind"]!.GetValue<string>() is not ("ClusterRole" or "ClusterRoleBinding")),
            o => Assert.Equal("memorycluster-system", o["metadata"]!["namespace"]!.GetValue<string>()));
    }

    [Fact]
    public void The_operator_may_apply_every_kind_it_renders_and_grant_what_the_instance_role_grants()
    {
        var rules = Single(Objects(ChartTools.RenderOrFail()), "ClusterRole")["rules"]!.AsArray();
        bool Allows(string group, string resource, string verb) => rules.Any(r =>
            Strings(r!["apiGroups"]).Contains(group) && Strings(r["resources"]).Contains(resource) && Strings(r["verbs"]).Contains(verb));

        var goldens = Directory.GetFiles(Repository.PathOf("tests/MemoryCluster.Cli.Tests/Operator/golden"), "*.yaml");
        foreach (var o in goldens.SelectMany(g => Objects(File.ReadAllText(g))))
        {
            var apiVersion = o["apiVersion"]!.GetValue<string>();
            var group = apiVersion.Contains('/', StringComparison.Ordinal) ? apiVersion[..apiVersion.IndexOf('/', StringComparison.Ordinal)] : "";
            // Every kind the planner renders has a regular plural: its lower-case name and an s.
            // The resource names of the kinds the planner renders: lower case plus "s", "y" becoming "ies" (NetworkPolicy).
            var kind = o["kind"]!.GetValue<string>().ToLowerInvariant();
            var resource = kind.EndsWith('y') ? kind[..^1] + "ies" : kind + "s";
            foreach (var verb in new[] { "get", "list", "watch", "create", "update", "patch", "delete" })
            {
                Assert.True(Allows(group, resource, verb), $"the ClusterRole does not allow {verb} on {resource} ({apiVersion}), which the operator applies");
            }

            // RBAC refuses to create a Role that grants more than its creator holds (escalation prevention).
            if (o["kind"]!.GetValue<string>() == "Role")
            {
                foreach (var rule in o["rules"]!.AsArray())
                {
                    foreach (var (g, r, v) in from g in Strings(rule!["apiGroups"]) from r in Strings(rule["resources"]) from v in Strings(rule["verbs"]) select (g, r, v))
                    {
                        Assert.True(Allows(g, r, v), $"the instance Role grants {v} on {r}, which the operator's ClusterRole does not hold");
                    }
                }
            }
        }

        Assert.True(Allows("memorycluster.io", "memoryclusters/status", "patch"));
        Assert.True(Allows("memorycluster.io", "memoryclusters", "patch"), "the operator removes a user's switchover request (annotation) once answered");
        Assert.True(Allows("events.k8s.io", "events", "create"));
        // The StatefulSet's updateStrategy is OnDelete: a rolling update or restart is the operator deleting one pod at a
        // time (WorkloadPlanner's DeletePod), as is a pod whose manager still runs as a member removed before.
        Assert.True(Allows("", "pods", "delete"), "the operator deletes pods to restart them (OnDelete updates)");
        Assert.False(Allows("", "pods", "create"), "the StatefulSet creates the pods, never the operator");
    }

    [Fact]
    public void The_rbac_sections_give_a_reason_for_every_rule()
    {
        var rendered = Objects(ChartTools.RenderOrFail());
        var resources = rendered.Where(o => o["kind"]!.GetValue<string>() is "ClusterRole" or "Role")
            .SelectMany(o => o["rules"]!.AsArray()).SelectMany(r => Strings(r!["resources"])).Distinct().ToList();
        foreach (var doc in new[] { ChartTools.ChartDir + "/README.md", "docs/operator.md" })
        {
            var text = File.ReadAllText(Repository.PathOf(doc));
            Assert.True(text.Contains("## RBAC", StringComparison.Ordinal), $"{doc} has no section \"RBAC\"");
            var section = text[text.IndexOf("## RBAC", StringComparison.Ordinal)..];
            section = section.IndexOf("\n## ", 1, StringComparison.Ordinal) is var end and > 0 ? section[..end] : section;
            Assert.All(resources, r => Assert.Contains($"`{r}`", section, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Every_object_carries_the_standard_labels()
    {
        foreach (var o in Objects(ChartTools.RenderOrFail()))
        {
            var labels = o["metadata"]!["labels"]!.AsObject();
            Assert.Equal("memorycluster-operator", labels["app.kubernetes.io/name"]!.GetValue<string>());
            Assert.Equal("mc", labels["app.kubernetes.io/instance"]!.GetValue<string>());
            Assert.Equal("0.1.0", labels["app.kubernetes.io/version"]!.GetValue<string>());
            Assert.Equal("Helm", labels["app.kubernetes.io/managed-by"]!.GetValue<string>());
            Assert.Equal("memorycluster-operator-0.1.0", labels["helm.sh/chart"]!.GetValue<string>());
        }
    }

    [Fact]
    public void A_watch_namespace_is_passed_on_and_turns_the_cluster_role_into_a_role_there()
    {
        var objects = Objects(ChartTools.RenderOrFail("-f", FullValues));
        Assert.DoesNotContain(objects, o => o["kind"]!.GetValue<string>().StartsWith("Cluster", StringComparison.Ordinal));
        var container = Single(objects, "Deployment")["spec"]!["template"]!["spec"]!["containers"]![0]!;
        Assert.Contains("--watch-namespace=databases", Strings(container["args"]));
        Assert.Contains("--compute-image=registry.example/memorycluster/compute:0.1.0-rc.2", Strings(container["args"]));
        Assert.Contains("--instance-image=registry.example/memorycluster/instance:0.1.0-rc.2", Strings(container["args"]));
        Assert.Equal("registry.example/memorycluster/operator:0.1.0-rc.1", container["image"]!.GetValue<string>());

        var roles = objects.Where(o => o["kind"]!.GetValue<string>() == "Role").ToList();
        Assert.Equal(["databases", "memorycluster-system"], roles.Select(r => r["metadata"]!["namespace"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        var binding = objects.Single(o => o["kind"]!.GetValue<string>() == "RoleBinding" && o["metadata"]!["namespace"]!.GetValue<string>() == "databases");
        var subject = Assert.Single(binding["subjects"]!.AsArray())!;
        Assert.Equal("memorycluster-operator-account", subject["name"]!.GetValue<string>());
        Assert.Equal("memorycluster-system", subject["namespace"]!.GetValue<string>());
    }

    [Fact]
    public void The_full_values_file_sets_every_value_of_values_yaml()
    {
        var defaults = Assert.Single(YamlJson.ToJson(File.ReadAllText(Repository.PathOf(ChartTools.ChartDir + "/values.yaml"))));
        var full = Assert.Single(YamlJson.ToJson(File.ReadAllText(FullValues)));
        var missing = LeafPaths(defaults).Where(p => !LeafPaths(full).Any(f => f == p || f.StartsWith(p + ".", StringComparison.Ordinal))).ToList();
        Assert.True(missing.Count == 0, $"chart-values-full.yaml does not set: {string.Join(", ", missing)}");
    }

    [Fact]
    public void The_readme_values_table_names_every_value_with_its_default()
    {
        var readme = File.ReadAllText(Repository.PathOf(ChartTools.ChartDir + "/README.md"));
        var defaults = Assert.Single(YamlJson.ToJson(File.ReadAllText(Repository.PathOf(ChartTools.ChartDir + "/values.yaml"))));
        foreach (var path in LeafPaths(defaults))
        {
            var row = new Regex($@"^\| `{Regex.Escape(path)}` \| `(?<default>[^`]*)` \|", RegexOptions.Multiline).Match(readme);
            Assert.True(row.Success, $"the values table of the chart's README.md has no row for `{path}`");
            var value = Lookup(defaults, path);
            var expected = value is JsonValue v && v.TryGetValue<string>(out var s) ? $"\"{s}\"" : value?.ToJsonString() ?? "null";
            Assert.Equal(expected, row.Groups["default"].Value);
        }
    }

    [Theory]
    [InlineData("replicas: 3\n", "Additional property replicas is not allowed")]
    [InlineData("replicaCount: two\n", "replicaCount: Invalid type")]
    [InlineData("image:\n  pullPolicy: Sometimes\n", "image.pullPolicy")]
    [InlineData("watchNamespace: Not_A_Namespace\n", "watchNamespace")]
    [InlineData("resources:\n  limits:\n    memory: lots\n", "resources.limits.memory")]
    public void Values_that_break_the_schema_are_refused_with_their_path(string values, string expected)
    {
        var (code, stdout, stderr) = RenderWith(values);
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains("values.schema.json", stderr, StringComparison.Ordinal);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void An_existing_service_account_must_be_named()
    {
        var (code, _, stderr) = RenderWith("serviceAccount:\n  create: false\n");
        Assert.Equal(1, code);
        Assert.Contains("serviceAccount.name must name an existing ServiceAccount", stderr, StringComparison.Ordinal);

        var objects = Objects(RenderWithOrFail("serviceAccount:\n  create: false\n  name: existing\n"));
        Assert.DoesNotContain(objects, o => o["kind"]!.GetValue<string>() == "ServiceAccount");
        Assert.Equal("existing", Single(objects, "Deployment")["spec"]!["template"]!["spec"]!["serviceAccountName"]!.GetValue<string>());
    }

    [Fact]
    public void Rbac_and_the_metrics_service_can_be_left_out()
    {
        var objects = Objects(RenderWithOrFail("rbac:\n  create: false\nmetrics:\n  service:\n    enabled: false\n"));
        Assert.Equal(["Deployment", "ServiceAccount"], objects.Select(o => o["kind"]!.GetValue<string>()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_notes_render_and_name_the_deployment()
    {
        var (code, notes, stderr) = ChartTools.Render("-notes");
        Assert.True(code == 0, stderr);
        Assert.Contains("deployment/mc-memorycluster-operator", notes, StringComparison.Ordinal);
        Assert.Contains("every namespace", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void The_chart_installs_the_generated_crd()
    {
        var crds = Directory.GetFiles(Repository.PathOf(ChartTools.ChartDir + "/crds"));
        Assert.Equal([Repository.PathOf(CrdFile.ChartCopyRelativePath)], crds);
    }

    private static (int Code, string Stdout, string Stderr) RenderWith(string values)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, values);
            return ChartTools.Render("-f", file);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string RenderWithOrFail(string values)
    {
        var (code, stdout, stderr) = RenderWith(values);
        Assert.True(code == 0, stderr);
        return stdout;
    }

    private static string[] ValuesArgs(string values) => values == "full" ? ["-f", FullValues] : [];

    internal static List<JsonObject> Objects(string yaml) => [.. YamlJson.ToJson(yaml).Select(n => n.AsObject())];

    private static JsonObject Single(List<JsonObject> objects, string kind) => Assert.Single(objects, o => o["kind"]!.GetValue<string>() == kind);

    private static string[] Strings(JsonNode? array) => [.. array!.AsArray().Select(n => n!.GetValue<string>())];

    private static JsonObject ChartYaml() => Assert.Single(YamlJson.ToJson(File.ReadAllText(Repository.PathOf(ChartTools.ChartDir + "/Chart.yaml")))).AsObject();

    /// <summary>Dotted paths of every value that is not a non-empty mapping (an empty map or list is a value).</summary>
    private static IEnumerable<string> LeafPaths(JsonNode node, string prefix = "")
    {
        if (node is JsonObject { Count: > 0 } map)
        {
            foreach (var (key, child) in map)
            {
                foreach (var path in LeafPaths(child!, prefix.Length == 0 ? key : prefix + "." + key))
                {
                    yield return path;
                }
            }
        }
        else
        {
            yield return prefix;
        }
    }

    private static JsonNode? Lookup(JsonNode node, string path) =>
        path.Split('.').Aggregate((JsonNode?)node, (n, key) => n is JsonObject o ? o[key] : null);
}
