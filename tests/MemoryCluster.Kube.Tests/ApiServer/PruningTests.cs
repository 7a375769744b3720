using System.Text.Json.Nodes;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>
/// Both sides of unknown fields: the double prunes what a CRD's structural schema does not declare (as the real
/// server does), and our typed client keeps what it does not model when it reads, changes and writes back.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PruningTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private Harness _h = null!;

    public async Task InitializeAsync() => _h = await Harness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Fields_the_MemoryCluster_schema_does_not_declare_are_pruned_on_create_patch_and_status_writes()
    {
        var created = await _h.Client.CreateAsync(DynamicTypes.MemoryCluster, JsonNode.Parse("""
            {"apiVersion":"memorycluster.io/v1alpha1","kind":"MemoryCluster",
             "metadata":{"name":"p","namespace":"default","notObjectMeta":"x","labels":{"kept":"yes"}},
             "spec":{"instances":3,"unknownTop":1,"postgres":{"bogus":true}}}
            """)!.AsObject(), None);
        Assert.Null(created["spec"]!["unknownTop"]);
        Assert.Null(created["spec"]!["postgres"]!["bogus"]);
        Assert.Null(created["metadata"]!["notObjectMeta"]);
        Assert.Equal("yes", (string?)created["metadata"]!["labels"]!["kept"]);
        Assert.Equal(3, (int)created["spec"]!["instances"]!);

        var patched = await _h.Client.PatchAsync(DynamicTypes.MemoryCluster, "default", "p",
            new MergePatch(JsonNode.Parse("""{"spec":{"instances":5,"later":"x"}}""")!), null, None);
        Assert.Null(patched["spec"]!["later"]);
        Assert.Equal(5, (int)patched["spec"]!["instances"]!);

        var status = await _h.Client.PatchAsync(DynamicTypes.MemoryCluster, "default", "p",
            new MergePatch(JsonNode.Parse("""{"status":{"phase":"Healthy","madeUp":1}}""")!), "status", None);
        Assert.Equal("Healthy", (string?)status["status"]!["phase"]);
        Assert.Null(status["status"]!["madeUp"]);

        var applied = await _h.Client.ApplyAsync(DynamicTypes.MemoryCluster, JsonNode.Parse("""
            {"metadata":{"name":"p","namespace":"default"},"spec":{"instances":5,"appliedUnknown":true}}
            """)!.AsObject(), "memorycluster-operator", force: true, null, None);
        Assert.Null(applied.Object["spec"]!["appliedUnknown"]);
        Assert.DoesNotContain("appliedUnknown", applied.Object["metadata"]!["managedFields"]!.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Under_x_kubernetes_preserve_unknown_fields_unknown_fields_stay_and_elsewhere_they_are_pruned()
    {
        await _h.Client.CreateAsync(DynamicTypes.CustomResourceDefinition, JsonNode.Parse("""
            {"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
             "metadata":{"name":"widgets.test.memorycluster.io"},
             "spec":{"group":"test.memorycluster.io","scope":"Namespaced",
               "names":{"kind":"Widget","plural":"widgets","singular":"widget","listKind":"WidgetList"},
               "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{
                 "spec":{"type":"object","properties":{
                   "size":{"type":"integer"},
                   "free":{"type":"object","x-kubernetes-preserve-unknown-fields":true,"properties":{
                     "typed":{"type":"object","properties":{"known":{"type":"string"}}}}},
                   "closed":{"type":"object"}}}}}}}]}}
            """)!.AsObject(), None);
        var widgets = DynamicTypes.Of("test.memorycluster.io", "v1", "Widget", "widgets");
        var created = await _h.Client.CreateAsync(widgets, JsonNode.Parse("""
            {"apiVersion":"test.memorycluster.io/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"},
             "spec":{"size":1,"dropped":true,"closed":{"anything":1},
               "free":{"anything":{"nested":[1,2]},"typed":{"known":"k","unknown":"u"}}}}
            """)!.AsObject(), None);
        var spec = created["spec"]!;
        Assert.Equal(1, (int)spec["size"]!);
        Assert.Null(spec["dropped"]);
        Assert.Equal("{}", spec["closed"]!.ToJsonString());
        Assert.Equal("""{"nested":[1,2]}""", spec["free"]!["anything"]!.ToJsonString());
        Assert.Equal("""{"known":"k"}""", spec["free"]!["typed"]!.ToJsonString());
    }

    [Fact]
    public async Task Our_typed_client_keeps_every_field_of_the_models_through_a_read_modify_write()
    {
        await _h.Client.CreateAsync(DynamicTypes.StatefulSet, JsonNode.Parse("""
            {"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":"default"},
             "spec":{"replicas":3,"serviceName":"db-hl","minReadySeconds":7,"revisionHistoryLimit":4,"ordinals":{"start":1},
               "persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Delete"},
               "selector":{"matchLabels":{"app":"db"}},
               "template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"postgres","image":"postgres:16"}]}}}}
            """)!.AsObject(), None);

        var typed = await _h.Client.GetAsync(ResourceTypes.StatefulSet, "default", "db", None);
        await _h.Client.ReplaceAsync(ResourceTypes.StatefulSet, typed with { Spec = typed.Spec! with { Replicas = 5 } }, None);

        var stored = await _h.Client.GetAsync(DynamicTypes.StatefulSet, "default", "db", None);
        var spec = stored["spec"]!;
        Assert.Equal(5, (int)spec["replicas"]!);
        Assert.Equal(7, (int)spec["minReadySeconds"]!);
        Assert.Equal(4, (int)spec["revisionHistoryLimit"]!);
        Assert.Equal(1, (int)spec["ordinals"]!["start"]!);
        Assert.Equal("Delete", (string?)spec["persistentVolumeClaimRetentionPolicy"]!["whenScaled"]);
        Assert.Equal("postgres:16", (string?)spec["template"]!["spec"]!["containers"]![0]!["image"]);
    }
}
