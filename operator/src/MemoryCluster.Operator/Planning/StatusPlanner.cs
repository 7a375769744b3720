using System.Globalization;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;
using MemoryCluster.Kube.Controller;

namespace MemoryCluster.Operator.Planning;

/// <summary>One instance pod as the operator read it: its manager's <c>/status</c>, or why it could not.</summary>
public sealed record InstanceObservation(string Pod, StatusDocument? Status, string? Error = null);

/// <summary>What the workloads' own status says (null: the object does not exist yet).</summary>
public sealed record WorkloadObservation(int? InstancePods, int? ComputeReplicas, int? ComputeAvailable)
{
    public static WorkloadObservation None { get; } = new(null, null, null);
}

/// <summary>Work the operator is doing on the cluster (a scale, a rolling update), from the other planners.</summary>
public sealed record Progress(string Reason, string Message);

/// <summary>An Event to record on the MemoryCluster.</summary>
public sealed record PlannedEvent(string Type, string Reason, string Action, string Note);

public sealed record StatusInput(
    MemoryClusterResource Cluster,
    IReadOnlyList<ValidationError> Errors,
    WorkloadObservation Workloads,
    IReadOnlyList<InstanceObservation> Instances,
    Progress? Progress,
    DateTimeOffset Now);

public sealed record StatusPlan(MemoryClusterStatus Status, IReadOnlyList<PlannedEvent> Events);

/// <summary>
/// Turns what the operator observed into the MemoryCluster's status and the Events of its transitions. Pure.
/// Every condition is set on the first visit (Unknown until known); Ready is True only when a primary accepts
/// writes, the Raft quorum is whole, every replica streams and compute (when it has replicas) is available.
/// </summary>
public static class StatusPlanner
{
    /// <summary>A replica this far behind the primary's WAL is lagging (Degraded, reason ReplicaLagging).</summary>
    public const long LaggingBytes = 16L * 1024 * 1024;

    private const int MessageLength = 256;

    public static StatusPlan Plan(StatusInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var cluster = input.Cluster;
        var old = cluster.Status ?? new MemoryClusterStatus();
        var generation = cluster.Metadata.Generation;
        var names = ClusterNames.Of(cluster);
        var events = new List<PlannedEvent>();

        if (input.Errors.Count > 0)
        {
            var message = "invalid spec: " + string.Join("; ", input.Errors.Select(e => e.RuleId is null ? $"{e.Path}: {e.Message}" : $"{e.Path}: {e.Message} (rule {e.RuleId})"));
            var invalid = Condition(ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.InvalidSpec, message, generation);
            IReadOnlyList<Condition> conditions = EveryCondition(old.Conditions, input.Now, generation);
            conditions = Conditions.Set(conditions, invalid, input.Now);
            conditions = Conditions.Set(conditions, Condition(ConditionTypes.Progressing, ConditionStatus.False, ConditionReasons.InvalidSpec, "waiting for a valid spec; nothing was changed", generation), input.Now);
            if (Conditions.Find(old.Conditions, ConditionTypes.Ready)?.Message != message)
            {
                events.Add(new PlannedEvent(EventTypes.Warning, ConditionReasons.InvalidSpec, "Validate", message));
            }

            return new StatusPlan(old with { Phase = Phases.Invalid, Conditions = conditions, ObservedGeneration = generation }, events);
        }

        var view = ClusterView.Of(cluster, input.Instances);
        var instances = input.Instances.Select(i => Instance(i, view)).ToList();
        var ready = new List<Condition>
        {
            PrimaryCondition(view, generation),
            QuorumCondition(view, generation),
            ComputeCondition(cluster, input.Workloads, generation),
        };
        var degraded = DegradedCondition(view, instances, input.Workloads, cluster, generation);
        var progressing = ProgressingCondition(view, input.Progress, generation);
        var readyCondition = ReadyCondition(view, ready, instances, degraded, input.Progress, generation);

        IReadOnlyList<Condition> all = EveryCondition(old.Conditions, input.Now, generation);
        foreach (var condition in ready.Append(degraded).Append(progressing).Append(readyCondition))
        {
            all = Conditions.Set(all, condition, input.Now);
        }

        var status = old with
        {
            Phase = PhaseOf(view, readyCondition, degraded, input.Progress),
            Conditions = all,
            CurrentPrimary = view.Primary?.Name ?? (view.Bootstrapping ? null : old.CurrentPrimary),
            Epoch = view.Epoch > 0 ? (long)view.Epoch : old.Epoch,
            RaftLeader = view.RaftLeader,
            ReadyInstances = instances.Count(i => i.Healthy == true),
            Instances = instances,
            Selector = $"{ClusterLabels.Cluster}={names.Cluster},{ClusterLabels.Component}={ClusterLabels.PostgresComponent}",
            ObservedGeneration = generation,
        };

        events.AddRange(Transitions(old, status));
        return new StatusPlan(status, events);
    }

    /// <summary>Events for what changed between two statuses.</summary>
    internal static IEnumerable<PlannedEvent> Transitions(MemoryClusterStatus old, MemoryClusterStatus now)
    {
        if (now.CurrentPrimary is { } primary && old.CurrentPrimary != primary)
        {
            yield return new PlannedEvent(EventTypes.Normal, "PrimaryChanged", "Failover",
                old.CurrentPrimary is null
                    ? $"{primary} is the primary at epoch {now.Epoch}"
                    : $"{primary} is the primary at epoch {now.Epoch} (was {old.CurrentPrimary})");
        }

        var before = (old.Instances ?? []).ToDictionary(i => i.Name, StringComparer.Ordinal);
        foreach (var instance in now.Instances ?? [])
        {
            before.TryGetValue(instance.Name, out var was);
            if (instance.Healthy == true && was?.Healthy == false)
            {
                yield return new PlannedEvent(EventTypes.Normal, "InstanceRejoined", "Observe", $"{instance.Name} is ready again as {instance.Role}");
            }
            else if (instance.Healthy == false && was?.Healthy == true)
            {
                yield return new PlannedEvent(EventTypes.Warning, ConditionReasons.InstanceUnhealthy, "Observe", $"{instance.Name} is not ready: {instance.Message}");
            }
        }

        var oldReady = Conditions.Find(old.Conditions, ConditionTypes.Ready);
        var newReady = Conditions.Find(now.Conditions, ConditionTypes.Ready);
        if (newReady?.Status == ConditionStatus.True && oldReady?.Status != ConditionStatus.True)
        {
            yield return new PlannedEvent(EventTypes.Normal, "ClusterReady", "Observe", newReady.Message);
        }
    }

    private static List<Condition> EveryCondition(IReadOnlyList<Condition>? old, DateTimeOffset now, long? generation)
    {
        IReadOnlyList<Condition> conditions = old ?? [];
        foreach (var type in ConditionTypes.All)
        {
            if (Conditions.Find(conditions, type) is null)
            {
                conditions = Conditions.Set(conditions, Condition(type, ConditionStatus.Unknown, ConditionReasons.NotYetObserved, "not observed yet", generation), now);
            }
        }

        return [.. conditions];
    }

    private static Condition Condition(string type, string status, string reason, string message, long? generation) => new()
    {
        Type = type,
        Status = status,
        Reason = reason,
        Message = message,
        ObservedGeneration = generation,
        LastTransitionTime = default,
    };

    private static Condition PrimaryCondition(ClusterView view, long? generation)
    {
        if (view.Primary is { Ready: false } waiting)
        {
            return Condition(ConditionTypes.PrimaryAvailable, ConditionStatus.False, ConditionReasons.CommitsBlocked,
                $"{waiting.Name} is the primary at epoch {view.Epoch} but its commits wait: {waiting.NotReadyWhy ?? "too few synchronous standbys reply"}", generation);
        }

        if (view.Primary is { } primary)
        {
            return Condition(ConditionTypes.PrimaryAvailable, ConditionStatus.True, ConditionReasons.PrimaryElected, $"{primary.Name} accepts writes at epoch {view.Epoch}", generation);
        }

        if (view.Bootstrapping)
        {
            return Condition(ConditionTypes.PrimaryAvailable, ConditionStatus.Unknown, ConditionReasons.Bootstrapping,
                view.Reachable == 0 ? "no instance answers yet" : "the Raft quorum has not chosen the first primary yet", generation);
        }

        if (view.Fenced is { } fenced)
        {
            return Condition(ConditionTypes.PrimaryAvailable, ConditionStatus.False, ConditionReasons.PrimaryFenced,
                $"{fenced.Name} fenced itself at epoch {fenced.Epoch.Value}: {fenced.FenceReason ?? "its lease ran out"}", generation);
        }

        var named = view.NamedPrimary is null ? "no primary is named" : $"{view.NamedPrimary} is named primary at epoch {view.Epoch} but does not accept writes";
        return Condition(ConditionTypes.PrimaryAvailable, ConditionStatus.False, ConditionReasons.NoPrimary, named, generation);
    }

    private static Condition QuorumCondition(ClusterView view, long? generation)
    {
        if (view.Reachable == 0)
        {
            return Condition(ConditionTypes.QuorumHealthy, ConditionStatus.Unknown, ConditionReasons.NotYetObserved, "no instance answers", generation);
        }

        var text = $"{view.WithLeader} of {view.Voters} members follow Raft leader {view.RaftLeader ?? "(none)"}; {view.Majority} needed";
        return view.WithLeader >= view.Majority && view.RaftLeader is not null
            ? Condition(ConditionTypes.QuorumHealthy, ConditionStatus.True, ConditionReasons.QuorumAvailable, text, generation)
            : Condition(ConditionTypes.QuorumHealthy, ConditionStatus.False, ConditionReasons.QuorumLost, text, generation);
    }

    private static Condition ComputeCondition(MemoryClusterResource cluster, WorkloadObservation workloads, long? generation)
    {
        var wanted = cluster.Spec.Compute.Replicas;
        if (wanted == 0)
        {
            return Condition(ConditionTypes.ComputeReady, ConditionStatus.True, ConditionReasons.ComputeDisabled, "spec.compute.replicas is 0", generation);
        }

        if (workloads.ComputeReplicas is null)
        {
            return Condition(ConditionTypes.ComputeReady, ConditionStatus.Unknown, ConditionReasons.NotYetObserved, "the compute Deployment does not exist yet", generation);
        }

        var available = workloads.ComputeAvailable ?? 0;
        return available >= wanted
            ? Condition(ConditionTypes.ComputeReady, ConditionStatus.True, ConditionReasons.ComputeAvailable, $"{available} of {wanted} compute pods available", generation)
            : Condition(ConditionTypes.ComputeReady, ConditionStatus.False, ConditionReasons.ComputeUnavailable, $"{available} of {wanted} compute pods available", generation);
    }

    private static Condition DegradedCondition(ClusterView view, List<InstanceStatus> instances, WorkloadObservation workloads, MemoryClusterResource cluster, long? generation)
    {
        if (view.Bootstrapping)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.False, ConditionReasons.Bootstrapping, "the cluster has not had its first primary yet", generation);
        }

        if (view.Primary is null)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.NoPrimary, "no instance accepts writes", generation);
        }

        if (!view.Primary.Ready)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.CommitsBlocked,
                $"{view.Primary.Name}: {view.Primary.NotReadyWhy ?? "commits wait for synchronous standbys"}", generation);
        }

        if (view.WithLeader < view.Majority)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.QuorumLost, $"{view.WithLeader} of {view.Voters} members in the Raft quorum", generation);
        }

        var down = instances.Where(i => i.Healthy != true && i.Name != view.Primary.Name).ToList();
        if (down.Count > 0)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.ReplicaDown,
                string.Join("; ", down.Select(d => $"{d.Name}: {d.Message ?? "not ready"}")), generation);
        }

        var lagging = instances.Where(i => i.LagBytes > LaggingBytes).ToList();
        if (lagging.Count > 0)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.ReplicaLagging,
                string.Join("; ", lagging.Select(l => $"{l.Name} is {l.LagBytes} bytes behind")), generation);
        }

        if (view.Voters > 1 && view.WithLeader == view.Majority && view.WithLeader < view.Voters)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.QuorumAtRisk,
                $"{view.WithLeader} of {view.Voters} members in the Raft quorum: one more loss stops failover", generation);
        }

        var compute = cluster.Spec.Compute.Replicas;
        if (compute > 0 && (workloads.ComputeAvailable ?? 0) < compute)
        {
            return Condition(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.ComputeUnavailable, $"{workloads.ComputeAvailable ?? 0} of {compute} compute pods available", generation);
        }

        return Condition(ConditionTypes.Degraded, ConditionStatus.False, ConditionReasons.Healthy, "every instance is ready for its role", generation);
    }

    private static Condition ProgressingCondition(ClusterView view, Progress? progress, long? generation)
    {
        if (progress is not null)
        {
            return Condition(ConditionTypes.Progressing, ConditionStatus.True, progress.Reason, progress.Message, generation);
        }

        if (view.Bootstrapping)
        {
            return Condition(ConditionTypes.Progressing, ConditionStatus.True, ConditionReasons.Bootstrapping, "waiting for the instances to choose the first primary", generation);
        }

        if (view.PendingSwitchover is { } to)
        {
            return Condition(ConditionTypes.Progressing, ConditionStatus.True, ConditionReasons.SwitchoverInProgress, $"switching over to {to}", generation);
        }

        return Condition(ConditionTypes.Progressing, ConditionStatus.False, ConditionReasons.UpToDate, "every object is as the spec says", generation);
    }

    private static Condition ReadyCondition(ClusterView view, List<Condition> ready, List<InstanceStatus> instances, Condition degraded, Progress? progress, long? generation)
    {
        if (view.Bootstrapping)
        {
            return Condition(ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.Bootstrapping, "waiting for the first primary", generation);
        }

        foreach (var condition in ready)
        {
            if (condition.Status != ConditionStatus.True)
            {
                return Condition(ConditionTypes.Ready, ConditionStatus.False, condition.Reason, condition.Message, generation);
            }
        }

        if (degraded.Status == ConditionStatus.True && degraded.Reason is ConditionReasons.ReplicaDown)
        {
            return Condition(ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.InstancesNotReady, degraded.Message, generation);
        }

        if (progress is not null)
        {
            return Condition(ConditionTypes.Ready, ConditionStatus.False, progress.Reason, progress.Message, generation);
        }

        var replicas = instances.Count - 1;
        return Condition(ConditionTypes.Ready, ConditionStatus.True, ConditionReasons.AllInstancesReady,
            string.Create(CultureInfo.InvariantCulture, $"{view.Primary!.Name} accepts writes; {replicas} replicas streaming"), generation);
    }

    private static string PhaseOf(ClusterView view, Condition ready, Condition degraded, Progress? progress)
    {
        if (view.Bootstrapping)
        {
            return view.Reachable == 0 ? Phases.Pending : Phases.Bootstrapping;
        }

        if (view.Primary is null)
        {
            return Phases.FailingOver;
        }

        if (view.PendingSwitchover is not null)
        {
            return Phases.SwitchingOver;
        }

        if (progress?.Reason == ConditionReasons.Scaling)
        {
            return Phases.Scaling;
        }

        return ready.Status == ConditionStatus.True || degraded.Status != ConditionStatus.True ? Phases.Healthy : Phases.Degraded;
    }

    private static InstanceStatus Instance(InstanceObservation observation, ClusterView view)
    {
        if (observation.Status is not { } s)
        {
            return new InstanceStatus
            {
                Name = observation.Pod,
                Role = InstanceRoles.Unknown,
                Healthy = false,
                Message = Clip("unreachable: " + (observation.Error ?? "no answer")),
            };
        }

        var primary = s.Role == InstanceRole.Primary;
        var role = s.Role switch
        {
            InstanceRole.Primary => InstanceRoles.Primary,
            InstanceRole.Replica => InstanceRoles.Replica,
            _ => InstanceRoles.Unknown,
        };
        string? message = null;
        if (!s.Ready)
        {
            message = s.NotReadyWhy is { } notReady ? notReady
                : s.Fenced ? $"fenced: {s.FenceReason}"
                : s.FollowWhy is { } why ? $"{s.Follow}: {why}"
                : !s.PostgresRunning ? "PostgreSQL is not running" + (s.Activity is { } a ? $" ({a})" : string.Empty)
                : s.Activity ?? (primary ? "primary not accepting writes" : $"replica {s.Follow}");
        }
        else if (!primary && s.LagBytes > LaggingBytes)
        {
            message = $"lagging: {s.LagBytes} bytes behind";
        }

        // A primary that is not the one the control state names at the current epoch is not healthy, whatever it says.
        var healthy = s.Ready && (!primary || view.Primary?.Name == s.Name);
        return new InstanceStatus
        {
            Name = observation.Pod,
            Role = role,
            Timeline = s.Timeline,
            Lsn = (primary ? s.WriteLsn : s.ReplayLsn ?? s.FlushLsn)?.ToString(),
            LagBytes = primary ? 0 : s.LagBytes,
            Healthy = healthy,
            Message = message is null ? null : Clip(message),
            PendingRestart = s.Parameters is { PendingRestart: true } parameters ? parameters.PendingRestartNames : null,
        };
    }

    private static string Clip(string text) => text.Length <= MessageLength ? text : text[..(MessageLength - 1)] + "…";
}

/// <summary>
/// The cluster as the reachable managers agree it is: the highest epoch, the primary the control state names at it,
/// the Raft leader of the highest term and how many voters its members report (learners, shown "NAME (learner)",
/// do not count). Read by the status and workload planners and by the executor, so all three see one primary.
/// </summary>
internal sealed record ClusterView(
    int Voters,
    int Reachable,
    ulong Epoch,
    StatusDocument? Primary,
    string? NamedPrimary,
    StatusDocument? Fenced,
    string? RaftLeader,
    int WithLeader,
    string? PendingSwitchover)
{
    /// <summary>How a manager's /status shows a member of the Raft membership that does not vote yet.</summary>
    public const string LearnerSuffix = " (learner)";

    public int Majority => (Voters / 2) + 1;

    /// <summary>No member has reported an epoch yet: the first primary has not been chosen.</summary>
    public bool Bootstrapping => Epoch == 0;

    public static ClusterView Of(MemoryClusterResource cluster, IReadOnlyList<InstanceObservation> observations)
    {
        var statuses = observations.Where(o => o.Status is not null).Select(o => o.Status!).ToList();
        var epoch = statuses.Count == 0 ? 0UL : statuses.Max(s => s.Epoch.Value);
        var current = statuses.Where(s => s.Epoch.Value == epoch).ToList();
        var named = current.Select(s => s.Primary).FirstOrDefault(p => p is not null);

        // The primary: the member named at the current epoch, saying it is primary and ready (it holds the lease).
        // A quorum primary whose commits wait for standbys is still the primary (writes go there, and wait).
        var primary = current.FirstOrDefault(s => s.Name == named && s.Role == InstanceRole.Primary && (s.Ready || s.WaitingForStandbys));
        var fenced = primary is null ? current.FirstOrDefault(s => s.Name == named && s.Fenced) : null;

        // The Raft leader of the highest term anyone reports, and how many members follow it in that term.
        var term = statuses.Count == 0 ? 0UL : statuses.Max(s => s.Raft.Term);
        var leader = statuses.Where(s => s.Raft.Term == term).Select(s => s.Raft.Leader).FirstOrDefault(l => l is not null);
        var withLeader = leader is null ? 0 : statuses.Count(s => s.Raft.Term == term && s.Raft.Leader == leader);
        var voters = statuses.Select(s => s.Raft.Members.Count(m => !m.EndsWith(LearnerSuffix, StringComparison.Ordinal))).Where(n => n > 0).DefaultIfEmpty(cluster.Spec.Instances).Max();
        return new ClusterView(voters, statuses.Count, epoch, primary, named, fenced, leader, withLeader, current.Select(s => s.PendingSwitchover).FirstOrDefault(p => p is not null));
    }
}
