using k8s.Models;
using MemoryCluster.Kube.Cluster.Controllers;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

public class DeploymentPlannerTests
{
    [Theory]
    [InlineData(1, null, null, 1, 0)]
    [InlineData(4, null, null, 1, 1)]
    [InlineData(10, null, null, 3, 2)]
    [InlineData(3, "0%", "0%", 0, 1)]
    [InlineData(3, "2", "0", 2, 0)]
    [InlineData(3, "50%", "50%", 2, 1)]
    public void Surge_rounds_up_and_unavailable_down(int replicas, string? surge, string? unavailable, int wantSurge, int wantUnavailable)
    {
        var deployment = Deployment(replicas);
        if (surge is not null)
        {
            deployment.Spec.Strategy = new V1DeploymentStrategy
            {
                Type = "RollingUpdate",
                RollingUpdate = new V1RollingUpdateDeployment { MaxSurge = surge, MaxUnavailable = unavailable },
            };
        }

        Assert.Equal((wantSurge, wantUnavailable), DeploymentPlanner.Limits(deployment, replicas));
    }

    [Fact]
    public void A_new_deployment_gets_one_replica_set_named_by_its_template()
    {
        var deployment = Deployment(2);
        var plan = DeploymentPlanner.Plan(deployment, [], Now);

        var set = Assert.IsType<V1ReplicaSet>(plan.Create);
        var hash = set.Spec.Template.Metadata.Labels[Workloads.TemplateHashLabel];
        Assert.Equal("web-" + hash, set.Metadata.Name);
        Assert.Equal(hash, set.Spec.Selector.MatchLabels[Workloads.TemplateHashLabel]);
        Assert.Equal("web", set.Spec.Selector.MatchLabels["app"]);
        Assert.Equal(2, set.Spec.Replicas);
        Assert.Equal("1", set.Metadata.Annotations[DeploymentPlanner.RevisionAnnotation]);
        Assert.Equal("deploy-uid", Assert.Single(set.Metadata.OwnerReferences).Uid);

        // The same template again: the same set, nothing to do.
        var again = DeploymentPlanner.Plan(deployment, [Observed(set, 2, 2)], Now);
        Assert.True(again.Create is null && again.Scale.Count == 0 && again.Delete.Count == 0);
        Assert.Equal(["Available True MinimumReplicasAvailable", "Progressing True NewReplicaSetAvailable"],
            again.Status.Conditions.Select(c => $"{c.Type} {c.Status} {c.Reason}"));
    }

    /// <summary>One replica, default strategy (surge 1, unavailable 0): the new pod first, the old one after it is available.</summary>
    [Fact]
    public void A_rolling_update_of_one_replica_never_goes_below_one_available()
    {
        var first = Deployment(1);
        var old = Observed(DeploymentPlanner.Plan(first, [], Now).Create!, 1, 1);
        var next = Deployment(1, "web:2");

        var start = DeploymentPlanner.Plan(next, [old], Now);
        Assert.Equal(1, start.Create!.Spec.Replicas);
        Assert.Empty(start.Scale);
        Assert.Equal("2", start.Create.Metadata.Annotations[DeploymentPlanner.RevisionAnnotation]);

        var waiting = DeploymentPlanner.Plan(next, [old, Observed(start.Create, 1, 0)], Now);
        Assert.Empty(waiting.Scale);

        var ready = DeploymentPlanner.Plan(next, [old, Observed(start.Create, 1, 1)], Now);
        Assert.Equal([(old.Metadata.Name, 0)], ready.Scale);

        var done = DeploymentPlanner.Plan(next, [Observed(old, 0, 0, wanted: 0), Observed(start.Create, 1, 1)], Now);
        Assert.Empty(done.Scale);
        Assert.Contains(done.Status.Conditions, c => c is { Type: "Progressing", Reason: "NewReplicaSetAvailable" });
    }

    [Fact]
    public void An_old_sets_unavailable_pods_go_before_available_ones_within_what_may_go()
    {
        var old = Observed(DeploymentPlanner.Plan(Deployment(4), [], Now).Create!, 4, 1);
        var plan = DeploymentPlanner.Plan(Deployment(4, "web:2"), [old], Now);

        // Surge 1: the new set starts at 1. Unavailable 1 of 4: of the 4 pods, 4 - 3 = 1 may go, and it is one of
        // the 3 unavailable ones (the available one stays).
        Assert.Equal(1, plan.Create!.Spec.Replicas);
        Assert.Equal([(old.Metadata.Name, 3)], plan.Scale);

        // Healthy: one available pod above the 3 needed goes.
        var healthy = Observed(old, 4, 4);
        Assert.Equal([(old.Metadata.Name, 3)], DeploymentPlanner.Plan(Deployment(4, "web:2"), [healthy], Now).Scale);
    }

    [Fact]
    public void Recreate_removes_the_old_pods_before_making_new_ones()
    {
        var old = Observed(DeploymentPlanner.Plan(Deployment(2), [], Now).Create!, 2, 2);
        var next = Deployment(2, "web:2");
        next.Spec.Strategy = new V1DeploymentStrategy { Type = "Recreate" };

        var start = DeploymentPlanner.Plan(next, [old], Now);
        Assert.Equal([(old.Metadata.Name, 0)], start.Scale);
        Assert.Equal(0, start.Create!.Spec.Replicas);

        var draining = DeploymentPlanner.Plan(next, [Observed(old, 1, 1, wanted: 0), Observed(start.Create, 0, 0)], Now);
        Assert.Empty(draining.Scale);

        var gone = DeploymentPlanner.Plan(next, [Observed(old, 0, 0, wanted: 0), Observed(start.Create, 0, 0)], Now);
        Assert.Equal([(start.Create.Metadata.Name, 2)], gone.Scale);
    }

    [Fact]
    public void Empty_old_sets_beyond_the_history_limit_are_deleted_oldest_first()
    {
        var deployment = Deployment(1);
        deployment.Spec.RevisionHistoryLimit = 1;
        var current = Observed(DeploymentPlanner.Plan(deployment, [], Now).Create!, 1, 1);
        var olds = Enumerable.Range(0, 3).Select(i =>
        {
            var set = Observed(DeploymentPlanner.Plan(Deployment(1, $"web:old{i}"), [], Now).Create!, 0, 0, wanted: 0);
            set.Metadata.CreationTimestamp = Now.UtcDateTime.AddMinutes(i);
            return set;
        }).ToList();

        var plan = DeploymentPlanner.Plan(deployment, [.. olds, current], Now);
        Assert.Equal(olds.Take(2).Select(s => s.Metadata.Name), plan.Delete);
    }

    private static V1Deployment Deployment(int replicas, string image = "web:1") => new()
    {
        Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default", Uid = "deploy-uid", Generation = 1 },
        Spec = new V1DeploymentSpec { Replicas = replicas, Selector = new V1LabelSelector { MatchLabels = Labels("app=web") }, Template = Template(image, "web") },
    };

    private static V1ReplicaSet Observed(V1ReplicaSet set, int pods, int available, int? wanted = null)
    {
        var copy = Workloads.Copy(set);
        copy.Spec.Replicas = wanted ?? copy.Spec.Replicas;
        copy.Metadata.CreationTimestamp ??= Now.UtcDateTime;
        copy.Status = new V1ReplicaSetStatus { Replicas = pods, ReadyReplicas = available, AvailableReplicas = available };
        return copy;
    }
}
