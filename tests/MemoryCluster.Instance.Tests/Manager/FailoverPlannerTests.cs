using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Manager;

namespace MemoryCluster.Instance.Tests.Manager;

public sealed class FailoverPlannerTests
{
    private static readonly LeaseTimings Timings = LeaseTimings.Default;
    private static readonly long PromoteAfter = (long)Timings.PromoteAfter.TotalMilliseconds;

    private static ControlState Control(ulong epoch, ulong primary, bool maintenance = false) =>
        ControlState.Initial with { Epoch = new Epoch(epoch), Primary = new MemberId(primary), Maintenance = maintenance };

    private static PeerView Replica(ulong id, ulong receive, long stateAt = 100_000, long timeline = 1, bool reachable = true, bool running = true) =>
        new(id, $"mc-{id}", reachable, running ? "replica" : "unknown", false, false, receive, receive, timeline, running, 0, stateAt);

    private static PeerView Primary(ulong id, bool reachable = true, ulong fenced = 0) =>
        new(id, $"mc-{id}", reachable, "unknown", false, false, 0, 0, 1, false, fenced, 100_000);

    private static FailoverInput Input(ControlState control, long now, long lastRenewal, long? fencedSeen = null, bool quorum = true, int members = 3, params PeerView[] views) =>
        new(control, members, quorum, views.ToDictionary(v => v.Id), now, lastRenewal, fencedSeen, Timings);

    [Fact]
    public void A_primary_holding_its_lease_is_left_alone()
    {
        var decision = FailoverPlanner.Decide(Input(Control(3, 1), now: 10_000, lastRenewal: 9_800, views: [Primary(1, reachable: false), Replica(2, 50), Replica(3, 60)]));
        Assert.IsType<FailoverDecision.Healthy>(decision);
    }

    [Fact]
    public void No_promotion_until_drift_times_lease_plus_stop_plus_margin_after_the_last_renewal()
    {
        var views = new[] { Primary(1, reachable: false), Replica(2, 50, stateAt: 20_000), Replica(3, 60, stateAt: 20_000) };
        var justBefore = FailoverPlanner.Decide(Input(Control(3, 1), now: 10_000 + PromoteAfter - 1, lastRenewal: 10_000, views: views));
        Assert.Contains("may be promoted after", Assert.IsType<FailoverDecision.Healthy>(justBefore).Why, StringComparison.Ordinal);

        var after = FailoverPlanner.Decide(Input(Control(3, 1), now: 10_000 + PromoteAfter, lastRenewal: 10_000, views: views));
        Assert.Equal(3UL, Assert.IsType<FailoverDecision.Promote>(after).Target);
    }

    [Fact]
    public void After_a_silent_primary_only_reports_read_once_it_must_have_stopped_writing_count()
    {
        var stopped = 10_000 + (long)Timings.StoppedWritingAfter.TotalMilliseconds;
        var now = 10_000 + PromoteAfter;
        var early = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, views: [Primary(1, reachable: false), Replica(2, 90, stopped - 1), Replica(3, 60, now)]));
        Assert.Contains("1 of 2 replicas", Assert.IsType<FailoverDecision.Blocked>(early).Why, StringComparison.Ordinal);
        var late = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, views: [Primary(1, reachable: false), Replica(2, 90, stopped + 1), Replica(3, 60, now)]));
        Assert.Equal(2UL, Assert.IsType<FailoverDecision.Promote>(late).Target);
    }

    [Fact]
    public void The_replica_with_the_highest_received_position_is_chosen_and_ties_go_to_the_lowest_id()
    {
        var now = 10_000 + PromoteAfter + 500;
        var highest = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, views: [Primary(1, reachable: false), Replica(2, 90, now), Replica(3, 60, now)]));
        Assert.Equal(2UL, Assert.IsType<FailoverDecision.Promote>(highest).Target);
        var tie = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, views: [Primary(1, reachable: false), Replica(3, 90, now), Replica(2, 90, now)]));
        Assert.Equal(2UL, Assert.IsType<FailoverDecision.Promote>(tie).Target);
    }

    [Fact]
    public void A_primary_that_reports_itself_fenced_is_replaced_at_once_using_only_reports_read_after_the_fence()
    {
        var control = Control(3, 1);

        // Reports older than the fence do not count: a later acknowledged commit could be missing from them.
        var stale = FailoverPlanner.Decide(Input(control, now: 5_100, lastRenewal: 5_000, fencedSeen: 5_050, views: [Primary(1, fenced: 3), Replica(2, 50, stateAt: 5_000), Replica(3, 60, stateAt: 5_040)]));
        Assert.Contains("waiting up to", Assert.IsType<FailoverDecision.Blocked>(stale).Why, StringComparison.Ordinal);

        var fresh = FailoverPlanner.Decide(Input(control, now: 5_400, lastRenewal: 5_000, fencedSeen: 5_050, views: [Primary(1, fenced: 3), Replica(2, 50, stateAt: 5_300), Replica(3, 60, stateAt: 5_300)]));
        var promote = Assert.IsType<FailoverDecision.Promote>(fresh);
        Assert.Equal(3UL, promote.Target);
        Assert.Contains("reported its Postgres stopped and itself fenced", promote.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fence_report_for_an_older_epoch_is_not_a_failure_of_the_current_primary()
    {
        var decision = FailoverPlanner.Decide(Input(Control(4, 1), now: 5_100, lastRenewal: 5_000, fencedSeen: null, views: [Primary(1, fenced: 3), Replica(2, 50, stateAt: 5_090), Replica(3, 60, stateAt: 5_090)]));
        Assert.IsType<FailoverDecision.Healthy>(decision);
    }

    [Fact]
    public void Quorum_mode_with_three_instances_needs_both_replicas_to_prove_one_holds_every_acknowledged_commit()
    {
        var now = 10_000 + PromoteAfter + 500;
        var decision = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, views: [Primary(1, reachable: false), Replica(2, 90, now), Replica(3, 0, now, reachable: false)]));
        var blocked = Assert.IsType<FailoverDecision.Blocked>(decision);
        Assert.Contains("quorum mode: 1 of 2 replicas", blocked.Why, StringComparison.Ordinal);
        Assert.Contains("2 are needed", blocked.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Async_mode_promotes_the_best_replica_it_can_reach()
    {
        var now = 10_000 + PromoteAfter + 500;
        var decision = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, quorum: false, views: [Primary(1, reachable: false), Replica(2, 90, now), Replica(3, 0, now, reachable: false)]));
        Assert.Equal(2UL, Assert.IsType<FailoverDecision.Promote>(decision).Target);
    }

    [Fact]
    public void Quorum_mode_with_five_instances_promotes_with_three_of_four_replicas_reporting()
    {
        var now = 10_000 + PromoteAfter + 500;
        PeerView[] Views(bool thirdUp) => [Primary(1, reachable: false), Replica(2, 70, now), Replica(3, 80, now), Replica(4, 75, now, reachable: thirdUp), Replica(5, 0, now, reachable: false)];
        Assert.Equal(3UL, Assert.IsType<FailoverDecision.Promote>(FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, members: 5, views: Views(true)))).Target);
        Assert.Contains("2 of 4 replicas", Assert.IsType<FailoverDecision.Blocked>(FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, members: 5, views: Views(false)))).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fenced_primary_with_no_provable_replacement_is_restarted_at_a_new_epoch_after_the_report_wait()
    {
        var views = new[] { Primary(1, fenced: 3), Replica(2, 90, stateAt: 7_000), Replica(3, 0, reachable: false) };
        var early = FailoverPlanner.Decide(Input(Control(3, 1), now: 6_000, lastRenewal: 5_000, fencedSeen: 5_500, views: views));
        Assert.IsType<FailoverDecision.Blocked>(early);
        var late = FailoverPlanner.Decide(Input(Control(3, 1), now: 5_500 + (long)FailoverPlanner.FreshReportWait.TotalMilliseconds, lastRenewal: 5_000, fencedSeen: 5_500, views: views));
        var promote = Assert.IsType<FailoverDecision.Promote>(late);
        Assert.Equal(1UL, promote.Target);
        Assert.Contains("restarting mc-1 as primary at a new epoch", promote.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Replicas_on_an_older_timeline_are_not_compared_with_the_newest()
    {
        var now = 10_000 + PromoteAfter + 500;
        var decision = FailoverPlanner.Decide(Input(Control(3, 1), now, 10_000, quorum: false, views: [Primary(1, reachable: false), Replica(2, 900, now, timeline: 1), Replica(3, 60, now, timeline: 2)]));
        Assert.Equal(3UL, Assert.IsType<FailoverDecision.Promote>(decision).Target);
    }

    [Fact]
    public void Maintenance_mode_pauses_automatic_failover_and_says_so()
    {
        var now = 10_000 + PromoteAfter + 500;
        var decision = FailoverPlanner.Decide(Input(Control(3, 1, maintenance: true), now, 10_000, views: [Primary(1, reachable: false), Replica(2, 90, now), Replica(3, 60, now)]));
        Assert.Contains("maintenance", Assert.IsType<FailoverDecision.Blocked>(decision).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Lease_rules_hold_for_the_defaults_and_reject_a_lease_too_short_to_renew()
    {
        Assert.Empty(Timings.Problems());
        Assert.Equal(TimeSpan.FromMilliseconds(1800), Timings.FenceAfter);
        Assert.Equal(TimeSpan.FromMilliseconds(3450), Timings.PromoteAfter);

        // The old primary has stopped (by its own rule or its watchdog's, with clocks apart by the drift bound)
        // before the leader may promote.
        Assert.True(Timings.StoppedWritingAfter < Timings.PromoteAfter);
        Assert.Equal((Timings.WatchdogAfter + Timings.StopBudget) * Timings.DriftBound, Timings.StoppedWritingAfter);
        Assert.NotEmpty((LeaseTimings.Default with { Lease = TimeSpan.FromMilliseconds(1200) }).Problems());
    }

    /// <summary>
    /// The quorum-mode guarantee: the standbys' flushed positions are arbitrary; a commit was acknowledged iff
    /// at least k = n/2 standbys had flushed it, so the highest acknowledged position is the k-th highest of
    /// theirs. Whatever subset of them reports, a promoted replica holds it.
    /// </summary>
    [Property(MaxTest = 2000)]
    public Property In_quorum_mode_a_promoted_replica_holds_every_acknowledged_commit() =>
        Prop.ForAll(
            Gen.Elements(3, 5).ToArbitrary(),
            Gen.ArrayOf(Gen.Choose(0, 1000), 4).ToArbitrary(),
            Gen.Choose(0, 31).ToArbitrary(),
            (members, positions, flags) =>
            {
                var reporting = Enumerable.Range(0, 4).Select(i => (flags & (1 << i)) != 0).ToArray();
                var fencedReport = (flags & 16) != 0;
                var standbys = Enumerable.Range(0, members - 1).Select(i => (Id: (ulong)(i + 2), Lsn: (ulong)positions[i], Reports: reporting[i])).ToList();
                var k = members / 2;
                var acknowledged = standbys.Select(s => s.Lsn).OrderDescending().ElementAt(k - 1);
                var now = 100_000L;
                var views = new List<PeerView> { Primary(1, reachable: fencedReport, fenced: fencedReport ? 3UL : 0) };
                views.AddRange(standbys.Select(s => Replica(s.Id, s.Lsn, now, reachable: s.Reports)));
                var decision = FailoverPlanner.Decide(new FailoverInput(Control(3, 1), members, true, views.ToDictionary(v => v.Id), now, 10_000, fencedReport ? 90_000 : null, Timings));
                return decision switch
                {
                    FailoverDecision.Promote { Target: 1 } => fencedReport,
                    FailoverDecision.Promote p => standbys.Single(s => s.Id == p.Target).Lsn >= acknowledged,
                    _ => true,
                };
            });

    [Property(MaxTest = 1000)]
    public Property Nothing_is_promoted_while_the_primary_may_still_hold_its_lease_and_has_not_reported_a_fence() =>
        Prop.ForAll(
            Gen.Choose(0, (int)PromoteAfter - 1).ToArbitrary(),
            ArbMap.Default.ArbFor<bool>(),
            (silent, primaryReachable) =>
            {
                var now = 50_000L + silent;
                var decision = FailoverPlanner.Decide(Input(Control(3, 1), now, 50_000, quorum: false, views: [Primary(1, reachable: primaryReachable), Replica(2, 90, now), Replica(3, 60, now)]));
                return decision is FailoverDecision.Healthy;
            });
}
