using MemoryCluster.Api;

namespace MemoryCluster.Operator.Planning;

/// <summary>One instance pod as the workload planner needs it.</summary>
/// <param name="Name">The pod's name (and the member's).</param>
/// <param name="Ordinal">Its StatefulSet ordinal.</param>
/// <param name="Exists">The pod object exists (not being deleted).</param>
/// <param name="Revision">Its <c>controller-revision-hash</c> label.</param>
/// <param name="Ready">Its manager reports it ready for its role (a replica streams, the primary accepts writes).</param>
/// <param name="Reachable">Its manager answered.</param>
/// <param name="PendingRestart">Parameters its PostgreSQL takes only at a restart (its manager's <c>parameters.pendingRestartNames</c>); null or empty when none.</param>
public sealed record PodView(string Name, int Ordinal, bool Exists, string? Revision, bool Ready, bool Reachable, IReadOnlyList<string>? PendingRestart = null)
{
    public bool NeedsRestart => PendingRestart is { Count: > 0 };
}

/// <summary>What the workload planner reads.</summary>
/// <param name="Instances">spec.instances.</param>
/// <param name="StatefulSetReplicas">The StatefulSet's spec.replicas now; null when it does not exist.</param>
/// <param name="UpdateRevision">The StatefulSet's status.updateRevision: the revision of its current template.</param>
/// <param name="Members">The committed Raft membership (pod names, voters and learners); null when no manager could tell.</param>
/// <param name="Learners">Members that are learners still (not voting yet).</param>
/// <param name="Primary">The pod that is the primary now, if any.</param>
/// <param name="PendingSwitchover">The target of a switchover under way, if any.</param>
/// <param name="Pods">Every pod of ordinal below max(spec.instances, StatefulSet replicas).</param>
public sealed record WorkloadInput(
    int Instances,
    int? StatefulSetReplicas,
    string? UpdateRevision,
    IReadOnlyList<string>? Members,
    IReadOnlyList<string> Learners,
    string? Primary,
    string? PendingSwitchover,
    IReadOnlyList<PodView> Pods);

/// <summary>A step the operator takes through an instance manager or on a pod.</summary>
public abstract record InstanceAction(string Pod);

/// <summary>Ask the managers to add <paramref name="Pod"/> to the Raft membership (it joins as a learner and votes once caught up).</summary>
public sealed record AddMember(string Pod, int Ordinal) : InstanceAction(Pod);

/// <summary>Ask the managers to take <paramref name="Pod"/> out of the Raft membership before its pod goes.</summary>
public sealed record RemoveMember(string Pod, int Ordinal) : InstanceAction(Pod);

/// <summary>Ask the primary to hand over to <paramref name="Pod"/>.</summary>
public sealed record Switchover(string Pod, string Reason) : InstanceAction(Pod);

/// <summary>Delete the pod so the StatefulSet recreates it from its current template (updateStrategy OnDelete).</summary>
/// <param name="Pod">The pod.</param>
/// <param name="Why">"the new template", or the parameters that wait for a restart.</param>
public sealed record DeletePod(string Pod, string Why) : InstanceAction(Pod);

/// <summary>The StatefulSet size to apply, at most one action, and what the operator is doing.</summary>
public sealed record WorkloadPlan(int Replicas, InstanceAction? Action, Progress? Progress);

/// <summary>
/// Scale and rolling updates, one step per reconcile. Pure. Scale: a new pod joins the Raft membership as a learner
/// once its manager answers; a member leaves the membership before its pod goes (the primary hands over first), one
/// at a time, so the quorum never drops below a majority of the membership in force. Rolling update (updateStrategy
/// OnDelete, so only the operator restarts pods): only when every instance is ready, replicas first from the highest
/// ordinal, each back and streaming before the next; then a switchover to an updated replica; then the old primary,
/// now a replica. A scale finishes before a rolling update starts. A rolling restart is the same walk over the instances
/// whose managers report parameters pending a restart; a parameter change that a reload applies restarts nothing (the
/// ConfigMap is not part of the pod template).
/// </summary>
public static class WorkloadPlanner
{
    public static WorkloadPlan Plan(WorkloadInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.StatefulSetReplicas is null || input.Members is null)
        {
            // First apply, or no manager could say who the members are: keep the size the spec asks for (or what exists).
            return new WorkloadPlan(Math.Max(input.Instances, input.StatefulSetReplicas ?? 0), null, null);
        }

        var members = input.Members.ToHashSet(StringComparer.Ordinal);
        var byOrdinal = input.Pods.OrderBy(p => p.Ordinal).ToList();
        var leaving = byOrdinal.Where(p => p.Ordinal >= input.Instances && members.Contains(p.Name)).ToList();
        var highestMember = byOrdinal.Where(p => members.Contains(p.Name)).Select(p => p.Ordinal + 1).DefaultIfEmpty(0).Max();

        // Shrink: members above spec.instances leave first, the highest first; the pods go only after.
        if (leaving.Count > 0)
        {
            var replicas = Math.Max(input.Instances, highestMember);
            var progress = new Progress(ConditionReasons.Scaling, $"scaling to {input.Instances} instances: {string.Join(", ", leaving.Select(l => l.Name))} leaving the Raft membership");
            var last = leaving[^1];
            if (input.PendingSwitchover is not null)
            {
                return new WorkloadPlan(replicas, null, progress);
            }

            if (last.Name == input.Primary || leaving.Any(l => l.Name == input.Primary))
            {
                var target = Best(byOrdinal.Where(p => p.Ordinal < input.Instances && members.Contains(p.Name) && p.Ready));
                return new WorkloadPlan(replicas, target is null ? null : new Switchover(target.Name, $"{input.Primary} leaves the cluster (scale to {input.Instances})"), progress);
            }

            return new WorkloadPlan(replicas, new RemoveMember(last.Name, last.Ordinal), progress);
        }

        // Grow: the pods exist first; each joins once its manager answers.
        var missing = Enumerable.Range(0, input.Instances)
            .Select(o => byOrdinal.FirstOrDefault(p => p.Ordinal == o) ?? new PodView($"#{o}", o, false, null, false, false))
            .Where(p => !members.Contains(p.Name))
            .ToList();
        if (missing.Count > 0)
        {
            var progress = new Progress(ConditionReasons.Scaling, $"scaling to {input.Instances} instances: waiting for {string.Join(", ", missing.Select(m => m.Name))} to join");
            var joining = missing.FirstOrDefault(m => m.Reachable);
            return new WorkloadPlan(input.Instances, joining is null || input.Learners.Count > 0 ? null : new AddMember(joining.Name, joining.Ordinal), progress);
        }

        if (input.Learners.Count > 0)
        {
            return new WorkloadPlan(input.Instances, null, new Progress(ConditionReasons.Scaling, $"waiting for {string.Join(", ", input.Learners)} to catch up and vote"));
        }

        if (input.StatefulSetReplicas != input.Instances)
        {
            return new WorkloadPlan(input.Instances, null, new Progress(ConditionReasons.Scaling, $"scaling the StatefulSet to {input.Instances} pods"));
        }

        return Rolling(input, byOrdinal);
    }

    private static WorkloadPlan Rolling(WorkloadInput input, List<PodView> byOrdinal)
    {
        bool Outdated(PodView p) => input.UpdateRevision is not null && p.Revision != input.UpdateRevision;
        bool Stale(PodView p) => Outdated(p) || p.NeedsRestart;
        string Why(PodView p) => Outdated(p) ? "the new template" : $"parameters pending a restart: {string.Join(", ", p.PendingRestart!)}";

        var stale = byOrdinal.Where(p => p.Exists && Stale(p)).ToList();
        if (stale.Count == 0)
        {
            return new WorkloadPlan(input.Instances, null, null);
        }

        var progress = new Progress(ConditionReasons.RollingUpdate, $"{stale.Count} of {byOrdinal.Count} instances to restart: {string.Join(", ", stale.Select(o => $"{o.Name} ({Why(o)})"))}");
        var notReady = byOrdinal.Where(p => !p.Ready || !p.Exists).ToList();
        if (notReady.Count > 0 || input.PendingSwitchover is not null)
        {
            // One at a time: the last one restarted must be back and streaming first (and the PDB allows one down).
            return new WorkloadPlan(input.Instances, null, progress with { Message = progress.Message + $"; waiting for {string.Join(", ", notReady.Select(n => n.Name).DefaultIfEmpty(input.PendingSwitchover!))}" });
        }

        var replica = stale.Where(p => p.Name != input.Primary).OrderByDescending(p => p.Ordinal).FirstOrDefault();
        if (replica is not null)
        {
            return new WorkloadPlan(input.Instances, new DeletePod(replica.Name, Why(replica)), progress);
        }

        // Only the primary is left: hand over to an up-to-date replica, then it restarts as a replica.
        var target = Best(byOrdinal.Where(p => p.Name != input.Primary && !Stale(p)));
        return target is null || input.Primary is null || !byOrdinal.Any(p => p.Name == input.Primary)
            ? new WorkloadPlan(input.Instances, null, progress)
            : new WorkloadPlan(input.Instances, new Switchover(target.Name, $"rolling restart: {input.Primary} restarts last"), progress);
    }

    /// <summary>The switchover target: the lowest ordinal among ready ones (the manager refuses one that is not caught up).</summary>
    private static PodView? Best(IEnumerable<PodView> candidates) => candidates.Where(c => c.Ready).OrderBy(c => c.Ordinal).FirstOrDefault();
}
