using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tests.Planning;

namespace MemoryCluster.Operator.Tests.Reconciling;

/// <summary>The operator against the Kubernetes API double over HTTP, with the managers' /status served by the test.</summary>
[Trait("Category", "Integration")]
public sealed class ReconcilerTests
{
    private static void Serve(OperatorHarness harness, int instances = 3)
    {
        foreach (var observation in StatusPlannerTests.Healthy(instances))
        {
            harness.Statuses[observation.Pod] = observation.Status!;
        }
    }

    private static bool Is(MemoryClusterResource cluster, string type, string status, string? reason = null) =>
        OperatorHarness.ConditionOf(cluster, type) is { } c && c.Status == status && (reason is null || c.Reason == reason);

    [Fact]
    public async Task A_new_cluster_gets_every_object_with_an_owner_reference_and_its_secrets_once()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator();
        var created = await harness.CreateAsync(OperatorHarness.Cluster(compute: 1));

        // The first visit sets every condition; nothing answers yet, so nothing is claimed.
        var pending = await harness.WaitForAsync("demo", c => c.Status?.Conditions?.Count == ConditionTypes.All.Count, "every condition");
        Assert.Equal(ConditionStatus.False, OperatorHarness.ConditionOf(pending, ConditionTypes.Ready)!.Status);
        Assert.NotEqual(ConditionStatus.True, OperatorHarness.ConditionOf(pending, ConditionTypes.PrimaryAvailable)!.Status);

        var expected = ObjectPlanner.Render(created, OperatorSettings.Default);
        foreach (var obj in expected.Objects)
        {
            await OperatorHarness.EventuallyAsync(async () => await harness.ExistsAsync(obj), $"{obj.Kind}/{obj.Metadata.Name}");
        }

        var set = await harness.Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None);
        var owner = Assert.Single(set.Metadata.OwnerReferences);
        Assert.Equal((ApiGroup.Kind, "demo", created.Metadata.Uid, true, true), (owner.Kind, owner.Name, owner.Uid, owner.Controller, owner.BlockOwnerDeletion));
        Assert.False(string.IsNullOrEmpty(set.Metadata.Annotations[ObjectDiff.HashAnnotation]));

        var key = await harness.Client.GetAsync(ResourceTypes.Secret, "default", "demo-cluster-key", CancellationToken.None);
        Assert.True(key.Data["key"].Length >= 32, "the cluster key holds at least 32 bytes");
        var password = await harness.Client.GetAsync(ResourceTypes.Secret, "default", "demo-replication", CancellationToken.None);
        Assert.Equal("replicator", System.Text.Encoding.UTF8.GetString(password.Data["username"]));
        Assert.Equal(created.Metadata.Uid, Assert.Single(password.Metadata.OwnerReferences).Uid);

        // Secrets are made once: a later reconcile never replaces them.
        Serve(harness);
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.PrimaryAvailable, ConditionStatus.True), "a primary");
        var again = await harness.Client.GetAsync(ResourceTypes.Secret, "default", "demo-cluster-key", CancellationToken.None);
        Assert.Equal(key.Data["key"], again.Data["key"]);
        // Five generated Secrets, the CA and the server certificate.
        Assert.Equal(7, harness.Server.RequestCount("POST secrets"));
    }

    [Fact]
    public async Task Instance_reports_drive_the_conditions_from_unknown_to_ready_to_degraded_and_back()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster());
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.PrimaryAvailable, ConditionStatus.Unknown), "PrimaryAvailable Unknown");

        Serve(harness);
        var ready = await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True, ConditionReasons.AllInstancesReady), "Ready");
        Assert.Equal(("demo-0", 3L, Phases.Healthy, 3), (ready.Status!.CurrentPrimary, ready.Status.Epoch, ready.Status.Phase, ready.Status.ReadyInstances));
        Assert.Equal(ready.Metadata.Generation, ready.Status.ObservedGeneration);

        harness.Statuses.TryRemove("demo-2", out _);
        var degraded = await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.ReplicaDown), "Degraded ReplicaDown");
        Assert.Equal(ConditionStatus.False, OperatorHarness.ConditionOf(degraded, ConditionTypes.Ready)!.Status);
        Assert.Contains("demo-2", OperatorHarness.ConditionOf(degraded, ConditionTypes.Degraded)!.Message, StringComparison.Ordinal);

        Serve(harness);
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True), "Ready again");

        // The recorder posts Events after the status it reports on (under load, InstanceRejoined came after Ready).
        var expected = new HashSet<string> { "PrimaryChanged", "ClusterReady", ConditionReasons.InstanceUnhealthy, "InstanceRejoined" };
        async Task<HashSet<string>> ReasonsAsync() =>
            (await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items.Where(e => e.Regarding?.Name == "demo").Select(e => e.Reason).ToHashSet();
        await OperatorHarness.EventuallyAsync(async () => (await ReasonsAsync()).IsSupersetOf(expected), "the four Events");
        Assert.Superset(expected, await ReasonsAsync());
    }

    [Fact]
    public async Task A_resync_with_nothing_changed_writes_nothing_and_a_spec_change_patches_only_what_changed()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var host = harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster());
        Serve(harness);
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True), "Ready");

        // The events of the way to Ready are posted by the recorder on its own, after the status that reports them.
        await OperatorHarness.EventuallyAsync(
            async () => (await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items.Any(e => e.Reason == "ClusterReady"),
            "the ClusterReady event");

        // Steady: the reconciler runs every 300 ms; let it run several times and count the writes the server saw.
        var before = harness.Server.Writes();
        var reconciles = await ReconcilesAsync(host);
        await OperatorHarness.EventuallyAsync(async () => await ReconcilesAsync(host) >= reconciles + 5, "five more reconciles");
        var steady = harness.Server.Writes();
        var written = steady.Where(w => before.GetValueOrDefault(w.Key) != w.Value).Select(w => $"{w.Key} +{w.Value - before.GetValueOrDefault(w.Key)}").ToList();
        Assert.True(written.Count == 0, $"a resync with nothing changed wrote: {string.Join(", ", written)}");

        // A parameter: the ConfigMap changes, and nothing else is applied.
        await harness.UpdateSpecAsync("demo", s => s with { Postgres = s.Postgres with { Parameters = new Dictionary<string, string> { ["work_mem"] = "8MB" } } });
        await OperatorHarness.EventuallyAsync(async () =>
            (await harness.Client.GetAsync(ResourceTypes.ConfigMap, "default", "demo-config", CancellationToken.None)).Data["postgresql.conf"].Contains("work_mem = '8MB'", StringComparison.Ordinal),
            "the parameter in the ConfigMap");
        await harness.WaitForAsync("demo", c => c.Status?.ObservedGeneration == c.Metadata.Generation, "the new generation observed");
        var after = harness.Server.Writes();
        var changed = after.Where(w => before.GetValueOrDefault(w.Key) != w.Value).Select(w => w.Key).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(1, after.GetValueOrDefault("PATCH configmaps") - before.GetValueOrDefault("PATCH configmaps"));
        Assert.All(changed, key => Assert.Contains(key, new[] { "PATCH configmaps", "PUT memoryclusters", "PUT memoryclusters/status", "POST events", "PATCH events" }));
    }

    private static async Task<double> ReconcilesAsync(Operator.Hosting.OperatorHost host)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri(host.MetricsUrl!, "metrics"));
        return text.Split('\n')
            .Where(l => l.StartsWith("memorycluster_operator_reconciles_total{", StringComparison.Ordinal))
            .Sum(l => double.Parse(l.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task An_invalid_spec_is_reported_with_its_field_and_changes_nothing_else()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster());
        Serve(harness);
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True), "Ready");
        var set = await harness.Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None);

        // A storage size change: the StatefulSet's claims are immutable, whatever CEL would say.
        var before = harness.Server.Writes();
        await harness.UpdateSpecAsync("demo", s => s with { Storage = s.Storage with { Size = new Quantity("20Gi") }, Postgres = s.Postgres with { Parameters = new Dictionary<string, string> { ["work_mem"] = "8MB" } } });
        var invalid = await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.InvalidSpec), "InvalidSpec");
        Assert.Contains("spec.storage.size", OperatorHarness.ConditionOf(invalid, ConditionTypes.Ready)!.Message, StringComparison.Ordinal);
        Assert.Equal(Phases.Invalid, invalid.Status!.Phase);

        var after = harness.Server.Writes();
        Assert.All(after.Where(w => before.GetValueOrDefault(w.Key) != w.Value), w => Assert.Contains(w.Key, new[] { "PUT memoryclusters", "PUT memoryclusters/status", "POST events", "PATCH events" }));
        var unchanged = await harness.Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None);
        Assert.Equal(set.Metadata.ResourceVersion, unchanged.Metadata.ResourceVersion);
        var events = await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None);
        Assert.Contains(events.Items, e => e.Type == "Warning" && e.Reason == ConditionReasons.InvalidSpec && e.Note!.Contains("spec.storage.size", StringComparison.Ordinal));

        // Put right, the cluster is reconciled again (the parameter reaches the ConfigMap).
        await harness.UpdateSpecAsync("demo", s => s with { Storage = s.Storage with { Size = new Quantity(Defaults.StorageSize) } });
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True), "Ready after the fix");
        var config = await harness.Client.GetAsync(ResourceTypes.ConfigMap, "default", "demo-config", CancellationToken.None);
        Assert.Contains("work_mem", config.Data["postgresql.conf"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task What_the_spec_turns_off_is_deleted_compute_scaled_to_zero_and_the_network_policy()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster(compute: 1) is var c ? c with { Spec = c.Spec with { NetworkPolicy = new NetworkPolicySpec { Enabled = true } } } : c);
        await OperatorHarness.EventuallyAsync(async () => (await harness.Client.ListAsync(ResourceTypes.Deployment, "default", null, CancellationToken.None)).Items.Count == 1, "the compute Deployment");
        await OperatorHarness.EventuallyAsync(async () => (await harness.Client.ListAsync(ResourceTypes.NetworkPolicy, "default", null, CancellationToken.None)).Items.Count == 1, "the NetworkPolicy");

        await harness.UpdateSpecAsync("demo", s => s with { Compute = s.Compute with { Replicas = 0 }, NetworkPolicy = new NetworkPolicySpec { Enabled = false } });
        await OperatorHarness.EventuallyAsync(async () => (await harness.Client.ListAsync(ResourceTypes.NetworkPolicy, "default", null, CancellationToken.None)).Items.Count == 0, "the NetworkPolicy deleted");
        await OperatorHarness.EventuallyAsync(async () => (await harness.Client.ListAsync(ResourceTypes.Deployment, "default", null, CancellationToken.None)).Items.Count == 0, "the Deployment deleted");
        var services = await harness.Client.ListAsync(ResourceTypes.Service, "default", null, CancellationToken.None);
        Assert.DoesNotContain(services.Items, s => s.Metadata.Name == "demo-compute");
        Assert.Contains(services.Items, s => s.Metadata.Name == "demo-rw");
    }

    [Fact]
    public async Task Two_operators_elect_one_leader_and_the_other_takes_over_when_it_stops()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var first = harness.StartOperator(leaderElect: true, identity: "operator-a");
        var second = harness.StartOperator(leaderElect: true, identity: "operator-b");
        await OperatorHarness.EventuallyAsync(() => Task.FromResult(first.Leading || second.Leading), "a leader");
        await Task.Yield();
        Assert.False(first.Leading && second.Leading, "two leaders at once");
        var (leader, standby) = first.Leading ? (first, second) : (second, first);

        await harness.CreateAsync(OperatorHarness.Cluster());
        Serve(harness);
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True), "Ready under the first leader");

        await harness.StopOperatorAsync(leader);
        await OperatorHarness.EventuallyAsync(() => Task.FromResult(standby.Leading), "the standby leading", timeoutMs: 30_000);

        // The new leader reconciles: a change is carried out.
        await harness.UpdateSpecAsync("demo", s => s with { Postgres = s.Postgres with { Parameters = new Dictionary<string, string> { ["work_mem"] = "16MB" } } });
        await OperatorHarness.EventuallyAsync(async () =>
            (await harness.Client.GetAsync(ResourceTypes.ConfigMap, "default", "demo-config", CancellationToken.None)).Data["postgresql.conf"].Contains("16MB", StringComparison.Ordinal),
            "the new leader applying the change");
        var lease = await harness.Client.GetAsync(ResourceTypes.Lease, "default", "memorycluster-operator", CancellationToken.None);
        Assert.Equal(standby == first ? "operator-a" : "operator-b", lease.Spec.HolderIdentity);
    }

    [Fact]
    public async Task A_rolling_change_waits_for_pods_and_a_scale_waits_for_members_without_writing_to_the_managers()
    {
        // The double runs no StatefulSet controller: no pod exists, so the workload planner only waits and says so.
        await using var harness = await OperatorHarness.StartAsync();
        harness.Membership = new FakeMembership(3);
        harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster());
        Serve(harness);
        await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Ready, ConditionStatus.True), "Ready");

        await harness.UpdateSpecAsync("demo", s => s with { Instances = 5 });
        var scaling = await harness.WaitForAsync("demo", c => Is(c, ConditionTypes.Progressing, ConditionStatus.True, ConditionReasons.Scaling), "Progressing Scaling");
        Assert.Equal(Phases.Scaling, scaling.Status!.Phase);
        Assert.Contains("demo-3", OperatorHarness.ConditionOf(scaling, ConditionTypes.Progressing)!.Message, StringComparison.Ordinal);
        await OperatorHarness.EventuallyAsync(async () => (await harness.Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None)).Spec.Replicas == 5, "the StatefulSet grown to 5");
        var events = await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None);
        Assert.Contains(events.Items, e => e.Reason == "ScaleStarted");
        Assert.Empty(harness.Switchovers);
        Assert.Empty(harness.Membership.Calls);
    }
}
