using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tests.Planning;

public sealed class WorkloadPlannerTests
{
    private static PodView Pod(int ordinal, string revision = "r1", bool ready = true, bool exists = true, string[]? pending = null) =>
        new($"demo-{ordinal}", ordinal, exists, revision, ready, ready, pending);

    private static string? Deleted(WorkloadPlan plan) => (plan.Action as DeletePod)?.Pod;

    private static string[] Members(int count) => [.. Enumerable.Range(0, count).Select(i => $"demo-{i}")];

    private static WorkloadPlan Plan(int instances, int replicas, string[] members, IEnumerable<PodView> pods, string primary = "demo-0", string[]? learners = null, string? update = "r1", string? switchover = null) =>
        WorkloadPlanner.Plan(new WorkloadInput(instances, replicas, update, members, learners ?? [], primary, switchover, [.. pods]));

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
        Assert.Equal(new AddMember("demo-3", 3), plan.Action);

        // While demo-3 is a learner, demo-4 waits.
        plan = Plan(5, 5, Members(4), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], learners: ["demo-3"]);
        Assert.Null(plan.Action);

        plan = Plan(5, 5, Members(4), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)]);
        Assert.Equal(new AddMember("demo-4", 4), plan.Action);

        plan = Plan(5, 5, Members(5), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)], learners: ["demo-4"]);
        Assert.Equal("Scaling", plan.Progress!.Reason);

        plan = Plan(5, 5, Members(5), [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)]);
        Assert.Equal(new WorkloadPlan(5, null, null), plan);
    }

    [Fact]
    public void Shrinking_removes_the_highest_member_first_and_keeps_its_pod_until_it_left()
    {
        PodView[] five = [Pod(0), Pod(1), Pod(2), Pod(3), Pod(4)];
        var plan = Plan(3, 5, Members(5), five);
        Assert.Equal((5, (InstanceAction?)new RemoveMember("demo-4", 4)), (plan.Replicas, plan.Action));

        plan = Plan(3, 5, Members(4), five);
        Assert.Equal((4, (InstanceAction?)new RemoveMember("demo-3", 3)), (plan.Replicas, plan.Action));

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
    public void Unknown_membership_changes_nothing()
    {
        var plan = WorkloadPlanner.Plan(new WorkloadInput(5, 3, "r1", null, [], null, null, [Pod(0), Pod(1), Pod(2)]));
        Assert.Equal(new WorkloadPlan(5, null, null), plan);
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
}
