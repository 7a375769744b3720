using k8s.Models;
using MemoryCluster.Kube.Cluster.Controllers;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

public class ReplicaSetPlannerTests
{
    /// <summary>Pods as "name:state"; how many a round makes and which it deletes.</summary>
    [Theory]
    [InlineData(2, "", 2, "", "none yet: make both")]
    [InlineData(2, "a:ready", 1, "", "one short")]
    [InlineData(2, "a:ready,b:terminating", 1, "", "a terminating pod is no replica")]
    [InlineData(2, "a:ready,b:failed", 1, "", "an ended pod is no replica (and is left to the pod collector)")]
    [InlineData(1, "a:ready,b:ready,c:ready", 0, "c,b", "too many: the newest first")]
    [InlineData(1, "a:running,b:ready", 0, "a", "too many: a not-ready pod before a ready one")]
    [InlineData(1, "a:ready,b:pending", 0, "b", "too many: one on no node first")]
    [InlineData(2, "a:ready,b:ready", 0, "", "steady")]
    public void Keeps_the_wanted_number_of_replicas(int replicas, string pods, int made, string deleted, string why)
    {
        var set = ReplicaSet(replicas);
        var plan = ReplicaSetPlanner.Plan(set, Pods(set, pods), Now);

        Assert.True(made == plan.CreatePods.Count, $"{why}: made {plan.CreatePods.Count}");
        Assert.True(deleted == string.Join(",", plan.DeletePods.Select(p => p.Metadata.Name)), $"{why}: deleted {Names(plan.DeletePods)}");
        Assert.All(plan.CreatePods, p => Assert.True(p.Metadata is { GenerateName: "web-abc-", Name: null } && p.Metadata.OwnerReferences.Single().Uid == "rs-uid"));
    }

    [Fact]
    public void Status_counts_active_ready_and_available_replicas()
    {
        var set = ReplicaSet(3);
        set.Spec.MinReadySeconds = 120;
        var status = ReplicaSetPlanner.Plan(set, Pods(set, "a:ready,b:running,c:terminating"), Now).Status;

        // Ready a minute ago: not yet available under minReadySeconds 120.
        Assert.True(status is { Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 0, FullyLabeledReplicas: 2, ObservedGeneration: 2 },
            $"replicas {status.Replicas} ready {status.ReadyReplicas} available {status.AvailableReplicas}");
    }

    internal static V1ReplicaSet ReplicaSet(int replicas, string name = "web-abc", string uid = "rs-uid") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = uid, Generation = 2 },
        Spec = new V1ReplicaSetSpec { Replicas = replicas, Selector = new V1LabelSelector { MatchLabels = Labels("app=web") }, Template = Template(app: "web") },
    };

    private static List<V1Pod> Pods(V1ReplicaSet set, string pods) =>
        [.. pods.Split(',', StringSplitOptions.RemoveEmptyEntries).Select((p, i) => WithState(new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                Name = p.Split(':')[0],
                Uid = "uid-" + p.Split(':')[0],
                Labels = Labels("app=web"),
                CreationTimestamp = Now.UtcDateTime.AddMinutes(i),
                OwnerReferences = [Workloads.ControllerReference("apps/v1", "ReplicaSet", set.Metadata)],
            },
        }, p.Split(':')[1]))];
}
