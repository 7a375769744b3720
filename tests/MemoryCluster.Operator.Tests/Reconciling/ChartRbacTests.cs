using System.Net.Http.Json;
using System.Text.Json.Nodes;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tests.Planning;

namespace MemoryCluster.Operator.Tests.Reconciling;

/// <summary>
/// The operator holding only the rights the Helm chart grants its ServiceAccount, enforced by the double's RBAC: a
/// request outside them gets 403, as on a real cluster, so a right the chart forgot fails here.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ChartRbacTests
{
    private const string Token = "operator-token-0123456789";
    private const string ChartTemplates = "charts/memorycluster-operator/templates";
    private static readonly RbacUser Operator = RbacUser.ServiceAccount("memorycluster-system", "mc-memorycluster-operator");

    [Fact]
    public async Task The_operator_with_the_charts_rights_makes_a_cluster_and_is_refused_anything_more()
    {
        await using var harness = await OperatorHarness.StartAsync(new FakeApiServerOptions { Users = new Dictionary<string, RbacUser> { [Token] = Operator } });
        var serviceAccount = RbacObjects.Subject("ServiceAccount", "mc-memorycluster-operator", "memorycluster-system");
        await GrantAsync(harness, RbacObjects.Role("mc-memorycluster-operator", null, OperatorRules()));
        await GrantAsync(harness, RbacObjects.Binding("mc-memorycluster-operator", null, "ClusterRole", "mc-memorycluster-operator", serviceAccount));
        // The chart puts the leader-election Role in the release namespace; the harness's operators keep their Lease in "default".
        await GrantAsync(harness, RbacObjects.Role("mc-memorycluster-operator-leader-election", "default", LeaderElectionRules()));
        await GrantAsync(harness, RbacObjects.Binding("mc-memorycluster-operator-leader-election", "default", "Role", "mc-memorycluster-operator-leader-election", serviceAccount));

        harness.StartOperator(leaderElect: true, token: Token);
        var created = await harness.CreateAsync(OperatorHarness.Cluster(compute: 1));
        foreach (var observation in StatusPlannerTests.Healthy(3))
        {
            harness.Statuses[observation.Pod] = observation.Status!;
        }

        // Ready would need the compute Deployment's pods, which no controller runs here; the instances' side is done.
        try
        {
            await harness.WaitForAsync("demo", c => OperatorHarness.ConditionOf(c, ConditionTypes.PrimaryAvailable) is { Status: ConditionStatus.True }
                && OperatorHarness.ConditionOf(c, ConditionTypes.QuorumHealthy) is { Status: ConditionStatus.True }, "a primary and a healthy quorum");
        }
        catch (Xunit.Sdk.FailException e) when (harness.Server.Forbidden403s.Count > 0)
        {
            Assert.Fail($"{e.Message}\nthe double refused the operator: {string.Join("\n", harness.Server.Forbidden403s.Distinct())}");
        }
        foreach (var obj in ObjectPlanner.Render(created, OperatorSettings.Default).Objects)
        {
            Assert.True(await harness.ExistsAsync(obj), $"{obj.Kind}/{obj.Metadata.Name} was not made");
        }

        Assert.Empty(harness.Server.Forbidden403s);

        // The same token outside the chart's rights: the StatefulSet makes pods, never the operator.
        var asOperator = harness.ClientWithToken(Token);
        var pod = new V1Pod { Metadata = new V1ObjectMeta { Name = "intruder", NamespaceProperty = "default" }, Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Image = "i" }] } };
        var refused = await Assert.ThrowsAnyAsync<KubeApiException>(() => asOperator.CreateAsync(ResourceTypes.Pod, pod, CancellationToken.None));
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(
            "pods is forbidden: User \"system:serviceaccount:memorycluster-system:mc-memorycluster-operator\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"",
            Assert.Single(harness.Server.Forbidden403s));
    }

    // The rules are literal YAML in the chart (no template in them); reading them here keeps this test on what ships.
    private static JsonObject[] OperatorRules() => Rules(
        File.ReadAllText(Path.Combine(OperatorHarness.RepoRoot(), ChartTemplates, "_helpers.tpl")),
        "{{- define \"memorycluster-operator.rules\" -}}", "{{- end }}");

    private static JsonObject[] LeaderElectionRules() => Rules(
        File.ReadAllText(Path.Combine(OperatorHarness.RepoRoot(), ChartTemplates, "leader-election-rbac.yaml")), "rules:\n", "---");

    private static JsonObject[] Rules(string text, string start, string end)
    {
        var from = text.IndexOf(start, StringComparison.Ordinal);
        Assert.True(from >= 0, $"the chart has no '{start.Trim()}'");
        from += start.Length;
        var block = text[from..text.IndexOf(end, from, StringComparison.Ordinal)];
        Assert.DoesNotContain("{{", block, StringComparison.Ordinal);
        var document = YamlDocuments.FirstAsJson("rules:\n" + string.Join('\n', block.Split('\n').Where(l => l.Trim().Length > 0).Select(Indent)))!;
        JsonObject[] rules = [.. document["rules"]!.AsArray().OfType<JsonObject>()];
        Assert.NotEmpty(rules);
        return rules;
    }

    // A rule line ("- apiGroups: ...") starts an item; its other keys are indented under it.
    private static string Indent(string line) => line.TrimStart().StartsWith('-') ? "  " + line.TrimStart() : "    " + line.TrimStart();

    // As the installing admin (the harness's client carries no token).
    private static async Task GrantAsync(OperatorHarness harness, JsonObject obj)
    {
        using var http = new HttpClient { BaseAddress = harness.Server.Url };
        var ns = (string?)obj["metadata"]!["namespace"];
        var plural = RbacObjects.Plural(obj);
        var path = ns is null ? $"apis/rbac.authorization.k8s.io/v1/{plural}" : $"apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{plural}";
        using var response = await http.PostAsJsonAsync(path, obj);
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }
}
