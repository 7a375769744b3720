using System.Text.Json.Nodes;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Cluster.Controllers;
using MemoryCluster.Kube.Resources;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

/// <summary>
/// The controllers against the API double over HTTP, as kube-controller-manager runs against a real server; the test
/// plays the node (it marks pods running and ready, as a kubelet would report them).
/// </summary>
public sealed class ControllerManagerTests : IAsyncLifetime
{
    private Harness _harness = null!;
    private CancellationTokenSource _stop = null!;
    private Task _run = Task.CompletedTask;

    private KubeApiClient Client => _harness.Client;

    public async Task InitializeAsync()
    {
        _harness = await Harness.StartAsync(installCrd: false);
        _stop = new CancellationTokenSource();
        _run = new ControllerManager(_harness.Client).RunAsync(_stop.Token);
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _stop.Dispose();
        await _harness.DisposeAsync();
    }

    [Fact]
    public async Task A_statefulset_makes_its_pods_and_claims_and_a_deleted_pod_comes_back_on_the_same_claim()
    {
        var set = StatefulSet(3, "Parallel");
        set.Metadata = new V1ObjectMeta { Name = "demo", NamespaceProperty = "default" };
        await Client.CreateAsync(ResourceTypes.StatefulSet, set, CancellationToken.None);

        var pods = await Objects.UntilAsync(() => PodsAsync("app=db"), p => p.Count == 3, "3 pods");
        Assert.Equal(["demo-0", "demo-1", "demo-2"], pods.Select(p => p.Metadata.Name).Order(StringComparer.Ordinal));
        var claims = await Objects.UntilAsync(ClaimsAsync, c => c.Count == 3, "3 claims");
        Assert.Equal("data-demo-1", pods.Single(p => p.Metadata.Name == "demo-1").Spec.Volumes.Single(v => v.Name == "data").PersistentVolumeClaim.ClaimName);

        for (var i = 0; i < 3; i++)
        {
            await MarkReadyAsync($"demo-{i}", $"127.0.1.{i + 1}");
        }

        await Objects.UntilAsync(() => Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None),
            s => s.Status?.ReadyReplicas == 3 && s.Status.ObservedGeneration == s.Metadata.Generation, "status: 3 ready");

        var old = pods.Single(p => p.Metadata.Name == "demo-1");
        await Client.DeleteAsync(ResourceTypes.Pod, "default", "demo-1", null, CancellationToken.None);
        var again = await Objects.UntilAsync(() => PodsAsync("app=db"), p => p.Any(x => x.Metadata.Name == "demo-1" && x.Metadata.Uid != old.Metadata.Uid), "demo-1 made again");
        Assert.Equal(3, again.Count);
        Assert.Equal(claims.Select(c => c.Metadata.Uid).Order(StringComparer.Ordinal), (await ClaimsAsync()).Select(c => c.Metadata.Uid).Order(StringComparer.Ordinal));

        // Scale to 1: demo-1 and demo-2 go; their claims stay (whenScaled: Retain).
        await Client.PatchAsync(ResourceTypes.StatefulSet, "default", "demo", new MergePatch(JsonNode.Parse("""{"spec":{"replicas":1}}""")!), null, CancellationToken.None);
        await Objects.UntilAsync(() => PodsAsync("app=db"), p => p.Count == 1 && p[0].Metadata.Name == "demo-0", "only demo-0");
        Assert.Equal(3, (await ClaimsAsync()).Count);

        // Deleting the set removes its pods (owner references) and keeps the claims (whenDeleted: Retain).
        await Client.DeleteAsync(ResourceTypes.StatefulSet, "default", "demo", null, CancellationToken.None);
        await Objects.UntilAsync(() => PodsAsync("app=db"), p => p.Count == 0, "no pods");
        Assert.Equal(3, (await ClaimsAsync()).Count);
    }

    [Fact]
    public async Task OrderedReady_makes_the_next_pod_only_once_the_one_before_is_ready()
    {
        var set = StatefulSet(2);
        set.Metadata = new V1ObjectMeta { Name = "demo", NamespaceProperty = "default" };
        await Client.CreateAsync(ResourceTypes.StatefulSet, set, CancellationToken.None);

        await Objects.UntilAsync(() => PodsAsync("app=db"), p => p.Count == 1, "demo-0");

        // demo-0 is not ready: a later look still shows one pod, and the set's status says so.
        await Objects.UntilAsync(() => Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None), s => s.Status?.Replicas == 1, "status: 1 replica");
        Assert.Single(await PodsAsync("app=db"));

        await MarkReadyAsync("demo-0", "127.0.1.1");
        var pods = await Objects.UntilAsync(() => PodsAsync("app=db"), p => p.Count == 2, "demo-1 after demo-0 is ready");
        Assert.Contains(pods, p => p.Metadata.Name == "demo-1");
    }

    [Fact]
    public async Task A_deployment_rolls_to_a_new_template_through_a_new_replicaset()
    {
        var deployment = new V1Deployment
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" },
            Spec = new V1DeploymentSpec { Replicas = 1, Selector = new V1LabelSelector { MatchLabels = Labels("app=web") }, Template = Template("web:1", "web") },
        };
        await Client.CreateAsync(ResourceTypes.Deployment, deployment, CancellationToken.None);
        var first = (await Objects.UntilAsync(() => PodsAsync("app=web"), p => p.Count == 1, "the first pod"))[0];
        Assert.StartsWith("web-", first.Metadata.Name, StringComparison.Ordinal);
        await MarkReadyAsync(first.Metadata.Name, "127.0.2.1");
        await Objects.UntilAsync(() => Client.GetAsync(ResourceTypes.Deployment, "default", "web", CancellationToken.None),
            d => d.Status?.AvailableReplicas == 1 && d.Status.Conditions?.Any(c => c is { Type: "Available", Status: "True" }) == true, "available");

        await Client.PatchAsync(ResourceTypes.Deployment, "default", "web",
            new MergePatch(JsonNode.Parse("""{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"web:2"}]}}}}""")!), null, CancellationToken.None);

        // Surge first: the new pod runs beside the old one, which stays until the new one is ready.
        var both = await Objects.UntilAsync(() => PodsAsync("app=web"), p => p.Count == 2, "the new pod beside the old");
        var second = both.Single(p => p.Metadata.Uid != first.Metadata.Uid);
        Assert.Equal("web:2", second.Spec.Containers[0].Image);
        Assert.Equal(2, (await PodsAsync("app=web")).Count);

        await MarkReadyAsync(second.Metadata.Name, "127.0.2.2");
        await Objects.UntilAsync(() => PodsAsync("app=web"), p => p.Count == 1 && p[0].Metadata.Uid == second.Metadata.Uid, "only the new pod");
        var sets = await Client.ListAsync(ClusterTypes.ReplicaSet, "default", null, CancellationToken.None);
        Assert.Equal([0, 1], sets.Items.Select(s => s.Spec.Replicas ?? 0).Order());
    }

    [Fact]
    public async Task A_services_endpoints_follow_pod_readiness_and_labels()
    {
        var service = new V1Service
        {
            Metadata = new V1ObjectMeta { Name = "demo-rw", NamespaceProperty = "default" },
            Spec = new V1ServiceSpec
            {
                Selector = Labels("app=db", "role=primary"),
                Ports = [new V1ServicePort { Name = "postgres", Port = 5432, TargetPort = "postgres", Protocol = "TCP" }],
            },
        };
        await Client.CreateAsync(ResourceTypes.Service, service, CancellationToken.None);
        await Objects.UntilAsync(SliceAsync, s => s is { Endpoints: null or { Count: 0 } }, "an empty slice");

        foreach (var (name, role) in new[] { ("a", "primary"), ("b", "replica") })
        {
            await Client.CreateAsync(ResourceTypes.Pod, new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Labels = Labels("app=db", "role=" + role) },
                Spec = Workloads.Copy(Template().Spec),
            }, CancellationToken.None);
        }

        await MarkReadyAsync("a", "127.0.3.1", ready: false);
        await MarkReadyAsync("b", "127.0.3.2");
        await Objects.UntilAsync(SliceAsync, s => Describe(s) == "127.0.3.1:5432 not-ready", "a, not ready");
        await MarkReadyAsync("a", "127.0.3.1");
        await Objects.UntilAsync(SliceAsync, s => Describe(s) == "127.0.3.1:5432 ready", "a, ready");

        // The primary moves, as the instance managers relabel their pods.
        await Client.PatchAsync(ResourceTypes.Pod, "default", "a", new MergePatch(JsonNode.Parse("""{"metadata":{"labels":{"role":"replica"}}}""")!), null, CancellationToken.None);
        await Client.PatchAsync(ResourceTypes.Pod, "default", "b", new MergePatch(JsonNode.Parse("""{"metadata":{"labels":{"role":"primary"}}}""")!), null, CancellationToken.None);
        await Objects.UntilAsync(SliceAsync, s => Describe(s) == "127.0.3.2:5432 ready", "b, ready");
        Assert.Single((await Client.ListAsync(ClusterTypes.EndpointSlice, "default", null, CancellationToken.None)).Items);
    }

    private static string Describe(V1EndpointSlice? slice) =>
        slice is null ? "none" : string.Join(";", (slice.Endpoints ?? []).Select(e => $"{e.Addresses[0]}:{slice.Ports?.FirstOrDefault()?.Port} {(e.Conditions.Ready == true ? "ready" : "not-ready")}"));

    private async Task<V1EndpointSlice?> SliceAsync() =>
        (await Client.ListAsync(ClusterTypes.EndpointSlice, "default", new ListOptions { LabelSelector = EndpointSlicePlanner.ServiceNameLabel + "=demo-rw" }, CancellationToken.None)).Items.SingleOrDefault();

    private async Task<List<V1Pod>> PodsAsync(string selector) =>
        [.. (await Client.ListAsync(ResourceTypes.Pod, "default", new ListOptions { LabelSelector = selector }, CancellationToken.None)).Items];

    private async Task<List<V1PersistentVolumeClaim>> ClaimsAsync() =>
        [.. (await Client.ListAsync(ResourceTypes.PersistentVolumeClaim, "default", null, CancellationToken.None)).Items];

    /// <summary>What a node reports for a pod it runs: Running, its IP, and Ready (or not).</summary>
    private Task MarkReadyAsync(string pod, string ip, bool ready = true) =>
        Client.PatchAsync(ResourceTypes.Pod, "default", pod, new MergePatch(new JsonObject
        {
            ["status"] = new JsonObject
            {
                ["phase"] = "Running",
                ["podIP"] = ip,
                ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = ready ? "True" : "False", ["lastTransitionTime"] = "2026-12-06T12:00:00Z" }),
            },
        }), "status", CancellationToken.None);
}
