using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>
/// A second client keeps the double honest, beside kubectl: the official <see cref="Kubernetes"/> client of the
/// KubernetesClient package, over HTTP, with its own serializer and its own idea of every verb.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OfficialClientTests : IAsyncLifetime
{
    private const string Ns = "default";
    private Harness _h = null!;
    private Kubernetes _k8s = null!;

    public async Task InitializeAsync()
    {
        _h = await Harness.StartAsync();
        _k8s = new Kubernetes(new KubernetesClientConfiguration { Host = _h.Server.Url.ToString() });
    }

    public async Task DisposeAsync()
    {
        _k8s.Dispose();
        await _h.DisposeAsync();
    }

    private static V1ConfigMap ConfigMap(string name, params (string Key, string Value)[] data) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns, Labels = new Dictionary<string, string> { ["app"] = "memory" } },
        Data = data.ToDictionary(d => d.Key, d => d.Value),
    };

    private static async Task<HttpStatusCode> StatusOfAsync(Func<Task> call) =>
        (await Assert.ThrowsAsync<HttpOperationException>(call)).Response.StatusCode;

    [Fact]
    public async Task ConfigMaps_are_created_read_listed_replaced_and_deleted()
    {
        var created = await _k8s.CoreV1.CreateNamespacedConfigMapAsync(ConfigMap("c", ("k", "v")), Ns);
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal(HttpStatusCode.Conflict, await StatusOfAsync(() => _k8s.CoreV1.CreateNamespacedConfigMapAsync(ConfigMap("c"), Ns)));

        var read = await _k8s.CoreV1.ReadNamespacedConfigMapAsync("c", Ns);
        Assert.Equal(created.Metadata.ResourceVersion, read.Metadata.ResourceVersion);
        Assert.Equal("v", read.Data["k"]);

        await _k8s.CoreV1.CreateNamespacedConfigMapAsync(ConfigMap("other") with { Metadata = new V1ObjectMeta { Name = "other" } }, Ns);
        var list = await _k8s.CoreV1.ListNamespacedConfigMapAsync(Ns, labelSelector: "app=memory");
        Assert.Equal(["c"], list.Items.Select(c => c.Metadata.Name));
        Assert.False(string.IsNullOrEmpty(list.Metadata.ResourceVersion));

        var replaced = await _k8s.CoreV1.ReplaceNamespacedConfigMapAsync(read with { Data = new Dictionary<string, string> { ["k"] = "v2" } }, "c", Ns);
        Assert.Equal("v2", replaced.Data["k"]);
        Assert.NotEqual(read.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);

        // The read copy's resourceVersion is stale now.
        Assert.Equal(HttpStatusCode.Conflict,
            await StatusOfAsync(() => _k8s.CoreV1.ReplaceNamespacedConfigMapAsync(read with { Data = new Dictionary<string, string> { ["k"] = "lost" } }, "c", Ns)));

        await _k8s.CoreV1.DeleteNamespacedConfigMapAsync("c", Ns);
        Assert.Equal(HttpStatusCode.NotFound, await StatusOfAsync(() => _k8s.CoreV1.ReadNamespacedConfigMapAsync("c", Ns)));
    }

    [Fact]
    public async Task A_merge_patch_merges_maps_and_null_deletes_a_key()
    {
        await _k8s.CoreV1.CreateNamespacedConfigMapAsync(ConfigMap("c", ("k1", "v1"), ("k2", "v2")), Ns);
        var patch = new V1Patch("""{"metadata":{"labels":{"tier":"db"}},"data":{"k1":null,"k3":"v3"}}""", V1Patch.PatchType.MergePatch);
        var patched = await _k8s.CoreV1.PatchNamespacedConfigMapAsync(patch, "c", Ns);
        Assert.Equal(new Dictionary<string, string> { ["k2"] = "v2", ["k3"] = "v3" }, patched.Data);
        Assert.Equal(new Dictionary<string, string> { ["app"] = "memory", ["tier"] = "db" }, patched.Metadata.Labels);

        // Our client reads what the official one wrote.
        var ours = await _h.Client.GetAsync(ResourceTypes.ConfigMap, Ns, "c", CancellationToken.None);
        Assert.Equal(patched.Metadata.ResourceVersion, ours.Metadata.ResourceVersion);
        Assert.Equal(patched.Data, ours.Data);
    }

    [Fact]
    public async Task Server_side_apply_creates_owns_fields_reports_conflicts_and_removes_what_is_no_longer_applied()
    {
        var first = await _k8s.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch(ConfigMap("c", ("k1", "v1"), ("k2", "v2")), V1Patch.PatchType.ApplyPatch), "c", Ns, fieldManager: "conformance", force: true);
        Assert.Equal(new Dictionary<string, string> { ["k1"] = "v1", ["k2"] = "v2" }, first.Data);
        var entry = Assert.Single(first.Metadata.ManagedFields, m => m.Manager == "conformance");
        Assert.Equal("Apply", entry.Operation);

        // Another manager applying a different value of k1 conflicts, unless it forces.
        Assert.Equal(HttpStatusCode.Conflict, await StatusOfAsync(() => _k8s.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch(ConfigMap("c", ("k1", "theirs")), V1Patch.PatchType.ApplyPatch), "c", Ns, fieldManager: "intruder", force: false)));

        // The first manager stops applying k2: the server removes it, and keeps a key another manager set.
        await _k8s.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("""{"data":{"other":"x"}}""", V1Patch.PatchType.MergePatch), "c", Ns);
        var second = await _k8s.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch(ConfigMap("c", ("k1", "v1b")), V1Patch.PatchType.ApplyPatch), "c", Ns, fieldManager: "conformance", force: true);
        Assert.Equal(new Dictionary<string, string> { ["k1"] = "v1b", ["other"] = "x" }, second.Data);
    }

    [Fact]
    public async Task The_status_subresource_of_a_MemoryCluster_changes_only_the_status()
    {
        var body = JsonNode.Parse($$$"""
            {"apiVersion":"{{{ApiGroup.ApiVersion}}}","kind":"{{{ApiGroup.Kind}}}","metadata":{"name":"mc","namespace":"{{{Ns}}}"},"spec":{"instances":3}}
            """)!;
        await _k8s.CustomObjects.CreateNamespacedCustomObjectAsync(body, ApiGroup.Group, ApiGroup.Version, Ns, ApiGroup.Plural);
        var created = await _h.Client.GetAsync(ResourceTypes.MemoryCluster, Ns, "mc", CancellationToken.None);

        var withStatus = JsonNode.Parse($$$"""
            {"apiVersion":"{{{ApiGroup.ApiVersion}}}","kind":"{{{ApiGroup.Kind}}}",
             "metadata":{"name":"mc","namespace":"{{{Ns}}}","resourceVersion":"{{{created.Metadata.ResourceVersion}}}"},
             "spec":{"instances":5},"status":{"phase":"{{{Phases.Healthy}}}","observedGeneration":1}}
            """)!;
        await _k8s.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync(withStatus, ApiGroup.Group, ApiGroup.Version, Ns, ApiGroup.Plural, "mc");

        var after = await _h.Client.GetAsync(ResourceTypes.MemoryCluster, Ns, "mc", CancellationToken.None);
        Assert.Equal(Phases.Healthy, after.Status!.Phase);
        Assert.Equal(1, after.Status.ObservedGeneration);
        Assert.Equal(3, after.Spec.Instances);
        Assert.Equal(1, after.Metadata.Generation);

        // A merge patch of the status through the official client too.
        await _k8s.CustomObjects.PatchNamespacedCustomObjectStatusAsync(
            new V1Patch("""{"status":{"phase":"Degraded"}}""", V1Patch.PatchType.MergePatch), ApiGroup.Group, ApiGroup.Version, Ns, ApiGroup.Plural, "mc");
        Assert.Equal("Degraded", (await _h.Client.GetAsync(ResourceTypes.MemoryCluster, Ns, "mc", CancellationToken.None)).Status!.Phase);
    }

    [Fact]
    public async Task A_watch_sees_ADDED_MODIFIED_and_DELETED_in_order()
    {
        var list = await _k8s.CoreV1.ListNamespacedConfigMapAsync(Ns);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<(WatchEventType Type, string? Name, string? Value)>();
        var reading = Task.Run(async () =>
        {
            var events = _k8s.CoreV1.WatchListNamespacedConfigMapAsync(Ns, resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cts.Token);
            await foreach (var (type, item) in events)
            {
                lock (seen)
                {
                    seen.Add((type, item.Metadata.Name, item.Data is { } data && data.TryGetValue("k", out var k) ? k : null));
                }

                if (type == WatchEventType.Deleted)
                {
                    return;
                }
            }
        }, cts.Token);
        await Eventually.TrueAsync(() => _h.Server.OpenWatches == 1, "the official client's watch to open");

        await _h.Client.CreateAsync(ResourceTypes.ConfigMap, ConfigMap("w", ("k", "1")), CancellationToken.None);
        await _k8s.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("""{"data":{"k":"2"}}""", V1Patch.PatchType.MergePatch), "w", Ns);
        await _k8s.CoreV1.DeleteNamespacedConfigMapAsync("w", Ns);
        await reading.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal([(WatchEventType.Added, "w", "1"), (WatchEventType.Modified, "w", "2"), (WatchEventType.Deleted, "w", "2")], seen);
    }

    [Fact]
    public async Task A_Lease_is_created_and_replaced_and_a_stale_replace_is_a_conflict()
    {
        var at = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(1234560);
        var created = await _k8s.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = "memorycluster-operator", NamespaceProperty = Ns },
            Spec = new V1LeaseSpec { HolderIdentity = "a", LeaseDurationSeconds = 15, AcquireTime = at, RenewTime = at, LeaseTransitions = 0 },
        }, Ns);
        Assert.Equal(at, created.Spec.RenewTime);

        var renewed = await _k8s.CoordinationV1.ReplaceNamespacedLeaseAsync(
            created with { Spec = created.Spec with { HolderIdentity = "b", RenewTime = at.AddSeconds(2), LeaseTransitions = 1 } }, "memorycluster-operator", Ns);
        Assert.Equal("b", renewed.Spec.HolderIdentity);
        Assert.Equal(HttpStatusCode.Conflict, await StatusOfAsync(() => _k8s.CoordinationV1.ReplaceNamespacedLeaseAsync(
            created with { Spec = created.Spec with { HolderIdentity = "c" } }, "memorycluster-operator", Ns)));

        // Our client reads the same record, to the microsecond.
        var ours = await _h.Client.GetAsync(ResourceTypes.Lease, Ns, "memorycluster-operator", CancellationToken.None);
        Assert.Equal(renewed.Metadata.ResourceVersion, ours.Metadata.ResourceVersion);
        Assert.Equal(renewed.Spec, ours.Spec);
        Assert.Equal(at.AddSeconds(2), ours.Spec.RenewTime);
    }
}
