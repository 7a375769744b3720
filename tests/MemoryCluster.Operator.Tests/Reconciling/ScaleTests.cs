using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Instance.Node;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tests.Planning;

namespace MemoryCluster.Operator.Tests.Reconciling;

/// <summary>
/// Scale 3 → 5 → 3 through the operator against the API double, with the managers' membership endpoints served by
/// <see cref="FakeMembership"/> (signatures checked with the real <c>SignedRequest</c>). The double runs no StatefulSet
/// controller: the test plays it, serving a pod's manager only once the StatefulSet has grown to it.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ScaleTests
{
    private static void Serve(OperatorHarness harness, int pods, string primary = "demo-0", IReadOnlyDictionary<int, ulong>? ids = null)
    {
        for (var i = 0; i < 5; i++)
        {
            if (i >= pods)
            {
                harness.Statuses.TryRemove($"demo-{i}", out _);
                continue;
            }

            var doc = StatusPlannerTests.Doc(i, $"demo-{i}" == primary ? InstanceRole.Primary : InstanceRole.Replica, true, primary: primary);
            harness.Statuses[$"demo-{i}"] = ids is not null && ids.TryGetValue(i, out var id) ? doc with { Id = id } : doc;
        }
    }

    private static async Task<int?> ReplicasAsync(OperatorHarness harness) =>
        (await harness.Client.GetAsync(ResourceTypes.StatefulSet, "default", "demo", CancellationToken.None)).Spec.Replicas;

    private static async Task<string> InstanceConfAsync(OperatorHarness harness) =>
        (await harness.Client.GetAsync(ResourceTypes.ConfigMap, "default", "demo-config", CancellationToken.None)).Data[ObjectPlanner.InstanceConfigKey];

    private static bool Settled(MemoryClusterResource c, int instances) =>
        OperatorHarness.ConditionOf(c, ConditionTypes.Ready)?.Status == ConditionStatus.True
        && OperatorHarness.ConditionOf(c, ConditionTypes.Progressing)?.Status == ConditionStatus.False
        && c.Status?.Instances?.Count == instances;

    private static async Task<(OperatorHarness Harness, FakeMembership Membership, Hosting.OperatorHost Operator)> ReadyClusterAsync()
    {
        var harness = await OperatorHarness.StartAsync();
        var membership = new FakeMembership(3);
        var primary = "demo-0";
        membership.Primary = () => harness.Statuses.Values.FirstOrDefault(s => s.Role == InstanceRole.Primary)?.Name ?? primary;
        harness.Membership = membership;
        var host = harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster());
        Serve(harness, 3);
        await harness.WaitForAsync("demo", c => Settled(c, 3), "Ready with 3 instances");
        return (harness, membership, host);
    }

    private static async Task GrowToFiveAsync(OperatorHarness harness, IReadOnlyDictionary<int, ulong>? ids = null)
    {
        await harness.UpdateSpecAsync("demo", s => s with { Instances = 5 });
        var scaling = await harness.WaitForAsync("demo", c => OperatorHarness.ConditionOf(c, ConditionTypes.Progressing) is { Status: ConditionStatus.True, Reason: ConditionReasons.Scaling }, "Progressing Scaling");
        Assert.Equal(Phases.Scaling, scaling.Status!.Phase);
        await OperatorHarness.EventuallyAsync(async () => await ReplicasAsync(harness) == 5, "the StatefulSet grown to 5");
        Serve(harness, 5, ids: ids);
    }

    [Fact]
    public async Task Scale_3_to_5_to_3_adds_members_one_at_a_time_and_removes_the_highest_first_after_the_primary_hands_over()
    {
        var (harness, membership, _) = await ReadyClusterAsync();
        await using var disposing = harness;

        // Grow: the StatefulSet first; a member only once its pod's manager answers, as a learner, then a voter, one at a time.
        await harness.UpdateSpecAsync("demo", s => s with { Instances = 5 });
        await OperatorHarness.EventuallyAsync(async () => await ReplicasAsync(harness) == 5, "the StatefulSet grown to 5");
        Assert.Empty(membership.Calls);
        var conf = await InstanceConfAsync(harness);
        Assert.Contains("4=demo-3@demo-3.demo-hl.default.svc:5432:7000:8000", conf, StringComparison.Ordinal);
        Assert.Contains("founders = 1,2,3\n", conf, StringComparison.Ordinal);
        Serve(harness, 5);
        await harness.WaitForAsync("demo", c => Settled(c, 5), "Ready with 5 instances");
        Assert.Equal(["add demo-3#4", "promote demo-3#4", "add demo-4#5", "promote demo-4#5"], membership.Calls);

        // Events are recorded after the status that reports what they say (the recorder posts them on its own): wait.
        await OperatorHarness.EventuallyAsync(
            async () => (await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items.Any(e => e.Reason == "ScaleCompleted"),
            "the ScaleCompleted event");
        var events = (await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items;
        Assert.Contains(events, e => e.Reason == "ScaleStarted");
        Assert.Equal(2, events.Count(e => e.Reason == "MemberAdded" && e.Type == "Normal"));
        var grown = await harness.GetAsync("demo");
        Assert.Equal([1L, 2, 3, 4, 5], grown.Status!.Members!.Select(m => m.Id));
        Assert.Equal([1L, 2, 3], grown.Status.FoundingMembers!);

        // Shrink while demo-4 is the primary: it hands over to a member that stays before anyone leaves.
        Serve(harness, 5, primary: "demo-4");
        await harness.WaitForAsync("demo", c => c.Status?.CurrentPrimary == "demo-4" && Settled(c, 5), "demo-4 primary");
        await harness.UpdateSpecAsync("demo", s => s with { Instances = 3 });
        await OperatorHarness.EventuallyAsync(() => Task.FromResult(!harness.Switchovers.IsEmpty), "a switchover away from demo-4");
        var (at, body, signed) = harness.Switchovers.First();
        Assert.Equal(("demo-4", true), (at, signed));
        Assert.Contains("\"demo-0\"", body, StringComparison.Ordinal);
        Assert.Equal(4, membership.Calls.Count);
        Serve(harness, 5, primary: "demo-0");

        // Then the highest member leaves first, each before its pod goes; the StatefulSet shrinks below them only after.
        await OperatorHarness.EventuallyAsync(() => Task.FromResult(membership.Calls.Count == 6), "two removals");
        var removals = membership.Calls.Skip(4).ToList();
        Assert.Equal("remove demo-4#5 (StatefulSet at 5)", removals[0]);
        Assert.StartsWith("remove demo-3#4 (StatefulSet at ", removals[1], StringComparison.Ordinal);
        Assert.DoesNotContain("at 3)", removals[1], StringComparison.Ordinal);
        await OperatorHarness.EventuallyAsync(async () => await ReplicasAsync(harness) == 3, "the StatefulSet shrunk to 3");
        Serve(harness, 3);
        var shrunk = await harness.WaitForAsync("demo", c => Settled(c, 3), "Ready with 3 instances");
        Assert.Equal(["demo-0", "demo-1", "demo-2"], membership.Members().Select(m => m.Name));
        Assert.Equal(3, shrunk.Status!.Members!.Count);
        Assert.Empty(membership.Unsigned);

        // Every switchover asked (again, until the double's status shows the hand-over) went to demo-4 for demo-0, signed.
        Assert.All(harness.Switchovers, s => Assert.Equal(("demo-4", true, true), (s.Pod, s.Signed, s.Body.Contains("\"demo-0\"", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task An_interrupted_scale_resumes_and_a_removed_members_pod_comes_back_under_a_new_id()
    {
        var (harness, membership, first) = await ReadyClusterAsync();
        await using var disposing = harness;

        // demo-3 is added as a learner and held back; the operator stops there and another one takes over.
        var release = false;
        membership.CaughtUp = name => name != "demo-3" || Volatile.Read(ref release);
        await GrowToFiveAsync(harness);
        await OperatorHarness.EventuallyAsync(() => Task.FromResult(membership.Calls.Contains("add demo-3#4")), "demo-3 added as a learner");
        await harness.StopOperatorAsync(first);
        Assert.Equal(["add demo-3#4"], membership.Calls);
        Volatile.Write(ref release, true);
        harness.StartOperator(identity: "operator-1");
        await harness.WaitForAsync("demo", c => Settled(c, 5), "Ready with 5 instances after the resumption");
        Assert.Equal(["add demo-3#4", "promote demo-3#4", "add demo-4#5", "promote demo-4#5"], membership.Calls);

        // Shrink to 3, then grow again: ids 4 and 5 were removed, so demo-3 and demo-4 come back as members 6 and 7.
        await harness.UpdateSpecAsync("demo", s => s with { Instances = 3 });
        await OperatorHarness.EventuallyAsync(async () => await ReplicasAsync(harness) == 3, "the StatefulSet shrunk to 3");
        Serve(harness, 3);
        await harness.WaitForAsync("demo", c => Settled(c, 3), "Ready with 3 instances");

        // demo-3's pod (with its kept volume) still runs as member 4 at first: the operator restarts it to take its new id.
        var names = new ClusterNames("demo", "default");
        await harness.Client.CreateAsync(ResourceTypes.Pod, new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = "demo-3", NamespaceProperty = "default", Labels = ClusterLabels.For(names, ClusterLabels.PostgresComponent) },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "instance", Image = "x" }] },
        }, CancellationToken.None);
        await GrowToFiveAsync(harness, ids: new Dictionary<int, ulong> { [3] = 4, [4] = 7 });
        var conf = await InstanceConfAsync(harness);
        Assert.Contains("6=demo-3@", conf, StringComparison.Ordinal);
        Assert.Contains("7=demo-4@", conf, StringComparison.Ordinal);
        await OperatorHarness.EventuallyAsync(async () =>
        {
            try
            {
                await harness.Client.GetAsync(ResourceTypes.Pod, "default", "demo-3", CancellationToken.None);
                return false;
            }
            catch (NotFoundException)
            {
                return true;
            }
        }, "demo-3's pod deleted to restart it as member 6");
        Assert.Equal(6, membership.Calls.Count);

        // Back as member 6 (the StatefulSet made it anew, reading the new config).
        Serve(harness, 5, ids: new Dictionary<int, ulong> { [3] = 6, [4] = 7 });
        await harness.WaitForAsync("demo", c => Settled(c, 5), "Ready with 5 instances again");
        Assert.Equal(["add demo-3#6", "promote demo-3#6", "add demo-4#7", "promote demo-4#7"], membership.Calls.Skip(6));
        var events = (await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items;
        Assert.Contains(events, e => e.Reason == "InstanceRestarted" && e.Note.Contains("member 6", StringComparison.Ordinal));
        Assert.Empty(membership.Unsigned);
    }
}
