using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Controllers;

/// <summary>What the ReplicaSet controller does in one round for one set.</summary>
/// <param name="CreatePods">Pods to make (named by the server from <c>generateName</c>).</param>
/// <param name="DeletePods">Pods beyond the wanted count, the least useful first.</param>
/// <param name="Status">The set's status after this round's observation.</param>
public sealed record ReplicaSetPlan(IReadOnlyList<V1Pod> CreatePods, IReadOnlyList<V1Pod> DeletePods, V1ReplicaSetStatus Status);

/// <summary>
/// The ReplicaSet controller's decisions, as Kubernetes makes them: the pods it controls that are neither terminating
/// nor ended are its replicas; fewer than wanted, it makes the rest from its template; more, it deletes the least
/// useful (not on a node, then not running, then not ready, then the newest).
/// </summary>
public static class ReplicaSetPlanner
{
    public static ReplicaSetPlan Plan(V1ReplicaSet set, IReadOnlyCollection<V1Pod> pods, DateTimeOffset now)
    {
        var active = pods.Where(Workloads.IsActive).ToList();
        var wanted = set.Spec.Replicas ?? 1;
        var create = new List<V1Pod>();
        var delete = new List<V1Pod>();
        if (active.Count < wanted)
        {
            for (var i = active.Count; i < wanted; i++)
            {
                create.Add(NewPod(set));
            }
        }
        else if (active.Count > wanted)
        {
            delete.AddRange(active
                .OrderBy(p => string.IsNullOrEmpty(p.Spec?.NodeName) ? 0 : 1)
                .ThenBy(p => p.Status?.Phase == "Running" ? 1 : 0)
                .ThenBy(p => Workloads.IsReady(p) ? 1 : 0)
                .ThenByDescending(p => p.Metadata.CreationTimestamp ?? DateTime.MaxValue)
                .ThenByDescending(p => p.Metadata.Name, StringComparer.Ordinal)
                .Take(active.Count - wanted));
        }

        var minReady = set.Spec.MinReadySeconds ?? 0;
        var status = new V1ReplicaSetStatus
        {
            ObservedGeneration = set.Metadata.Generation,
            Replicas = active.Count,
            FullyLabeledReplicas = active.Count(p => Workloads.Matches(set.Spec.Template?.Metadata?.Labels, p.Metadata.Labels)),
            ReadyReplicas = active.Count(Workloads.IsReady),
            AvailableReplicas = active.Count(p => Workloads.IsAvailable(p, minReady, now)),
        };
        return new ReplicaSetPlan(create, delete, status);
    }

    private static V1Pod NewPod(V1ReplicaSet set)
    {
        var template = Workloads.Copy(set.Spec.Template);
        return new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta
            {
                GenerateName = set.Metadata.Name + "-",
                NamespaceProperty = set.Metadata.NamespaceProperty,
                Labels = template.Metadata?.Labels,
                Annotations = template.Metadata?.Annotations,
                OwnerReferences = [Workloads.ControllerReference("apps/v1", "ReplicaSet", set.Metadata)],
            },
            Spec = template.Spec,
        };
    }
}
