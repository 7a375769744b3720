using System.Globalization;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Controllers;

/// <summary>What the Deployment controller does in one round for one Deployment.</summary>
/// <param name="Create">The ReplicaSet of the current template, when it does not exist yet.</param>
/// <param name="Scale">ReplicaSets (by name) whose <c>spec.replicas</c> changes, and to what.</param>
/// <param name="Delete">Old, empty ReplicaSets beyond <c>revisionHistoryLimit</c>.</param>
/// <param name="Status">The Deployment's status after this round's observation.</param>
public sealed record DeploymentPlan(V1ReplicaSet? Create, IReadOnlyList<(string Name, int Replicas)> Scale, IReadOnlyList<string> Delete, V1DeploymentStatus Status);

/// <summary>
/// The Deployment controller's decisions, as Kubernetes makes them: one ReplicaSet per template (named
/// <c>DEPLOYMENT-HASH</c>, its pods labelled <c>pod-template-hash</c>). <c>RollingUpdate</c> scales the new one up
/// while all together stay within replicas + maxSurge, and the old ones down while the available pods stay at least
/// replicas - maxUnavailable (percentages of replicas: surge rounded up, unavailable down; both zero means one
/// unavailable). <c>Recreate</c> scales the old ones to zero and makes the new one once their pods are gone.
/// </summary>
public static class DeploymentPlanner
{
    public const string RevisionAnnotation = "deployment.kubernetes.io/revision";

    /// <param name="deployment">The Deployment as read.</param>
    /// <param name="sets">The ReplicaSets it controls, with their status.</param>
    /// <param name="now">The time, for the conditions' transition times.</param>
    public static DeploymentPlan Plan(V1Deployment deployment, IReadOnlyCollection<V1ReplicaSet> sets, DateTimeOffset now)
    {
        var replicas = deployment.Spec.Replicas ?? 1;
        var hash = Workloads.Hash(deployment.Spec.Template);
        var newName = deployment.Metadata.Name + "-" + hash;
        var current = sets.FirstOrDefault(s => s.Metadata.Name == newName);
        var old = sets.Where(s => s.Metadata.Name != newName).OrderBy(s => s.Metadata.CreationTimestamp ?? DateTime.MinValue).ToList();
        var scale = new List<(string, int)>();
        V1ReplicaSet? create = null;
        var (surge, unavailable) = Limits(deployment, replicas);
        var recreate = deployment.Spec.Strategy?.Type == "Recreate";
        var oldRunning = old.Sum(s => s.Status?.Replicas ?? 0);
        var oldWanted = old.Sum(s => s.Spec.Replicas ?? 0);

        if (recreate)
        {
            scale.AddRange(old.Where(s => (s.Spec.Replicas ?? 0) > 0).Select(s => (s.Metadata.Name, 0)));
            var target = oldRunning == 0 && oldWanted == 0 ? replicas : 0;
            if (current is null)
            {
                create = NewSet(deployment, newName, hash, target, sets);
            }
            else if ((current.Spec.Replicas ?? 0) != target && (target > 0 || oldWanted > 0))
            {
                scale.Add((newName, target));
            }
        }
        else
        {
            var currentWanted = current?.Spec.Replicas ?? 0;

            // Scale up: within replicas + surge over every set.
            var target = oldWanted == 0 ? replicas : Math.Min(replicas, currentWanted + Math.Max(0, replicas + surge - (oldWanted + currentWanted)));
            target = Math.Max(target, Math.Min(currentWanted, replicas));
            if (current is null)
            {
                create = NewSet(deployment, newName, hash, target, sets);
            }
            else if (target != currentWanted)
            {
                scale.Add((newName, target));
            }

            // Scale down: first the old sets' pods that are not available (they serve nothing), then available
            // ones while replicas - maxUnavailable stay available, never counting the new set's unavailable pods.
            var minAvailable = replicas - unavailable;
            var newUnavailable = current is null ? 0 : Math.Max(0, (current.Spec.Replicas ?? 0) - (current.Status?.AvailableReplicas ?? 0));
            var maxScaledDown = sets.Sum(s => s.Status?.Replicas ?? 0) - minAvailable - newUnavailable;
            var above = sets.Sum(s => s.Status?.AvailableReplicas ?? 0) - minAvailable;
            foreach (var set in old)
            {
                var has = set.Spec.Replicas ?? 0;
                var unhealthy = Math.Min(Math.Max(0, maxScaledDown), Math.Max(0, has - (set.Status?.AvailableReplicas ?? 0)));
                maxScaledDown -= unhealthy;
                var healthy = Math.Min(has - unhealthy, Math.Max(0, above));
                above -= healthy;
                if (unhealthy + healthy > 0)
                {
                    scale.Add((set.Metadata.Name, has - unhealthy - healthy));
                }
            }
        }

        var keep = deployment.Spec.RevisionHistoryLimit ?? 10;
        var empty = old.Where(s => (s.Spec.Replicas ?? 0) == 0 && (s.Status?.Replicas ?? 0) == 0).ToList();
        var delete = empty.Take(Math.Max(0, empty.Count - keep)).Select(s => s.Metadata.Name).ToList();
        return new DeploymentPlan(create, scale, delete, Status(deployment, current, sets, replicas, unavailable, now));
    }

    /// <summary>maxSurge and maxUnavailable as pod counts for <paramref name="replicas"/>.</summary>
    public static (int Surge, int Unavailable) Limits(V1Deployment deployment, int replicas)
    {
        var rolling = deployment.Spec.Strategy?.RollingUpdate;
        var surge = Count(rolling?.MaxSurge?.Value ?? "25%", replicas, up: true);
        var unavailable = Count(rolling?.MaxUnavailable?.Value ?? "25%", replicas, up: false);
        return surge == 0 && unavailable == 0 ? (0, 1) : (surge, unavailable);
    }

    private static int Count(string value, int replicas, bool up)
    {
        if (value.EndsWith('%'))
        {
            var percent = int.Parse(value.AsSpan(0, value.Length - 1), CultureInfo.InvariantCulture);
            var exact = replicas * percent / 100.0;
            return (int)(up ? Math.Ceiling(exact) : Math.Floor(exact));
        }

        return int.Parse(value, CultureInfo.InvariantCulture);
    }

    private static V1ReplicaSet NewSet(V1Deployment deployment, string name, string hash, int replicas, IReadOnlyCollection<V1ReplicaSet> sets)
    {
        var template = Workloads.Copy(deployment.Spec.Template);
        template.Metadata ??= new V1ObjectMeta();
        template.Metadata.Labels = new Dictionary<string, string>(template.Metadata.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [Workloads.TemplateHashLabel] = hash,
        };
        var selector = Workloads.Copy(deployment.Spec.Selector);
        selector.MatchLabels = new Dictionary<string, string>(selector.MatchLabels ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [Workloads.TemplateHashLabel] = hash,
        };
        var revision = sets.Select(s => s.Metadata.Annotations?.TryGetValue(RevisionAnnotation, out var r) == true && int.TryParse(r, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .DefaultIfEmpty(0).Max() + 1;
        return new V1ReplicaSet
        {
            ApiVersion = "apps/v1",
            Kind = "ReplicaSet",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = deployment.Metadata.NamespaceProperty,
                Labels = template.Metadata.Labels,
                Annotations = new Dictionary<string, string> { [RevisionAnnotation] = revision.ToString(CultureInfo.InvariantCulture) },
                OwnerReferences = [Workloads.ControllerReference("apps/v1", "Deployment", deployment.Metadata)],
            },
            Spec = new V1ReplicaSetSpec { Replicas = replicas, Selector = selector, Template = template, MinReadySeconds = deployment.Spec.MinReadySeconds },
        };
    }

    private static V1DeploymentStatus Status(V1Deployment deployment, V1ReplicaSet? current, IReadOnlyCollection<V1ReplicaSet> sets, int replicas, int unavailable, DateTimeOffset now)
    {
        var available = sets.Sum(s => s.Status?.AvailableReplicas ?? 0);
        var total = sets.Sum(s => s.Status?.Replicas ?? 0);
        var updated = current?.Status?.Replicas ?? 0;
        var complete = current is not null && updated == replicas && total == replicas && (current.Status?.AvailableReplicas ?? 0) == replicas;
        var old = deployment.Status?.Conditions ?? [];
        return new V1DeploymentStatus
        {
            ObservedGeneration = deployment.Metadata.Generation,
            Replicas = total,
            UpdatedReplicas = updated,
            ReadyReplicas = sets.Sum(s => s.Status?.ReadyReplicas ?? 0),
            AvailableReplicas = available,
            UnavailableReplicas = Math.Max(0, total - available),
            Conditions =
            [
                Condition(old, "Available", available >= replicas - unavailable,
                    available >= replicas - unavailable ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                    available >= replicas - unavailable ? "Deployment has minimum availability." : "Deployment does not have minimum availability.", now),
                Condition(old, "Progressing", true, complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
                    complete ? $"ReplicaSet \"{current!.Metadata.Name}\" has successfully progressed." : $"ReplicaSet \"{deployment.Metadata.Name}\" is progressing.", now),
            ],
        };
    }

    private static V1DeploymentCondition Condition(IList<V1DeploymentCondition> old, string type, bool ok, string reason, string message, DateTimeOffset now)
    {
        var status = ok ? "True" : "False";
        var before = old.FirstOrDefault(c => c.Type == type);
        var since = before?.Status == status ? before.LastTransitionTime : now.UtcDateTime;
        var updated = before?.Status == status && before.Reason == reason ? before.LastUpdateTime : now.UtcDateTime;
        return new V1DeploymentCondition { Type = type, Status = status, Reason = reason, Message = message, LastTransitionTime = since, LastUpdateTime = updated };
    }
}
