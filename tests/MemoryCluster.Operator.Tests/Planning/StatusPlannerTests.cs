using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tests.Planning;

public sealed class StatusPlannerTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    internal static MemoryClusterResource Cluster(int instances = 3, int compute = 0, MemoryClusterStatus? status = null) => new()
    {
        Metadata = new ObjectMeta { Name = "demo", Namespace = "memory", Uid = "u-1", Generation = 2 },
        Spec = new MemoryClusterSpec { Instances = instances, Compute = new ComputeSpec { Replicas = compute } },
        Status = status,
    };

    /// <summary>A manager's /status: <paramref name="primary"/> names the primary of the control state.</summary>
    internal static StatusDocument Doc(int ordinal, InstanceRole role, bool ready, ulong epoch = 3, string primary = "demo-0", string leader = "demo-1", ulong term = 5, int members = 3, long? lag = 0, FollowState follow = FollowState.Streaming) => new()
    {
        Name = $"demo-{ordinal}",
        Id = (ulong)ordinal + 1,
        Role = role,
        Ready = ready,
        PostgresRunning = true,
        Epoch = new Epoch(epoch),
        Primary = epoch == 0 ? null : primary,
        Timeline = 2,
        LagBytes = role == InstanceRole.Replica ? lag : null,
        Follow = role == InstanceRole.Replica ? follow : FollowState.None,
        Raft = new RaftStatusDocument(term, ordinal == 1 ? "leader" : "follower", leader, [.. Enumerable.Range(0, members).Select(i => $"demo-{i}")], false),
    };

    internal static IReadOnlyList<InstanceObservation> Healthy(int instances = 3) =>
        [.. Enumerable.Range(0, instances).Select(i => new InstanceObservation($"demo-{i}", Doc(i, i == 0 ? InstanceRole.Primary : InstanceRole.Replica, true, members: instances)))];

    private static StatusPlan Plan(MemoryClusterResource cluster, IReadOnlyList<InstanceObservation> instances, WorkloadObservation? workloads = null, Progress? progress = null, IReadOnlyList<ValidationError>? errors = null) =>
        StatusPlanner.Plan(new StatusInput(cluster, errors ?? [], workloads ?? new WorkloadObservation(cluster.Spec.Instances, null, null), instances, progress, Now));

    private static Condition Get(StatusPlan plan, string type) => Assert.Single(plan.Status.Conditions!, c => c.Type == type);

    [Fact]
    public void The_first_visit_sets_every_condition_and_nothing_is_claimed_before_it_is_known()
    {
        var plan = Plan(Cluster(), [.. Enumerable.Range(0, 3).Select(i => new InstanceObservation($"demo-{i}", null, "connection refused"))]);

        Assert.Equal(ConditionTypes.All.Order(StringComparer.Ordinal), plan.Status.Conditions!.Select(c => c.Type).Order(StringComparer.Ordinal));
        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.Ready).Status);
        Assert.Equal(ConditionStatus.Unknown, Get(plan, ConditionTypes.PrimaryAvailable).Status);
        Assert.Equal(ConditionStatus.Unknown, Get(plan, ConditionTypes.QuorumHealthy).Status);
        Assert.Equal(ConditionStatus.True, Get(plan, ConditionTypes.Progressing).Status);
        Assert.Equal(Phases.Pending, plan.Status.Phase);
        Assert.All(plan.Status.Conditions!, c => Assert.Equal(2, c.ObservedGeneration));
        Assert.All(plan.Status.Instances!, i => Assert.StartsWith("unreachable: connection refused", i.Message, StringComparison.Ordinal));
        Assert.Equal(2, plan.Status.ObservedGeneration);
    }

    [Fact]
    public void A_primary_a_whole_quorum_and_streaming_replicas_make_it_ready()
    {
        var plan = Plan(Cluster(), Healthy());

        var ready = Get(plan, ConditionTypes.Ready);
        Assert.Equal((ConditionStatus.True, ConditionReasons.AllInstancesReady), (ready.Status, ready.Reason));
        Assert.Equal(Now, ready.LastTransitionTime);
        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.Degraded).Status);
        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.Progressing).Status);
        Assert.Equal(("demo-0", 3L, "demo-1", 3, Phases.Healthy), (plan.Status.CurrentPrimary, plan.Status.Epoch, plan.Status.RaftLeader, plan.Status.ReadyInstances, plan.Status.Phase));
        Assert.Contains(plan.Events, e => e.Reason == "PrimaryChanged" && e.Note.Contains("demo-0", StringComparison.Ordinal));
        Assert.Contains(plan.Events, e => e.Reason == "ClusterReady");
    }

    [Fact]
    public void An_instance_with_parameters_pending_a_restart_says_which_and_the_rolling_restart_is_progress()
    {
        var instances = Healthy().ToList();
        instances[2] = instances[2] with { Status = instances[2].Status! with { Parameters = new ParametersDocument("a1", "a1", true, ["shared_buffers"], [], null, Now) } };
        var progress = new Progress(ConditionReasons.RollingUpdate, "1 of 3 instances to restart: demo-2 (parameters pending a restart: shared_buffers)");
        var plan = Plan(Cluster(), instances, progress: progress);

        Assert.Equal(["shared_buffers"], plan.Status.Instances![2].PendingRestart);
        Assert.Null(plan.Status.Instances![0].PendingRestart);
        Assert.True(plan.Status.Instances![2].Healthy);
        Assert.Equal((ConditionStatus.True, ConditionReasons.RollingUpdate), (Get(plan, ConditionTypes.Progressing).Status, Get(plan, ConditionTypes.Progressing).Reason));
        Assert.Equal(ConditionReasons.RollingUpdate, Get(plan, ConditionTypes.Ready).Reason);
    }

    [Fact]
    public void Replanning_an_unchanged_cluster_keeps_the_transition_times_and_records_no_event()
    {
        var first = Plan(Cluster(), Healthy());
        var second = StatusPlanner.Plan(new StatusInput(Cluster(status: first.Status), [], new WorkloadObservation(3, null, null), Healthy(), null, Now.AddMinutes(5)));

        Assert.Empty(second.Events);
        Assert.Equal(first.Status.Conditions, second.Status.Conditions);
    }

    public static TheoryData<string, Func<IReadOnlyList<InstanceObservation>>, string, string> Degradations => new()
    {
        {
            "a replica does not answer",
            () => [.. Healthy().Take(2), new InstanceObservation("demo-2", null, "timed out")],
            ConditionReasons.ReplicaDown, ConditionReasons.InstancesNotReady
        },
        {
            "a replica lags by more than the threshold",
            () => [.. Healthy().Take(2), new InstanceObservation("demo-2", Doc(2, InstanceRole.Replica, true, lag: StatusPlanner.LaggingBytes + 1))],
            ConditionReasons.ReplicaLagging, ConditionReasons.AllInstancesReady
        },
        {
            "a replica cannot follow (diverged)",
            () => [.. Healthy().Take(2), new InstanceObservation("demo-2", Doc(2, InstanceRole.Replica, false, lag: null, follow: FollowState.Diverged) with { FollowWhy = "forked off" })],
            ConditionReasons.ReplicaDown, ConditionReasons.InstancesNotReady
        },
        {
            "the primary does not accept writes",
            () => [new InstanceObservation("demo-0", Doc(0, InstanceRole.Primary, false)), .. Healthy().Skip(1)],
            ConditionReasons.NoPrimary, ConditionReasons.NoPrimary
        },
        {
            "two of three follow the Raft leader",
            () => [.. Healthy().Take(2), new InstanceObservation("demo-2", Doc(2, InstanceRole.Replica, true, leader: "demo-2", term: 4))],
            ConditionReasons.QuorumAtRisk, ConditionReasons.AllInstancesReady
        },
    };

    [Theory]
    [MemberData(nameof(Degradations))]
    public void Each_degradation_names_its_reason(string what, Func<IReadOnlyList<InstanceObservation>> instances, string degraded, string readyReason)
    {
        var plan = Plan(Cluster(), instances());

        var condition = Get(plan, ConditionTypes.Degraded);
        Assert.True(condition.Status == ConditionStatus.True, what);
        Assert.Equal(degraded, condition.Reason);
        Assert.Equal(readyReason, Get(plan, ConditionTypes.Ready).Reason);
    }

    [Fact]
    public void A_replica_that_comes_back_is_an_event_and_one_that_goes_is_a_warning()
    {
        var whole = Plan(Cluster(), Healthy()).Status;
        var down = Plan(Cluster(status: whole), [.. Healthy().Take(2), new InstanceObservation("demo-2", null, "refused")]);
        Assert.Contains(down.Events, e => e.Type == "Warning" && e.Reason == ConditionReasons.InstanceUnhealthy && e.Note.StartsWith("demo-2", StringComparison.Ordinal));

        var back = Plan(Cluster(status: down.Status), Healthy());
        Assert.Contains(back.Events, e => e.Type == "Normal" && e.Reason == "InstanceRejoined");
    }

    [Fact]
    public void A_new_primary_is_a_primary_changed_event_naming_both()
    {
        var before = Plan(Cluster(), Healthy()).Status;
        IReadOnlyList<InstanceObservation> after =
        [
            new InstanceObservation("demo-0", null, "refused"),
            new InstanceObservation("demo-1", Doc(1, InstanceRole.Primary, true, epoch: 4, primary: "demo-1")),
            new InstanceObservation("demo-2", Doc(2, InstanceRole.Replica, true, epoch: 4, primary: "demo-1")),
        ];
        var plan = Plan(Cluster(status: before), after);

        var changed = Assert.Single(plan.Events, e => e.Reason == "PrimaryChanged");
        Assert.Equal("demo-1 is the primary at epoch 4 (was demo-0)", changed.Note);
        Assert.Equal((4L, "demo-1"), (plan.Status.Epoch, plan.Status.CurrentPrimary));
    }

    [Fact]
    public void A_primary_the_control_state_does_not_name_is_not_taken_for_the_primary()
    {
        // demo-0 still says primary at an old epoch; the control state names demo-1 at epoch 4, which is not ready yet.
        IReadOnlyList<InstanceObservation> instances =
        [
            new InstanceObservation("demo-0", Doc(0, InstanceRole.Primary, true, epoch: 3)),
            new InstanceObservation("demo-1", Doc(1, InstanceRole.Primary, false, epoch: 4, primary: "demo-1")),
            new InstanceObservation("demo-2", Doc(2, InstanceRole.Replica, true, epoch: 4, primary: "demo-1")),
        ];
        var plan = Plan(Cluster(), instances);

        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.PrimaryAvailable).Status);
        Assert.Equal(Phases.FailingOver, plan.Status.Phase);
        Assert.False(plan.Status.Instances!.Single(i => i.Name == "demo-0").Healthy);
    }

    [Fact]
    public void A_quorum_primary_whose_commits_wait_is_the_primary_but_not_available_and_says_why()
    {
        IReadOnlyList<InstanceObservation> instances =
        [
            new InstanceObservation("demo-0", Doc(0, InstanceRole.Primary, false) with { WaitingForStandbys = true, NotReadyWhy = "waiting for synchronous standbys: 0 of 1 replying" }),
            new InstanceObservation("demo-1", Doc(1, InstanceRole.Replica, false, follow: FollowState.Connecting)),
            new InstanceObservation("demo-2", Doc(2, InstanceRole.Replica, false, follow: FollowState.Connecting)),
        ];
        var plan = Plan(Cluster(), instances);

        var primary = Get(plan, ConditionTypes.PrimaryAvailable);
        Assert.Equal((ConditionStatus.False, ConditionReasons.CommitsBlocked), (primary.Status, primary.Reason));
        Assert.Contains("0 of 1 replying", primary.Message, StringComparison.Ordinal);
        Assert.Equal(ConditionReasons.CommitsBlocked, Get(plan, ConditionTypes.Degraded).Reason);
        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.Ready).Status);
        Assert.Equal(("demo-0", Phases.Degraded), (plan.Status.CurrentPrimary, plan.Status.Phase));
        Assert.Equal("waiting for synchronous standbys: 0 of 1 replying", plan.Status.Instances![0].Message);
    }

    [Fact]
    public void Compute_with_replicas_must_be_available_for_ready()
    {
        var plan = Plan(Cluster(compute: 2), Healthy(), new WorkloadObservation(3, 2, 1));
        Assert.Equal((ConditionStatus.False, ConditionReasons.ComputeUnavailable), (Get(plan, ConditionTypes.ComputeReady).Status, Get(plan, ConditionTypes.ComputeReady).Reason));
        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.Ready).Status);
        Assert.Equal(ConditionReasons.ComputeUnavailable, Get(plan, ConditionTypes.Degraded).Reason);

        var disabled = Plan(Cluster(compute: 0), Healthy());
        Assert.Equal(ConditionReasons.ComputeDisabled, Get(disabled, ConditionTypes.ComputeReady).Reason);
        Assert.Equal(ConditionStatus.True, Get(disabled, ConditionTypes.Ready).Status);
    }

    [Fact]
    public void An_invalid_spec_says_which_field_and_rule_and_warns_once()
    {
        ValidationError[] errors = [new("spec.instances", "must be 3 or 5", RuleIds.InstancesThreeOrFive)];
        var plan = Plan(Cluster(), [], errors: errors);

        var ready = Get(plan, ConditionTypes.Ready);
        Assert.Equal((ConditionStatus.False, ConditionReasons.InvalidSpec), (ready.Status, ready.Reason));
        Assert.Contains("spec.instances: must be 3 or 5 (rule instances-3-or-5)", ready.Message, StringComparison.Ordinal);
        Assert.Equal(Phases.Invalid, plan.Status.Phase);
        Assert.Single(plan.Events, e => e.Type == "Warning" && e.Reason == ConditionReasons.InvalidSpec);

        var again = Plan(Cluster(status: plan.Status), [], errors: errors);
        Assert.Empty(again.Events);
    }

    [Fact]
    public void Work_under_way_is_progressing_and_not_ready()
    {
        var plan = Plan(Cluster(), Healthy(), progress: new Progress(ConditionReasons.Scaling, "scaling to 5 instances"));
        Assert.Equal((ConditionStatus.True, ConditionReasons.Scaling), (Get(plan, ConditionTypes.Progressing).Status, Get(plan, ConditionTypes.Progressing).Reason));
        Assert.Equal(ConditionStatus.False, Get(plan, ConditionTypes.Ready).Status);
        Assert.Equal(Phases.Scaling, plan.Status.Phase);
    }
}
