using System.Security.Cryptography;
using System.Text;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Cluster.Controllers;

/// <summary>The kinds the controllers handle that the operator's own client has no type for.</summary>
public static class ClusterTypes
{
    public static ResourceType<V1ReplicaSet> ReplicaSet { get; } = ResourceTypes.Model<V1ReplicaSet>((o, m) => o with { Metadata = m });

    public static ResourceType<V1EndpointSlice> EndpointSlice { get; } = ResourceTypes.Model<V1EndpointSlice>((o, m) => o with { Metadata = m });
}

/// <summary>What the workload controllers read the same way: pod health, controller references, template hashes.</summary>
public static class Workloads
{
    /// <summary>Label of a pod (and StatefulSet status) naming the revision of the template it was made from.</summary>
    public const string RevisionLabel = "controller-revision-hash";

    /// <summary>Label a Deployment puts on its ReplicaSets and their pods.</summary>
    public const string TemplateHashLabel = "pod-template-hash";

    public static bool IsTerminating(V1Pod pod) => pod.Metadata.DeletionTimestamp is not null;

    /// <summary>Ended for good: the pod's containers will not run again.</summary>
    public static bool HasEnded(V1Pod pod) => pod.Status?.Phase is "Succeeded" or "Failed";

    /// <summary>Counted by a ReplicaSet: neither terminating nor ended.</summary>
    public static bool IsActive(V1Pod pod) => !IsTerminating(pod) && !HasEnded(pod);

    public static bool IsReady(V1Pod pod) =>
        pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    /// <summary>Running, Ready and not terminating: what OrderedReady waits for.</summary>
    public static bool IsHealthy(V1Pod pod) => pod.Status?.Phase == "Running" && IsReady(pod) && !IsTerminating(pod);

    /// <summary>Ready for at least <paramref name="minReadySeconds"/> at <paramref name="now"/>.</summary>
    public static bool IsAvailable(V1Pod pod, int minReadySeconds, DateTimeOffset now)
    {
        if (!IsReady(pod) || IsTerminating(pod))
        {
            return false;
        }

        if (minReadySeconds <= 0)
        {
            return true;
        }

        var since = pod.Status!.Conditions!.First(c => c.Type == "Ready").LastTransitionTime;
        return since is { } t && new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)).AddSeconds(minReadySeconds) <= now;
    }

    /// <summary>Whether <paramref name="obj"/>'s controller is the object <paramref name="owner"/> (same kind and uid).</summary>
    public static bool IsControlledBy(IMetadata<V1ObjectMeta> obj, string kind, V1ObjectMeta owner) =>
        obj.Metadata?.OwnerReferences?.Any(r => r.Controller == true && r.Kind == kind && r.Uid == owner.Uid) == true;

    /// <summary>The controller reference a workload puts on what it makes.</summary>
    public static V1OwnerReference ControllerReference(string apiVersion, string kind, V1ObjectMeta owner) =>
        new() { ApiVersion = apiVersion, Kind = kind, Name = owner.Name, Uid = owner.Uid, Controller = true, BlockOwnerDeletion = true };

    /// <summary>A short stable hash of a pod template (or any model), as the name suffix of a revision.</summary>
    public static string Hash(object model)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(KubernetesJson.Serialize(model)));
        return Convert.ToHexStringLower(hash, 0, 5);
    }

    /// <summary>A deep copy of a model, through its JSON.</summary>
    public static T Copy<T>(T model) => KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(model));

    /// <summary>Whether every label of <paramref name="selector"/> is on <paramref name="labels"/> (an empty selector matches nothing).</summary>
    public static bool Matches(IDictionary<string, string>? selector, IDictionary<string, string>? labels) =>
        selector is { Count: > 0 } && labels is not null && selector.All(s => labels.TryGetValue(s.Key, out var v) && v == s.Value);

    /// <summary>A label selector's matchLabels and matchExpressions, applied to labels.</summary>
    public static bool Matches(V1LabelSelector? selector, IDictionary<string, string>? labels)
    {
        if (selector is null)
        {
            return false;
        }

        labels ??= new Dictionary<string, string>();
        var byLabels = selector.MatchLabels is null || selector.MatchLabels.All(s => labels.TryGetValue(s.Key, out var v) && v == s.Value);
        var byExpressions = selector.MatchExpressions is null || selector.MatchExpressions.All(e => e.OperatorProperty switch
        {
            "In" => labels.TryGetValue(e.Key, out var v) && e.Values.Contains(v),
            "NotIn" => !labels.TryGetValue(e.Key, out var v) || !e.Values.Contains(v),
            "Exists" => labels.ContainsKey(e.Key),
            "DoesNotExist" => !labels.ContainsKey(e.Key),
            _ => false,
        });
        return byLabels && byExpressions && (selector.MatchLabels?.Count > 0 || selector.MatchExpressions?.Count > 0);
    }
}
