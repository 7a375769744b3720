using k8s.Models;
using MemoryCluster.Kube.Cluster.Controllers;

namespace MemoryCluster.Kube.Tests.Cluster;

/// <summary>Objects as the API server would hand them to a controller: the workloads and their pods in a given state.</summary>
internal static class Objects
{
    public static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    public static Dictionary<string, string> Labels(params string[] pairs) =>
        pairs.Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);

    public static V1PodTemplateSpec Template(string image = "app:1", string app = "db") => new()
    {
        Metadata = new V1ObjectMeta { Labels = Labels("app=" + app) },
        Spec = new V1PodSpec
        {
            Containers = [new V1Container { Name = "main", Image = image, Ports = [new V1ContainerPort { Name = "postgres", ContainerPort = 5432, Protocol = "TCP" }] }],
        },
    };

    public static V1StatefulSet StatefulSet(int replicas, string policy = "OrderedReady", string update = "OnDelete", string image = "app:1",
        string whenDeleted = "Retain", string whenScaled = "Retain", int? partition = null) => new()
        {
            Metadata = new V1ObjectMeta { Name = "demo", NamespaceProperty = "default", Uid = "set-uid", Generation = 3 },
            Spec = new V1StatefulSetSpec
            {
                Replicas = replicas,
                PodManagementPolicy = policy,
                ServiceName = "demo-hl",
                Selector = new V1LabelSelector { MatchLabels = Labels("app=db") },
                Template = Template(image),
                UpdateStrategy = new V1StatefulSetUpdateStrategy
                {
                    Type = update,
                    RollingUpdate = partition is null ? null : new V1RollingUpdateStatefulSetStrategy { Partition = partition },
                },
                PersistentVolumeClaimRetentionPolicy = new V1StatefulSetPersistentVolumeClaimRetentionPolicy { WhenDeleted = whenDeleted, WhenScaled = whenScaled },
                VolumeClaimTemplates =
            [
                new V1PersistentVolumeClaim
                {
                    Metadata = new V1ObjectMeta { Name = "data", Labels = Labels("app=db") },
                    Spec = new V1PersistentVolumeClaimSpec { AccessModes = ["ReadWriteOnce"] },
                },
            ],
            },
        };

    /// <summary>A pod of <paramref name="set"/> at <paramref name="ordinal"/>, made from its current template, in the given state.</summary>
    public static V1Pod SetPod(V1StatefulSet set, int ordinal, string state = "ready", string? revision = null) =>
        WithState(new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                Name = $"demo-{ordinal}",
                NamespaceProperty = "default",
                Uid = $"pod-{ordinal}",
                Labels = new Dictionary<string, string>(Labels("app=db")) { [Workloads.RevisionLabel] = revision ?? StatefulSetPlanner.Revision(set) },
                OwnerReferences = [Workloads.ControllerReference("apps/v1", "StatefulSet", set.Metadata)],
            },
            Spec = Workloads.Copy(set.Spec.Template.Spec),
        }, state);

    /// <summary>
    /// A pod in a state: "pending" (made, on no node), "running" (not ready), "ready", "terminating" (ready, being
    /// deleted), "failed".
    /// </summary>
    public static V1Pod WithState(V1Pod pod, string state, string ip = "127.0.1.1")
    {
        pod.Spec ??= new V1PodSpec();
        pod.Spec.NodeName = state == "pending" ? null : "node-0";
        pod.Status = state switch
        {
            "pending" => new V1PodStatus { Phase = "Pending" },
            "failed" => new V1PodStatus { Phase = "Failed", PodIP = ip },
            _ => new V1PodStatus
            {
                Phase = "Running",
                PodIP = ip,
                Conditions = [new V1PodCondition { Type = "Ready", Status = state == "running" ? "False" : "True", LastTransitionTime = Now.UtcDateTime.AddMinutes(-1) }],
            },
        };
        if (state == "terminating")
        {
            pod.Metadata.DeletionTimestamp = Now.UtcDateTime.AddSeconds(30);
        }

        return pod;
    }

    public static Dictionary<string, V1PersistentVolumeClaim> Claims(params int[] ordinals) =>
        ordinals.Select(o => new V1PersistentVolumeClaim { Metadata = new V1ObjectMeta { Name = $"data-demo-{o}", Uid = $"claim-{o}" } })
            .ToDictionary(c => c.Metadata.Name, StringComparer.Ordinal);

    /// <summary>Reads until the condition holds (every 50 ms, up to <paramref name="seconds"/>); fails naming what was last seen.</summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"not reached within {seconds} s: {what}; last seen {k8s.KubernetesJson.Serialize(value)}");
            }

            await Task.Delay(50);
        }
    }

    public static string Names(IEnumerable<V1Pod> pods) => string.Join(",", pods.Select(p => p.Metadata.Name ?? p.Metadata.GenerateName));
}
