using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.Client;

[Trait("Category", "Integration")]
public sealed class ClientVerbTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private Harness _h = null!;

    private IKubeApiClient Client => _h.Client;

    public async Task InitializeAsync() => _h = await Harness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Create_sets_uid_generation_and_resourceVersion_and_get_reads_it_back()
    {
        var created = await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("a"), None);
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.Equal(1, created.Metadata.Generation);
        Assert.NotNull(created.Metadata.CreationTimestamp);
        var read = await Client.GetAsync(ResourceTypes.MemoryCluster, "default", "a", None);
        Assert.Equal(created.Metadata.ResourceVersion, read.Metadata.ResourceVersion);
        Assert.Equal(3, read.Spec.Instances);
    }

    [Fact]
    public async Task Errors_become_typed_exceptions()
    {
        await Assert.ThrowsAsync<NotFoundException>(() => Client.GetAsync(ResourceTypes.MemoryCluster, "default", "missing", None));
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        await Assert.ThrowsAsync<AlreadyExistsException>(() => Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None));
        var invalid = await Assert.ThrowsAsync<InvalidException>(() => Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("Not_Valid"), None));
        Assert.Contains(invalid.Causes, c => c.Field == "metadata.name");
        await Assert.ThrowsAsync<NotFoundException>(() => Client.PatchAsync(ResourceTypes.MemoryCluster, "default", "x",
            new MergePatch(new JsonObject()), null, None));
    }

    [Fact]
    public async Task Schema_violations_are_Invalid_with_the_field_in_the_causes()
    {
        await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("a"), None);
        var e = await Assert.ThrowsAsync<InvalidException>(() => Client.PatchAsync(ResourceTypes.MemoryCluster, "default", "a",
            new MergePatch(JsonNode.Parse("""{"spec":{"replication":{"mode":"eventually"}}}""")!), null, None));
        Assert.Contains(e.Causes, c => c.Field == "spec.replication.mode");
    }

    [Fact]
    public async Task Replace_with_a_stale_resourceVersion_is_a_Conflict()
    {
        var created = await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("a"), None);
        await Client.ReplaceAsync(ResourceTypes.MemoryCluster, created with { Spec = created.Spec with { Instances = 5 } }, None);
        var e = await Assert.ThrowsAsync<ConflictException>(() =>
            Client.ReplaceAsync(ResourceTypes.MemoryCluster, created with { Spec = created.Spec with { Instances = 3 } }, None));
        Assert.Equal("Conflict", e.Reason);
        Assert.Equal(5, (await Client.GetAsync(ResourceTypes.MemoryCluster, "default", "a", None)).Spec.Instances);
    }

    [Fact]
    public async Task Generation_grows_on_spec_changes_only_and_status_goes_through_the_subresource()
    {
        var created = await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("a") with { Status = new MemoryClusterStatus { Phase = "Healthy" } }, None);
        Assert.Null(created.Status);

        var labelled = await Client.ReplaceAsync(ResourceTypes.MemoryCluster,
            created with { Metadata = created.Metadata with { Labels = new Dictionary<string, string> { ["x"] = "y" } } }, None);
        Assert.Equal(1, labelled.Metadata.Generation);
        Assert.NotEqual(created.Metadata.ResourceVersion, labelled.Metadata.ResourceVersion);

        var withStatus = await Client.ReplaceStatusAsync(ResourceTypes.MemoryCluster,
            labelled with { Spec = labelled.Spec with { Instances = 5 }, Status = new MemoryClusterStatus { Phase = "Healthy", ObservedGeneration = 1 } }, None);
        Assert.Equal("Healthy", withStatus.Status!.Phase);
        Assert.Equal(3, withStatus.Spec.Instances);
        Assert.Equal(1, withStatus.Metadata.Generation);

        var specChange = await Client.ReplaceAsync(ResourceTypes.MemoryCluster,
            withStatus with { Spec = withStatus.Spec with { Instances = 5 }, Status = new MemoryClusterStatus { Phase = "Ignored" } }, None);
        Assert.Equal(2, specChange.Metadata.Generation);
        Assert.Equal("Healthy", specChange.Status!.Phase);
    }

    [Fact]
    public async Task A_write_that_changes_nothing_keeps_the_resourceVersion()
    {
        var created = await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        var same = await Client.ReplaceAsync(ResourceTypes.ConfigMap, created, None);
        Assert.Equal(created.Metadata.ResourceVersion, same.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Merge_patch_replaces_arrays_and_null_deletes()
    {
        await Client.CreateAsync(ResourceTypes.ConfigMap, new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = "c", NamespaceProperty = "default", Finalizers = ["a/x", "b/y"] },
            Data = new Dictionary<string, string> { ["k1"] = "v1", ["k2"] = "v2" },
        }, None);
        var patched = await Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c",
            new MergePatch(JsonNode.Parse("""{"metadata":{"finalizers":["b/y"]},"data":{"k1":null,"k3":"v3"}}""")!), null, None);
        Assert.Equal(["b/y"], patched.Metadata.Finalizers);
        Assert.Equal(new Dictionary<string, string> { ["k2"] = "v2", ["k3"] = "v3" }, patched.Data);
    }

    [Fact]
    public async Task Json_patch_with_a_failing_test_changes_nothing()
    {
        var finalized = Harness.ConfigMap("c");
        finalized.Metadata.Finalizers = ["a/x", "memorycluster.io/cleanup"];
        await Client.CreateAsync(ResourceTypes.ConfigMap, finalized, None);
        var removeOurs = new JsonPatch([JsonPatchOperation.Test("/metadata/finalizers/1", "memorycluster.io/cleanup"), JsonPatchOperation.Remove("/metadata/finalizers/1")]);
        var patched = await Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c", removeOurs, null, None);
        Assert.Equal(["a/x"], patched.Metadata.Finalizers);
        await Assert.ThrowsAsync<InvalidException>(() => Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c", removeOurs, null, None));
        Assert.Equal(["a/x"], (await Client.GetAsync(ResourceTypes.ConfigMap, "default", "c", None)).Metadata.Finalizers);
    }

    [Fact]
    public async Task Server_side_apply_creates_with_201_updates_with_200_and_removes_fields_no_longer_sent()
    {
        var first = await Client.ApplyAsync(ResourceTypes.ConfigMap, new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = "c", NamespaceProperty = "default", Labels = new Dictionary<string, string> { ["a"] = "1" } },
            Data = new Dictionary<string, string> { ["k1"] = "v1", ["k2"] = "v2" },
        }, "memorycluster-operator", force: true, null, None);
        Assert.True(first.Created);

        // Another manager adds a key of its own.
        await Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c", new MergePatch(JsonNode.Parse("""{"data":{"other":"x"}}""")!), null, None);

        var second = await Client.ApplyAsync(ResourceTypes.ConfigMap, new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = "c", NamespaceProperty = "default" },
            Data = new Dictionary<string, string> { ["k1"] = "v1b" },
        }, "memorycluster-operator", force: true, null, None);
        Assert.False(second.Created);
        Assert.Equal(new Dictionary<string, string> { ["k1"] = "v1b", ["other"] = "x" }, second.Object.Data);
        Assert.Null(second.Object.Metadata.Labels);
        Assert.Contains(second.Object.Metadata.ManagedFields, m => m.Manager == "memorycluster-operator" && m.Operation == "Apply");
    }

    [Fact]
    public async Task Server_side_apply_reports_conflicts_unless_forced()
    {
        await Client.ApplyAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), "first", force: false, null, None);
        var clash = Harness.ConfigMap("c");
        clash.Data["key"] = "mine";
        var e = await Assert.ThrowsAsync<ConflictException>(() => Client.ApplyAsync(ResourceTypes.ConfigMap, clash, "second", force: false, null, None));
        Assert.Contains("first", e.Message + string.Join(",", e.Status.Details?.Causes?.Select(c => c.Message) ?? []));
        var forced = await Client.ApplyAsync(ResourceTypes.ConfigMap, clash, "second", force: true, null, None);
        Assert.Equal("mine", forced.Object.Data!["key"]);
    }

    [Fact]
    public async Task Server_side_apply_to_the_status_subresource_changes_only_the_status()
    {
        var created = await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("a"), None);
        var applied = await Client.ApplyAsync(ResourceTypes.MemoryCluster, created with
        {
            Spec = created.Spec with { Instances = 5 },
            Status = new MemoryClusterStatus { Phase = Phases.Healthy, ObservedGeneration = 1 },
        }, "memorycluster-operator", force: true, "status", None);
        Assert.False(applied.Created);
        Assert.Equal(Phases.Healthy, applied.Object.Status!.Phase);
        Assert.Equal(3, applied.Object.Spec.Instances);
        Assert.Equal(1, applied.Object.Metadata.Generation);
    }

    [Fact]
    public async Task Apply_body_leaves_out_server_owned_metadata_status_and_nulls()
    {
        var cluster = Harness.Cluster("a") with
        {
            Metadata = Harness.Cluster("a").Metadata with { ResourceVersion = "5", Uid = "u", Generation = 3 },
            Status = new MemoryClusterStatus { Phase = "x" },
        };
        var body = KubeApiClient.ApplyBody(ResourceTypes.MemoryCluster, cluster, null);
        var meta = body["metadata"]!.AsObject();
        Assert.False(meta.ContainsKey("resourceVersion") || meta.ContainsKey("uid") || meta.ContainsKey("generation") || meta.ContainsKey("managedFields"));
        Assert.False(body.ContainsKey("status"));
        Assert.DoesNotContain("null", body.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_pages_with_limit_and_continue_and_filters_by_label()
    {
        for (var i = 0; i < 7; i++)
        {
            await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c" + i, labels: new Dictionary<string, string> { ["even"] = (i % 2 == 0).ToString() }), None);
        }

        var page = await Client.ListAsync(ResourceTypes.ConfigMap, "default", new ListOptions { Limit = 3 }, None);
        var names = page.Items.Select(c => c.Metadata.Name).ToList();
        Assert.Equal(4, page.Metadata.RemainingItemCount);
        while (page.Metadata.ContinueProperty is { } token)
        {
            page = await Client.ListAsync(ResourceTypes.ConfigMap, "default", new ListOptions { Limit = 3, Continue = token }, None);
            names.AddRange(page.Items.Select(c => c.Metadata.Name));
        }

        Assert.Equal(Enumerable.Range(0, 7).Select(i => "c" + i), names);
        var even = await Client.ListAsync(ResourceTypes.ConfigMap, "default", new ListOptions { LabelSelector = "even=True" }, None);
        Assert.Equal(4, even.Items.Count);
        var set = await Client.ListAsync(ResourceTypes.ConfigMap, null, new ListOptions { LabelSelector = "even in (False),!missing" }, None);
        Assert.Equal(3, set.Items.Count);
    }

    [Fact]
    public async Task An_expired_continue_token_is_Gone()
    {
        for (var i = 0; i < 3; i++)
        {
            await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c" + i), None);
        }

        var page = await Client.ListAsync(ResourceTypes.ConfigMap, "default", new ListOptions { Limit = 1 }, None);
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("later"), None);
        _h.Server.Compact();
        await Assert.ThrowsAsync<GoneException>(() => Client.ListAsync(ResourceTypes.ConfigMap, "default", new ListOptions { Limit = 1, Continue = page.Metadata.ContinueProperty }, None));
    }

    [Fact]
    public async Task Delete_honours_preconditions_and_finalizers_delay_it_with_a_deletionTimestamp()
    {
        var finalized = Harness.ConfigMap("c");
        finalized.Metadata.Finalizers = ["memorycluster.io/cleanup"];
        var created = await Client.CreateAsync(ResourceTypes.ConfigMap, finalized, None);
        await Assert.ThrowsAsync<ConflictException>(() => Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "c",
            new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = "someone-else" } }, None));
        var deleting = await Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "c",
            new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = created.Metadata.Uid, ResourceVersion = created.Metadata.ResourceVersion } }, None);
        Assert.NotNull(deleting!.Metadata.DeletionTimestamp);
        var e = await Assert.ThrowsAsync<InvalidException>(() => Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c",
            new JsonPatch([JsonPatchOperation.Add("/metadata/finalizers/-", "new/one")]), null, None));
        Assert.Contains("finalizers", e.Message, StringComparison.Ordinal);

        await Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c",
            new JsonPatch([JsonPatchOperation.Test("/metadata/finalizers/0", "memorycluster.io/cleanup"), JsonPatchOperation.Remove("/metadata/finalizers/0")]), null, None);
        await Assert.ThrowsAsync<NotFoundException>(() => Client.GetAsync(ResourceTypes.ConfigMap, "default", "c", None));
    }

    [Fact]
    public async Task Deleting_an_owner_collects_its_dependents_in_background_foreground_and_orphan_modes()
    {
        foreach (var policy in new[] { "Background", "Foreground", "Orphan" })
        {
            var owner = await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("owner"), None);
            var reference = new V1OwnerReference
            {
                ApiVersion = ApiGroup.ApiVersion,
                Kind = ApiGroup.Kind,
                Name = "owner",
                Uid = owner.Metadata.Uid,
                Controller = true,
                BlockOwnerDeletion = true,
            };
            var child = Harness.ConfigMap("child");
            child.Metadata.OwnerReferences = [reference];
            await Client.CreateAsync(ResourceTypes.ConfigMap, child, None);
            await Client.DeleteAsync(ResourceTypes.MemoryCluster, "default", "owner", new V1DeleteOptions { PropagationPolicy = policy }, None);
            await Assert.ThrowsAsync<NotFoundException>(() => Client.GetAsync(ResourceTypes.MemoryCluster, "default", "owner", None));
            if (policy == "Orphan")
            {
                var orphan = await Client.GetAsync(ResourceTypes.ConfigMap, "default", "child", None);
                Assert.Empty(orphan.Metadata.OwnerReferences ?? []);
                await Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "child", null, None);
            }
            else
            {
                await Assert.ThrowsAsync<NotFoundException>(() => Client.GetAsync(ResourceTypes.ConfigMap, "default", "child", None));
            }
        }
    }

    [Fact]
    public async Task Foreground_deletion_waits_for_a_blocking_dependent_with_a_finalizer()
    {
        var owner = await Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("owner"), None);
        var child = Harness.ConfigMap("child");
        child.Metadata.Finalizers = ["hold/on"];
        child.Metadata.OwnerReferences =
            [new V1OwnerReference { ApiVersion = ApiGroup.ApiVersion, Kind = ApiGroup.Kind, Name = "owner", Uid = owner.Metadata.Uid, BlockOwnerDeletion = true }];
        await Client.CreateAsync(ResourceTypes.ConfigMap, child, None);
        await Client.DeleteAsync(ResourceTypes.MemoryCluster, "default", "owner", new V1DeleteOptions { PropagationPolicy = "Foreground" }, None);
        var waiting = await Client.GetAsync(ResourceTypes.MemoryCluster, "default", "owner", None);
        Assert.NotNull(waiting.Metadata.DeletionTimestamp);
        Assert.Contains("foregroundDeletion", waiting.Metadata.Finalizers!);
        await Client.PatchAsync(ResourceTypes.ConfigMap, "default", "child", new JsonPatch([JsonPatchOperation.Remove("/metadata/finalizers")]), null, None);
        await Assert.ThrowsAsync<NotFoundException>(() => Client.GetAsync(ResourceTypes.ConfigMap, "default", "child", None));
        await Assert.ThrowsAsync<NotFoundException>(() => Client.GetAsync(ResourceTypes.MemoryCluster, "default", "owner", None));
    }

    [Fact]
    public async Task Watch_streams_changes_in_order_with_bookmarks_and_ERROR_410_becomes_Gone()
    {
        var list = await Client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<WatchEvent<V1ConfigMap>>();
        var reading = Task.Run(async () =>
        {
            await foreach (var e in Client.WatchAsync(ResourceTypes.ConfigMap, "default", new WatchOptions { ResourceVersion = list.Metadata.ResourceVersion }, cts.Token))
            {
                lock (seen)
                {
                    seen.Add(e);
                }
            }
        }, cts.Token);
        await Eventually.TrueAsync(() => _h.Server.OpenWatches == 1, "the watch to open");
        var created = await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        created.Data = new Dictionary<string, string> { ["k"] = "2" };
        await Client.ReplaceAsync(ResourceTypes.ConfigMap, created, None);
        await Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "c", null, None);
        await Eventually.TrueAsync(() => { lock (seen) { return seen.Any(e => e.Type == WatchEventType.Bookmark) && seen.Count(e => e.Type != WatchEventType.Bookmark) == 3; } }, "3 events and a bookmark");
        _h.Server.ExpireWatches();
        await Assert.ThrowsAsync<GoneException>(() => reading);
        lock (seen)
        {
            Assert.Equal([WatchEventType.Added, WatchEventType.Modified, WatchEventType.Deleted], seen.Where(e => e.Type != WatchEventType.Bookmark).Select(e => e.Type));
        }
    }

    [Fact]
    public async Task Watching_from_a_compacted_resourceVersion_is_Gone()
    {
        var list = await Client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        _h.Server.Compact();
        await Assert.ThrowsAsync<GoneException>(async () =>
        {
            await foreach (var _ in Client.WatchAsync(ResourceTypes.ConfigMap, "default", new WatchOptions { ResourceVersion = list.Metadata.ResourceVersion }, None))
            {
            }
        });
    }

    [Fact]
    public async Task A_stalled_watch_fails_with_WatchIdleException_within_the_idle_timeout()
    {
        var list = await Client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        var options = new WatchOptions { ResourceVersion = list.Metadata.ResourceVersion, AllowWatchBookmarks = false, IdleTimeout = TimeSpan.FromMilliseconds(700) };
        var watch = Task.Run(async () =>
        {
            await foreach (var _ in Client.WatchAsync(ResourceTypes.ConfigMap, "default", options, None))
            {
            }
        });
        await Eventually.TrueAsync(() => _h.Server.OpenWatches == 1, "the watch to open");
        _h.Server.StallWatches();
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        await Assert.ThrowsAsync<WatchIdleException>(() => watch.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Throttling_is_retried_after_Retry_After_and_thrown_when_it_persists()
    {
        _h.Server.FailNextRequests(2, 429, retryAfterSeconds: 0);
        Assert.NotNull(await Client.ListAsync(ResourceTypes.ConfigMap, "default", null, None));
        _h.Server.FailNextRequests(10, 429, retryAfterSeconds: 0);
        var e = await Assert.ThrowsAsync<TooManyRequestsException>(() => Client.ListAsync(ResourceTypes.ConfigMap, "default", null, None));
        Assert.Equal(TimeSpan.Zero, e.RetryAfter);
    }
}
