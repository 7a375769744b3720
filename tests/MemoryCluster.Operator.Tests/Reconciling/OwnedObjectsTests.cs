using k8s.Models;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Reconciling;

namespace MemoryCluster.Operator.Tests.Reconciling;

public class OwnedObjectsTests
{
    private static V1OwnerReference Owner(string kind, string name, bool controller = true) =>
        new() { ApiVersion = "memorycluster.io/v1alpha1", Kind = kind, Name = name, Uid = "u-" + name, Controller = controller };

    [Fact]
    public void An_object_a_MemoryCluster_controls_maps_to_it()
    {
        var meta = new V1ObjectMeta { Name = "demo-rw", NamespaceProperty = "apps", OwnerReferences = [Owner("MemoryCluster", "demo")] };
        Assert.Equal("apps/demo", OwnedKind<V1Service>.ClusterKey(meta));
    }

    [Fact]
    public void A_pod_controlled_by_its_StatefulSet_maps_to_its_cluster_label()
    {
        // A failover inside PostgreSQL changes only the pods' role labels: the cluster's status must hear of it.
        var meta = new V1ObjectMeta
        {
            Name = "demo-1",
            NamespaceProperty = "apps",
            OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "StatefulSet", Name = "demo", Uid = "s", Controller = true }],
            Labels = new Dictionary<string, string> { [ClusterLabels.Cluster] = "demo", ["memorycluster.io/role"] = "primary" },
        };
        Assert.Equal("apps/demo", OwnedKind<V1Pod>.ClusterKey(meta));
    }

    [Fact]
    public void The_controller_owner_wins_over_the_label_and_an_object_with_neither_maps_to_nothing()
    {
        var both = new V1ObjectMeta
        {
            Name = "x",
            NamespaceProperty = "apps",
            OwnerReferences = [Owner("MemoryCluster", "owner"), Owner("MemoryCluster", "other", controller: false)],
            Labels = new Dictionary<string, string> { [ClusterLabels.Cluster] = "label" },
        };
        Assert.Equal("apps/owner", OwnedKind<V1Pod>.ClusterKey(both));
        Assert.Null(OwnedKind<V1Pod>.ClusterKey(new V1ObjectMeta { Name = "y", NamespaceProperty = "apps", OwnerReferences = [Owner("MemoryCluster", "z", controller: false)] }));
        Assert.Null(OwnedKind<V1Pod>.ClusterKey(new V1ObjectMeta { Name = "y", NamespaceProperty = "apps", Labels = new Dictionary<string, string> { [ClusterLabels.Cluster] = "" } }));
    }
}
