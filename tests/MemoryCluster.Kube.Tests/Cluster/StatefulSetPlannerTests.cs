using k8s.Models;
using MemoryCluster.Kube.Cluster.Controllers;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

public class StatefulSetPlannerTests
{
    /// <summary>
    /// Pods by ordinal as "state" (or "-" for none, "old" for ready from an older template); what one round makes
    /// and deletes. OrderedReady goes one pod at a time and only past healthy ones; Parallel does not wait.
    /// </summary>
    [Theory]
    [InlineData(3, "OrderedReady", "", "demo-0", "", "no pods: only ordinal 0")]
    [InlineData(3, "OrderedReady", "ready", "demo-1", "", "0 ready: ordinal 1 next")]
    [InlineData(3, "OrderedReady", "ready,running", "", "", "1 not ready yet: wait")]
    [InlineData(3, "OrderedReady", "ready,pending", "", "", "1 not on a node yet: wait")]
    [InlineData(3, "OrderedReady", "ready,-,ready", "demo-1", "", "a deleted pod in the middle is made again")]
    [InlineData(3, "OrderedReady", "terminating,ready,ready", "", "", "a terminating pod is waited for, not replaced")]
    [InlineData(3, "OrderedReady", "ready,failed,ready", "", "demo-1", "an ended pod is deleted (made again next round)")]
    [InlineData(3, "Parallel", "", "demo-0,demo-1,demo-2", "", "parallel: all at once")]
    [InlineData(3, "Parallel", "running,-,-", "demo-1,demo-2", "", "parallel: no waiting on readiness")]
    [InlineData(1, "OrderedReady", "ready,ready,ready", "", "demo-2", "scale down: the highest ordinal first, one at a time")]
    [InlineData(1, "OrderedReady", "ready,ready,terminating", "", "", "scale down: the last removal is waited for")]
    [InlineData(1, "OrderedReady", "running,ready,ready", "", "", "scale down: not while a kept pod is unhealthy")]
    [InlineData(1, "Parallel", "ready,ready,ready", "", "demo-2,demo-1", "parallel scale down: all at once, highest first")]
    [InlineData(1, "Parallel", "running,ready,terminating", "", "demo-1", "parallel scale down: the terminating one is not deleted twice")]
    [InlineData(3, "OrderedReady", "ready,ready,ready", "", "", "steady")]
    public void Makes_and_deletes_pods_as_kubernetes_does(int replicas, string policy, string pods, string created, string deleted, string why)
    {
        var set = StatefulSet(replicas, policy);
        var existing = Pods(set, pods);
        var plan = StatefulSetPlanner.Plan(set, existing, Claims(), Now);

        Assert.True(created == Names(plan.CreatePods), $"{why}: made {Names(plan.CreatePods)}");
        Assert.True(deleted == Names(plan.DeletePods), $"{why}: deleted {Names(plan.DeletePods)}");
    }

    [Fact]
    public void A_pod_gets_its_name_its_claims_and_the_headless_service_as_subdomain()
    {
        var set = StatefulSet(3, "Parallel");
        var plan = StatefulSetPlanner.Plan(set, [], Claims(1), Now);

        // Ordinal 1's claim outlived its pod: it is used again, not made again.
        Assert.Equal(["data-demo-0", "data-demo-2"], plan.CreateClaims.Select(c => c.Metadata.Name));
        var pod = plan.CreatePods[1];
        Assert.Equal("demo-1", pod.Spec.Hostname);
        Assert.Equal("demo-hl", pod.Spec.Subdomain);
        Assert.Equal("data-demo-1", Assert.Single(pod.Spec.Volumes, v => v.Name == "data").PersistentVolumeClaim.ClaimName);
        Assert.Equal("demo-1", pod.Metadata.Labels[StatefulSetPlanner.PodNameLabel]);
        Assert.Equal("1", pod.Metadata.Labels[StatefulSetPlanner.PodIndexLabel]);
        Assert.Equal(StatefulSetPlanner.Revision(set), pod.Metadata.Labels[Workloads.RevisionLabel]);
        var owner = Assert.Single(pod.Metadata.OwnerReferences);
        Assert.True(owner is { Kind: "StatefulSet", Name: "demo", Uid: "set-uid", Controller: true, BlockOwnerDeletion: true });
        Assert.Equal("db", plan.CreateClaims[0].Metadata.Labels["app"]);
        Assert.Null(plan.CreateClaims[0].Metadata.OwnerReferences);
    }

    [Fact]
    public void The_retention_policy_decides_who_owns_the_claims()
    {
        var deleted = StatefulSetPlanner.Plan(StatefulSet(1, whenDeleted: "Delete"), [], Claims(), Now);
        Assert.Equal("set-uid", Assert.Single(deleted.CreateClaims.Single().Metadata.OwnerReferences).Uid);

        var scaled = StatefulSet(1, "Parallel", whenScaled: "Delete");
        var plan = StatefulSetPlanner.Plan(scaled, Pods(scaled, "ready,ready,ready"), Claims(0, 1, 2), Now);
        Assert.Equal("demo-2,demo-1", Names(plan.DeletePods));
        Assert.Equal(["data-demo-2 pod-2", "data-demo-1 pod-1"], plan.ClaimOwners.Select(o => o.Claim + " " + o.Owner.Uid));

        var kept = StatefulSetPlanner.Plan(StatefulSet(1, "Parallel"), Pods(scaled, "ready,ready,ready"), Claims(0, 1, 2), Now);
        Assert.Empty(kept.ClaimOwners);
    }

    [Theory]
    [InlineData("OnDelete", null, "old,old,old", "", "OnDelete: a new template replaces nothing")]
    [InlineData("RollingUpdate", null, "old,old,old", "demo-2", "rolling: the highest out-of-date ordinal first")]
    [InlineData("RollingUpdate", null, "old,old,ready", "demo-1", "rolling: then the next")]
    [InlineData("RollingUpdate", null, "old,old,running", "", "rolling: only while all are healthy")]
    [InlineData("RollingUpdate", 2, "old,old,ready", "", "rolling: not below the partition")]
    [InlineData("RollingUpdate", null, "ready,ready,ready", "", "rolling: nothing out of date")]
    public void Replaces_pods_for_a_new_template_only_when_rolling(string strategy, int? partition, string pods, string deleted, string why)
    {
        var set = StatefulSet(3, "OrderedReady", strategy, image: "app:2", partition: partition);
        var plan = StatefulSetPlanner.Plan(set, Pods(set, pods), Claims(0, 1, 2), Now);

        Assert.Empty(plan.CreatePods);
        Assert.True(deleted == Names(plan.DeletePods), $"{why}: deleted {Names(plan.DeletePods)}");
    }

    [Fact]
    public void A_pod_deleted_under_OnDelete_comes_back_from_the_current_template()
    {
        var set = StatefulSet(3, "OrderedReady", "OnDelete", image: "app:2");
        var plan = StatefulSetPlanner.Plan(set, Pods(set, "old,-,old"), Claims(0, 1, 2), Now);

        Assert.Equal("app:2", Assert.Single(plan.CreatePods).Spec.Containers[0].Image);
    }

    [Fact]
    public void Status_counts_ready_and_updated_pods_and_moves_the_current_revision_when_all_are_updated()
    {
        var set = StatefulSet(3, image: "app:2");
        set.Status = new V1StatefulSetStatus { CurrentRevision = "demo-old" };
        var rolling = StatefulSetPlanner.Plan(set, Pods(set, "old,running,ready"), Claims(0, 1, 2), Now).Status;
        Assert.True(rolling is { Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2, CurrentReplicas: 1, CurrentRevision: "demo-old", ObservedGeneration: 3 },
            Describe(rolling));
        Assert.Equal(StatefulSetPlanner.Revision(set), rolling.UpdateRevision);

        var done = StatefulSetPlanner.Plan(set, Pods(set, "ready,ready,terminating"), Claims(0, 1, 2), Now).Status;
        Assert.True(done is { Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, CurrentReplicas: 3 }, Describe(done));
        Assert.Equal(StatefulSetPlanner.Revision(set), done.CurrentRevision);
    }

    [Theory]
    [InlineData("demo-0", 0)]
    [InlineData("demo-12", 12)]
    [InlineData("demo-01", null)]
    [InlineData("demo-", null)]
    [InlineData("demo-compute-1", null)]
    [InlineData("other-1", null)]
    [InlineData("demo--1", null)]
    public void Only_pods_named_set_dash_ordinal_are_the_sets(string pod, int? ordinal) =>
        Assert.Equal(ordinal, StatefulSetPlanner.OrdinalOf("demo", pod));

    private static List<V1Pod> Pods(V1StatefulSet set, string states) =>
        [.. states.Split(',', StringSplitOptions.RemoveEmptyEntries).Select((state, ordinal) => (state, ordinal)).Where(s => s.state != "-")
            .Select(s => s.state == "old" ? SetPod(set, s.ordinal, "ready", "demo-old") : SetPod(set, s.ordinal, s.state))];

    private static string Describe(V1StatefulSetStatus s) =>
        $"replicas {s.Replicas} ready {s.ReadyReplicas} available {s.AvailableReplicas} updated {s.UpdatedReplicas} current {s.CurrentReplicas} {s.CurrentRevision}";
}
