using System.Globalization;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Controllers;

/// <summary>What the StatefulSet controller does in one round for one set.</summary>
/// <param name="CreateClaims">Claims from the set's <c>volumeClaimTemplates</c> that a pod about to be made lacks.</param>
/// <param name="CreatePods">Pods to make (their claims are in <see cref="CreateClaims"/>).</param>
/// <param name="DeletePods">Pods to delete: condemned by a scale-down, ended, or out of date under RollingUpdate.</param>
/// <param name="ClaimOwners">Claims to give one more owner reference (to be removed with that owner), by claim name.</param>
/// <param name="Status">The set's status after this round's observation.</param>
public sealed record StatefulSetPlan(
    IReadOnlyList<V1PersistentVolumeClaim> CreateClaims,
    IReadOnlyList<V1Pod> CreatePods,
    IReadOnlyList<V1Pod> DeletePods,
    IReadOnlyList<(string Claim, V1OwnerReference Owner)> ClaimOwners,
    V1StatefulSetStatus Status);

/// <summary>
/// The StatefulSet controller's decisions, as Kubernetes makes them: pods named <c>SET-ORDINAL</c> for ordinals
/// <c>start .. start+replicas-1</c>; each pod's claims (<c>TEMPLATE-SET-ORDINAL</c>) made before it and kept after it,
/// so a recreated pod gets the same volumes; <c>OrderedReady</c> makes one pod at a time in ordinal order, each once
/// the ones below it are Running and Ready, and removes from the highest ordinal down, one at a time, only while the
/// others are healthy; <c>Parallel</c> does all at once. A pod that ended is deleted (and made again next round); a
/// terminating one is waited for. <c>OnDelete</c> never replaces a pod for a new template (a pod deleted by someone
/// comes back from the current one); <c>RollingUpdate</c> replaces out-of-date pods from the highest ordinal down to
/// the partition, one at a time, while all are healthy. The persistentVolumeClaimRetentionPolicy decides which claims
/// get an owner: the set (<c>whenDeleted: Delete</c>) or a condemned pod (<c>whenScaled: Delete</c>).
/// </summary>
public static class StatefulSetPlanner
{
    public const string PodNameLabel = "statefulset.kubernetes.io/pod-name";
    public const string PodIndexLabel = "apps.kubernetes.io/pod-index";

    /// <param name="set">The StatefulSet as read.</param>
    /// <param name="pods">The pods it controls (by controller reference).</param>
    /// <param name="claims">The claims in its namespace, by name.</param>
    /// <param name="now">The time, for availability under minReadySeconds.</param>
    public static StatefulSetPlan Plan(V1StatefulSet set, IReadOnlyCollection<V1Pod> pods, IReadOnlyDictionary<string, V1PersistentVolumeClaim> claims, DateTimeOffset now)
    {
        var name = set.Metadata.Name;
        var spec = set.Spec;
        var replicas = spec.Replicas ?? 1;
        var start = spec.Ordinals?.Start ?? 0;
        var parallel = spec.PodManagementPolicy == "Parallel";
        var revision = Revision(set);
        var byOrdinal = new SortedDictionary<int, V1Pod>();
        foreach (var pod in pods)
        {
            if (OrdinalOf(name, pod.Metadata.Name) is { } ordinal)
            {
                byOrdinal[ordinal] = pod;
            }
        }

        var createClaims = new List<V1PersistentVolumeClaim>();
        var createPods = new List<V1Pod>();
        var deletePods = new List<V1Pod>();
        var claimOwners = new List<(string, V1OwnerReference)>();
        var waiting = false;

        // Wanted ordinals, lowest first.
        for (var ordinal = start; ordinal < start + replicas && !waiting; ordinal++)
        {
            if (!byOrdinal.TryGetValue(ordinal, out var pod))
            {
                foreach (var claim in ClaimsFor(set, ordinal))
                {
                    if (!claims.ContainsKey(claim.Metadata.Name))
                    {
                        createClaims.Add(claim);
                    }
                }

                createPods.Add(NewPod(set, ordinal, revision));
                waiting = !parallel;
            }
            else if (Workloads.HasEnded(pod) && !Workloads.IsTerminating(pod))
            {
                deletePods.Add(pod);
                waiting = !parallel;
            }
            else if (!Workloads.IsHealthy(pod))
            {
                waiting = !parallel;
            }
        }

        // Condemned ordinals, highest first, only while the rest are healthy when ordered.
        var condemned = byOrdinal.Where(p => p.Key < start || p.Key >= start + replicas).OrderByDescending(p => p.Key).Select(p => p.Value).ToList();
        var allHealthy = byOrdinal.Where(p => p.Key >= start && p.Key < start + replicas).All(p => Workloads.IsHealthy(p.Value))
            && byOrdinal.Count(p => p.Key >= start && p.Key < start + replicas) == replicas;
        foreach (var pod in condemned)
        {
            if (!parallel && (waiting || Workloads.IsTerminating(pod) || !allHealthy))
            {
                break;
            }

            if (Workloads.IsTerminating(pod))
            {
                continue;
            }

            if (spec.PersistentVolumeClaimRetentionPolicy?.WhenScaled == "Delete")
            {
                var owner = new V1OwnerReference { ApiVersion = "v1", Kind = "Pod", Name = pod.Metadata.Name, Uid = pod.Metadata.Uid, BlockOwnerDeletion = true };
                foreach (var template in spec.VolumeClaimTemplates ?? [])
                {
                    var claim = ClaimName(template, name, OrdinalOf(name, pod.Metadata.Name)!.Value);
                    if (claims.TryGetValue(claim, out var held) && held.Metadata.OwnerReferences?.Any(o => o.Uid == owner.Uid) != true)
                    {
                        claimOwners.Add((claim, owner));
                    }
                }
            }

            deletePods.Add(pod);
            waiting = !parallel;
        }

        // RollingUpdate: one out-of-date pod at a time, from the highest ordinal down to the partition.
        if (spec.UpdateStrategy?.Type is null or "RollingUpdate" && deletePods.Count == 0 && createPods.Count == 0 && allHealthy)
        {
            var partition = spec.UpdateStrategy?.RollingUpdate?.Partition ?? 0;
            var stale = byOrdinal.Where(p => p.Key >= start + partition && p.Key < start + replicas && RevisionOf(p.Value) != revision)
                .OrderByDescending(p => p.Key).Select(p => p.Value).FirstOrDefault();
            if (stale is not null)
            {
                deletePods.Add(stale);
            }
        }

        return new StatefulSetPlan(createClaims, createPods, deletePods, claimOwners, Status(set, byOrdinal.Values, revision, now));
    }

    /// <summary>The name of the revision of the set's current template (<c>SET-HASH</c>), as pods carry it.</summary>
    public static string Revision(V1StatefulSet set) => set.Metadata.Name + "-" + Workloads.Hash(set.Spec.Template);

    public static int? OrdinalOf(string set, string pod) =>
        pod.Length > set.Length + 1 && pod.StartsWith(set + "-", StringComparison.Ordinal)
        && int.TryParse(pod.AsSpan(set.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal)
        && ordinal.ToString(CultureInfo.InvariantCulture) == pod[(set.Length + 1)..]
            ? ordinal
            : null;

    public static string ClaimName(V1PersistentVolumeClaim template, string set, int ordinal) =>
        $"{template.Metadata.Name}-{set}-{ordinal.ToString(CultureInfo.InvariantCulture)}";

    private static string? RevisionOf(V1Pod pod) => pod.Metadata.Labels?.TryGetValue(Workloads.RevisionLabel, out var r) == true ? r : null;

    private static IEnumerable<V1PersistentVolumeClaim> ClaimsFor(V1StatefulSet set, int ordinal)
    {
        foreach (var template in set.Spec.VolumeClaimTemplates ?? [])
        {
            var labels = new Dictionary<string, string>(template.Metadata?.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
            foreach (var (key, value) in set.Spec.Selector?.MatchLabels ?? new Dictionary<string, string>())
            {
                labels[key] = value;
            }

            var owners = set.Spec.PersistentVolumeClaimRetentionPolicy?.WhenDeleted == "Delete"
                ? new List<V1OwnerReference> { new() { ApiVersion = "apps/v1", Kind = "StatefulSet", Name = set.Metadata.Name, Uid = set.Metadata.Uid, BlockOwnerDeletion = true } }
                : null;
            yield return new V1PersistentVolumeClaim
            {
                ApiVersion = "v1",
                Kind = "PersistentVolumeClaim",
                Metadata = new V1ObjectMeta
                {
                    Name = ClaimName(template, set.Metadata.Name, ordinal),
                    NamespaceProperty = set.Metadata.NamespaceProperty,
                    Labels = labels,
                    Annotations = template.Metadata?.Annotations,
                    OwnerReferences = owners,
                },
                Spec = Workloads.Copy(template.Spec),
            };
        }
    }

    private static V1Pod NewPod(V1StatefulSet set, int ordinal, string revision)
    {
        var template = Workloads.Copy(set.Spec.Template);
        var name = set.Metadata.Name + "-" + ordinal.ToString(CultureInfo.InvariantCulture);
        var labels = new Dictionary<string, string>(template.Metadata?.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [PodNameLabel] = name,
            [PodIndexLabel] = ordinal.ToString(CultureInfo.InvariantCulture),
            [Workloads.RevisionLabel] = revision,
        };
        var spec = template.Spec;
        spec.Hostname = name;
        spec.Subdomain = set.Spec.ServiceName;
        var volumes = (spec.Volumes ?? []).ToList();
        foreach (var claim in set.Spec.VolumeClaimTemplates ?? [])
        {
            volumes.RemoveAll(v => v.Name == claim.Metadata.Name);
            volumes.Add(new V1Volume
            {
                Name = claim.Metadata.Name,
                PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = ClaimName(claim, set.Metadata.Name, ordinal) },
            });
        }

        spec.Volumes = volumes;
        return new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = set.Metadata.NamespaceProperty,
                Labels = labels,
                Annotations = template.Metadata?.Annotations,
                OwnerReferences = [Workloads.ControllerReference("apps/v1", "StatefulSet", set.Metadata)],
            },
            Spec = spec,
        };
    }

    private static V1StatefulSetStatus Status(V1StatefulSet set, IEnumerable<V1Pod> pods, string revision, DateTimeOffset now)
    {
        var list = pods.ToList();
        var updated = list.Count(p => RevisionOf(p) == revision);
        var current = set.Status?.CurrentRevision ?? revision;
        var replicas = set.Spec.Replicas ?? 1;
        if (updated == replicas && list.Count == replicas)
        {
            current = revision;
        }

        return new V1StatefulSetStatus
        {
            ObservedGeneration = set.Metadata.Generation,
            Replicas = list.Count,
            ReadyReplicas = list.Count(p => Workloads.IsReady(p) && !Workloads.IsTerminating(p)),
            AvailableReplicas = list.Count(p => Workloads.IsAvailable(p, set.Spec.MinReadySeconds ?? 0, now)),
            CurrentReplicas = list.Count(p => RevisionOf(p) == current),
            UpdatedReplicas = updated,
            CurrentRevision = current,
            UpdateRevision = revision,
            CollisionCount = set.Status?.CollisionCount ?? 0,
        };
    }
}
