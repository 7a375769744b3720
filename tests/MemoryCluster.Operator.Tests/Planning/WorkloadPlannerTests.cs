using MemoryCluster.Instance.Control;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tests.Planning;

public sealed class WorkloadPlannerTests
{
    private static PodView Pod(int ordinal, string revision = "r1", bool ready = true, bool exists = true, string[]? pending = null, ulong? id = null, ulong? runningAs = null, bool podReady = true) =>
        new($"demo-{ordinal}", ordinal, exists, revision, ready, ready, new MemberId(id ?? (ulong)ordinal + 1), ready ? new MemberId(runningAs ?? id ?? (ulong)ordinal + 1) : null, pending, podReady);

    private static string? Deleted(WorkloadPlan plan) => (plan.Action as DeletePod)?.Pod;

    private static MemberView[] Members(int count) => [.. Enumerable.Range(0, count).Select(i => new MemberView($"demo-{i}", new MemberId((ulong)i + 1), true))];

    private static WorkloadPlan Plan(int instances, int replicas, MemberView[] members, IEnumerable<PodView> pods, string primary = "demo-0", string[]? learners = null, string? update = "r1", string? switchover = null, bool changing = false, string? requested = null) =>
        WorkloadPlanner.Plan(new WorkloadInput(instances, replicas, update, [.. members.Select(m => learners?.Contains(m.Name) == true ? m with { Voter = false } : m)], changing, primary, switchover, [.. pods], requested));

    private static MemberId Id(ulong id) => new(id);

    [Fact]
    public void Nothing_to_do_when_the_size_membership_and_revision_agree()
    {
        var plan = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2)]);
        Assert.Equal(new WorkloadPlan(3, null, null), plan);
    }

    [Fact]
    public void Growing_adds_pods_then_each_member_once_its_manager_answers_one_at_a_time()
    {
        // The StatefulSet grows first; no pod answers yet.
        var plan = Plan(5, 3, Members(3), [Pod(0), Pod(1), Pod(2)]);
        Assert.Equal(5, plan.Replicas);
        Assert.Null(plan.Action);
        Assert.Equal("Scaling", plan.Progress!.Reason);

        // demo-3 answers: it joins.
        plan = Plan(5, 5, Members(3), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4, ready: false)]);
        Assert.Equal(new AddMember("demo-3", 3, Id(4)), plan.Action);

        // While demo-3 is a learner, it is asked again (the managers promote it once caught up) and demo-4 waits.
        plan = Plan(5, 5, Members(4), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], learners: ["demo-3"]);
        Assert.Equal(new AddMember("demo-3", 3, Id(4)), plan.Action);
        Assert.Contains("demo-3 is a learner", plan.Progress!.Message, StringComparison.Ordinal);

        // Nothing while a membership change commits.
        plan = Plan(5, 5, Members(4), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], learners: ["demo-3"], changing: true);
        Assert.Null(plan.Action);

        plan = Plan(5, 5, Members(4), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)]);
        Assert.Equal(new AddMember("demo-4", 4, Id(5)), plan.Action);

        plan = Plan(5, 5, Members(5), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], learners: ["demo-4"]);
        Assert.Equal("Scaling", plan.Progress!.Reason);
        Assert.Equal(new AddMember("demo-4", 4, Id(5)), plan.Action);

        plan = Plan(5, 5, Members(5), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)]);
        Assert.Equal(new WorkloadPlan(5, null, null), plan);
    }

    [Fact]
    public void Shrinking_removes_the_highest_member_first_and_keeps_its_pod_until_it_left()
    {
        PodView[] five = [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)];
        var plan = Plan(3, 5, Members(5), five);
        Assert.Equal((5, (InstanceAction?)new RemoveMember("demo-4", 4, Id(5))), (plan.Replicas, plan.Action));

        // Not while the removal commits.
        plan = Plan(3, 5, Members(5), five, changing: true);
        Assert.Equal((5, (InstanceAction?)null), (plan.Replicas, plan.Action));

        plan = Plan(3, 5, Members(4), five);
        Assert.Equal((4, (InstanceAction?)new RemoveMember("demo-3", 3, Id(4))), (plan.Replicas, plan.Action));

        plan = Plan(3, 4, Members(3), five.Take(4));
        Assert.Equal(3, plan.Replicas);
        Assert.Null(plan.Action);
    }

    [Fact]
    public void A_primary_that_is_to_leave_hands_over_first_to_a_member_that_stays()
    {
        var plan = Plan(3, 5, Members(5), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], primary: "demo-4");
        var switchover = Assert.IsType<Switchover>(plan.Action);
        Assert.Equal("demo-0", switchover.Pod);

        // While the switchover is under way, nothing else happens.
        plan = Plan(3, 5, Members(5), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], primary: "demo-4", switchover: "demo-0");
        Assert.Null(plan.Action);
        Assert.Equal(5, plan.Replicas);
    }

    [Fact]
    public void A_rolling_update_restarts_replicas_from_the_highest_ordinal_then_switches_over_then_the_old_primary()
    {
        var plan = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2)], update: "r2");
        Assert.Equal(new DeletePod("demo-2", "the new template"), plan.Action);
        Assert.Equal("RollingUpdate", plan.Progress!.Reason);

        // demo-2 restarted and is not back yet: wait.
        plan = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2, "r2", ready: false)], update: "r2");
        Assert.Null(plan.Action);

        plan = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2, "r2")], update: "r2");
        Assert.Equal("demo-1", Deleted(plan));

        plan = Plan(3, 3, Members(3), [Pod(0), Pod(1, "r2"), Pod(2, "r2")], update: "r2");
        var switchover = Assert.IsType<Switchover>(plan.Action);
        Assert.Equal("demo-1", switchover.Pod);

        // After the switchover demo-0 is a replica and restarts last.
        plan = Plan(3, 3, Members(3), [Pod(0), Pod(1, "r2"), Pod(2, "r2")], primary: "demo-1", update: "r2");
        Assert.Equal("demo-0", Deleted(plan));

        plan = Plan(3, 3, Members(3), [Pod(0, "r2"), Pod(1, "r2"), Pod(2, "r2")], primary: "demo-1", update: "r2");
        Assert.Equal(new WorkloadPlan(3, null, null), plan);
    }

    private static readonly string[] SharedBuffers = ["shared_buffers"];

    /// <summary>One reconcile: the pods (revision, ready, pending restart), the primary; the step the planner must take.</summary>
    public sealed record RestartCase(string Name, PodView[] Pods, string Primary, string Expected, string? Update = "r1")
    {
        public override string ToString() => Name;
    }

    public static TheoryData<RestartCase> RestartCases() =>
    [
        new("a reload-only parameter change: nothing pending, nothing restarts", [Pod(0), Pod(1), Pod(2)], "demo-0", "none"),
        new("every instance pending: the highest replica first", [Pod(0, pending: SharedBuffers), Pod(1, pending: SharedBuffers), Pod(2, pending: SharedBuffers)], "demo-0", "delete demo-2 (parameters pending a restart: shared_buffers)"),
        new("the restarted replica is not back: wait", [Pod(0, pending: SharedBuffers), Pod(1, pending: SharedBuffers), Pod(2, ready: false)], "demo-0", "wait"),
        new("then the next replica", [Pod(0, pending: SharedBuffers), Pod(1, pending: SharedBuffers), Pod(2)], "demo-0", "delete demo-1 (parameters pending a restart: shared_buffers)"),
        new("only the primary pending: switch over to a restarted replica", [Pod(0, pending: SharedBuffers), Pod(1), Pod(2)], "demo-0", "switchover to demo-1"),
        new("a replica still pending is never the switchover target", [Pod(0, pending: SharedBuffers), Pod(1, ready: false), Pod(2, pending: SharedBuffers)], "demo-0", "wait"),
        new("after the switchover the old primary restarts as a replica", [Pod(0, pending: SharedBuffers), Pod(1), Pod(2)], "demo-1", "delete demo-0 (parameters pending a restart: shared_buffers)"),
        new("a primary-only pending restart on a higher ordinal: the same walk", [Pod(0), Pod(1), Pod(2, pending: SharedBuffers)], "demo-2", "switchover to demo-0"),
        new("pending and outdated together: one restart, for the template", [Pod(0), Pod(1), Pod(2, "r0", pending: SharedBuffers)], "demo-0", "delete demo-2 (the new template)"),
        new("a pending restart needs no known revision", [Pod(0), Pod(1, pending: SharedBuffers), Pod(2)], "demo-0", "delete demo-1 (parameters pending a restart: shared_buffers)", Update: null),
    ];

    [Theory]
    [MemberData(nameof(RestartCases))]
    public void Parameters_pending_a_restart_roll_the_instances_like_a_rolling_update_and_reload_only_changes_restart_nothing(RestartCase @case)
    {
        var plan = Plan(3, 3, Members(3), @case.Pods, primary: @case.Primary, update: @case.Update);
        var step = plan.Action switch
        {
            DeletePod d => $"delete {d.Pod} ({d.Why})",
            Switchover s => $"switchover to {s.Pod}",
            null when plan.Progress is null => "none",
            null => "wait",
            var other => other.ToString(),
        };
        Assert.Equal(@case.Expected, step);
        if (plan.Progress is { } progress)
        {
            Assert.Equal("RollingUpdate", progress.Reason);
            Assert.Contains(" to restart: ", progress.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void No_restart_while_any_instance_is_not_ready()
    {
        var plan = Plan(3, 3, Members(3), [Pod(0), Pod(1, ready: false), Pod(2)], update: "r2");
        Assert.Null(plan.Action);
        Assert.Contains("waiting for demo-1", plan.Progress!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_membership_changes_nothing_not_even_the_size()
    {
        // The ids of new pods depend on which ids were removed: nothing grows before a manager tells.
        var plan = WorkloadPlanner.Plan(new WorkloadInput(5, 3, "r1", null, false, null, null, [Pod(0), Pod(1), Pod(2)]));
        Assert.Equal((3, (InstanceAction?)null, "Scaling"), (plan.Replicas, plan.Action, plan.Progress?.Reason));

        // The first apply creates the founding pods.
        plan = WorkloadPlanner.Plan(new WorkloadInput(5, null, null, null, false, null, null, []));
        Assert.Equal(new WorkloadPlan(5, null, null), plan);
    }

    [Fact]
    public void A_removed_members_pod_that_still_runs_as_its_old_member_restarts_before_it_is_added_under_its_new_id()
    {
        // demo-3 was member 4 (removed); the operator gives it id 6, and its manager still runs as 4.
        var plan = Plan(5, 5, Members(3), [Pod(0), Pod(1), Pod(2), Pod(3, id: 6, runningAs: 4), Pod(4, id: 7)]);
        var delete = Assert.IsType<DeletePod>(plan.Action);
        Assert.Equal("demo-3", delete.Pod);
        Assert.Contains("member 6", delete.Why, StringComparison.Ordinal);

        // Its pod is already going: wait for it.
        plan = Plan(5, 5, Members(3), [Pod(0), Pod(1), Pod(2), Pod(3, id: 6, runningAs: 4, exists: false), Pod(4, id: 7)]);
        Assert.Null(plan.Action);

        // Back as member 6: added under that id.
        plan = Plan(5, 5, Members(3), [Pod(0), Pod(1), Pod(2), Pod(3, id: 6), Pod(4, id: 7)]);
        Assert.Equal(new AddMember("demo-3", 3, Id(6)), plan.Action);
    }

    [Fact]
    public void A_learner_beyond_spec_instances_leaves_instead_of_being_promoted()
    {
        // Scaled back to 3 while demo-3 was still a learner.
        var plan = Plan(3, 4, Members(4), [Pod(0), Pod(1), Pod(2), Pod(3)], learners: ["demo-3"]);
        Assert.Equal(new RemoveMember("demo-3", 3, Id(4)), plan.Action);
        Assert.Equal(4, plan.Replicas);
    }

    [Fact]
    public void The_primary_hands_over_only_to_a_ready_voter_that_stays()
    {
        // demo-1 is not ready, demo-0 is a learner (cannot be): demo-2.
        var plan = Plan(3, 5, Members(5), [Pod(0), Pod(1, ready: false), Pod(2), Pod(3), Pod(4)], primary: "demo-3", learners: ["demo-0"]);
        Assert.Equal("demo-2", Assert.IsType<Switchover>(plan.Action).Pod);
    }

    /// <summary>Property: whatever the state, a shrink never takes a member out while another change is pending, and never the primary.</summary>
    [Fact]
    public void Shrink_steps_never_remove_the_primary_and_never_more_than_one_member_at_a_time()
    {
        for (var members = 3; members <= 5; members++)
        {
            for (var primary = 0; primary < members; primary++)
            {
                var pods = Enumerable.Range(0, 5).Select(i => Pod(i)).ToArray();
                var plan = Plan(3, 5, Members(members), pods, primary: $"demo-{primary}");
                if (plan.Action is RemoveMember remove)
                {
                    Assert.NotEqual($"demo-{primary}", remove.Pod);
                    Assert.Equal(members - 1, remove.Ordinal);
                }

                Assert.True(plan.Replicas >= members, $"the StatefulSet shrank below the membership ({members})");
            }
        }
    }

    /// <summary>A switchover a user asked for (the memorycluster.io/switchover-to annotation), case by case.</summary>
    [Theory]
    [InlineData("demo-2", "demo-0", null, false, "switchover demo-2", null)]
    [InlineData("demo-0", "demo-0", null, false, "", "done: demo-0 is the primary")]
    [InlineData("demo-7", "demo-0", null, false, "", "refused: switchover to demo-7 refused: demo-7 is not a voting member of this cluster")]
    [InlineData("demo-2", "demo-0", null, true, "", "refused: switchover to demo-2 refused: demo-2 is not ready as a replica")]
    public void A_requested_switchover_goes_to_a_ready_voter_and_is_answered_once_done_or_refused(string to, string primary, string? learner, bool notReady, string action, string? answer)
    {
        var plan = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2, ready: !notReady)], primary: primary, learners: learner is null ? null : [learner], requested: to);
        Assert.Equal(action, plan.Action is Switchover s ? $"switchover {s.Pod}" : "");
        Assert.Equal(answer, plan.Answer is null ? null : (plan.Answer.Refused ? "refused: " : "done: ") + plan.Answer.Message);
        if (plan.Action is not null)
        {
            Assert.Equal("SwitchoverInProgress", plan.Progress!.Reason);
        }
    }

    [Fact]
    public void A_requested_switchover_waits_for_a_scale_a_rolling_update_or_a_switchover_under_way()
    {
        // A rolling update first: its own walk, the request untouched (no answer).
        var rolling = Plan(3, 3, Members(3), [Pod(0), Pod(1, revision: "r0"), Pod(2)], requested: "demo-2");
        Assert.Equal("demo-1", Deleted(rolling));
        Assert.Null(rolling.Answer);

        // A scale first, also while the target is a learner still.
        var scaling = Plan(5, 3, Members(3), [Pod(0), Pod(1), Pod(2)], requested: "demo-2");
        Assert.Null(scaling.Action);
        Assert.Null(scaling.Answer);
        var learning = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2)], learners: ["demo-2"], requested: "demo-2");
        Assert.IsType<AddMember>(learning.Action);
        Assert.Null(learning.Answer);

        // A switchover already under way: wait, say so.
        var pending = Plan(3, 3, Members(3), [Pod(0), Pod(1), Pod(2)], switchover: "demo-1", requested: "demo-2");
        Assert.Null(pending.Action);
        Assert.Null(pending.Answer);
        Assert.Contains("waiting for demo-1", pending.Progress!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_primary_hands_over_only_to_a_replica_whose_pod_is_Ready_too_so_rw_has_an_endpoint_at_once()
    {
        // The replicas are updated and stream (ready by their managers); demo-1 was restarted last and its pod is not
        // Ready by the kubelet yet: the switchover goes to demo-2, although demo-1 has the lower ordinal.
        var plan = Plan(3, 3, Members(3), [Pod(0, revision: "r0"), Pod(1, podReady: false), Pod(2)]);
        Assert.Equal(new Switchover("demo-2", "rolling restart: demo-0 restarts last"), plan.Action);

        // No replica's pod Ready yet: wait.
        plan = Plan(3, 3, Members(3), [Pod(0, revision: "r0"), Pod(1, podReady: false), Pod(2, podReady: false)]);
        Assert.Null(plan.Action);
        Assert.Equal("RollingUpdate", plan.Progress!.Reason);
    }
}
