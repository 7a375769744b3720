using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class FailoverPlannerTests
{
    private static readonly long PromoteAfter = (long)Lease.PromoteAfter.TotalMilliseconds;
    private static readonly long StoppedWritingAfter = (long)Lease.StoppedWritingAfter.TotalMilliseconds;

    /// <summary>
    /// The primary (member 1) last renewed at t = 0; it is now <paramref name="now"/>. It proved k = ⌊members/2⌋ in
    /// force unless <paramref name="quorumK"/> says otherwise.
    /// </summary>
    private static FailoverDecision Decide(long now, ReplicationMode mode = ReplicationMode.Quorum, int members = 3, long? fencedSeenAt = null, WalLine? primaryLine = null, int? quorumK = null, params PeerView[] views) =>
        FailoverPlanner.Decide(new FailoverInput(State(1, 1) with { QuorumK = quorumK ?? members / 2 }, Config(members: members, mode: mode), views.ToDictionary(v => v.Id), now, 0, fencedSeenAt, primaryLine));

    /// <summary>A replica's report read after the old primary stopped writing, and after it stopped streaming from it (epoch 1).</summary>
    private static PeerView Fresh(int id, ulong flush, WalLine? line = null, bool settled = true, ulong? replay = null) =>
        Peer(id, InstanceRole.Replica, flush: flush, replay: replay, line: line, settled: settled, stateAt: StoppedWritingAfter + 1, streaming: false) with { DetachedFrom = new Epoch(1) };

    [Fact]
    public void Quorum_mode_counts_a_replica_only_once_it_stopped_streaming_from_a_primary_that_stopped_renewing()
    {
        // Adversarial finding 1: with the primary's manager and watchdog frozen together, its backends go on committing
        // and a standby still streaming from it goes on acknowledging: a position read before it stops proves nothing.
        var attached = Decide(PromoteAfter, views: [Fresh(2, 100) with { DetachedFrom = Epoch.Zero }, Fresh(3, 300)]);
        var blocked = Assert.IsType<FailoverDecision.Blocked>(attached);
        Assert.True(blocked.DetachReplicas);
        Assert.Contains("asked mc-2 to stop streaming from mc-1", blocked.Why, StringComparison.Ordinal);

        // Stopped streaming from an earlier epoch's primary: not this one.
        Assert.IsType<FailoverDecision.Blocked>(Decide(PromoteAfter, views: [Fresh(2, 100) with { DetachedFrom = Epoch.Zero }, Fresh(3, 300) with { DetachedFrom = new Epoch(7) }]));

        // 5 members, k = 2: three of the four standbys stopped is enough, whatever the fourth does.
        Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, members: 5, views: [Fresh(2, 100), Fresh(3, 100), Fresh(4, 90), Fresh(5, 900) with { DetachedFrom = Epoch.Zero }]));

        // Not needed when the primary reported itself fenced (every process of it verified gone), nor in async mode.
        var fenced = Peer(1, InstanceRole.Stopped, fenced: 1, running: false);
        Assert.IsType<FailoverDecision.Promote>(Decide(500, fencedSeenAt: 400, views: [fenced, Fresh(2, 10) with { StateAt = 450, DetachedFrom = Epoch.Zero }, Fresh(3, 20) with { StateAt = 450, DetachedFrom = Epoch.Zero }]));
        var async = Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, ReplicationMode.Async, views: [Fresh(2, 100) with { DetachedFrom = Epoch.Zero }]));
        Assert.Equal(Id(2), async.Target);

        // Before the primary has surely stopped writing it is healthy: no replica is asked to stop.
        Assert.IsType<FailoverDecision.Healthy>(Decide(StoppedWritingAfter - 1, views: [Fresh(2, 100) with { DetachedFrom = Epoch.Zero }]));
    }

    [Fact]
    public void Quorum_mode_asks_the_replicas_to_stop_streaming_once_the_primary_stopped_writing_but_promotes_none_before_the_promotion_wait()
    {
        // double-failure-5 (e2e): the detach round after the promotion wait cost 0.31-0.47 s of every failover.
        foreach (var now in new[] { StoppedWritingAfter, (StoppedWritingAfter + PromoteAfter) / 2, PromoteAfter - 1 })
        {
            // Every replica detached and reported: still nothing promoted before ρ·L + S + M.
            var early = Assert.IsType<FailoverDecision.Blocked>(Decide(now, views: [Fresh(2, 100), Fresh(3, 300)]));
            Assert.True(early.DetachReplicas);
            Assert.Contains("stop streaming from it now", early.Why, StringComparison.Ordinal);
        }

        Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, views: [Fresh(2, 100), Fresh(3, 300)]));

        // Async mode counts no detach; a switchover in flight (its target catches up from the old primary) and
        // maintenance mode (no failover follows) are left alone until the promotion wait, as before.
        Assert.IsType<FailoverDecision.Healthy>(Decide(PromoteAfter - 1, ReplicationMode.Async, views: [Fresh(2, 100)]));
        var switching = FailoverPlanner.Decide(new FailoverInput(
            State(1, 1) with { QuorumK = 1, PendingSwitchover = Id(2) }, Config(members: 3, mode: ReplicationMode.Quorum), new[] { Fresh(2, 100) }.ToDictionary(v => v.Id), PromoteAfter - 1, 0, null, null));
        Assert.IsType<FailoverDecision.Healthy>(switching);
        var maintenance = FailoverPlanner.Decide(new FailoverInput(
            State(1, 1) with { QuorumK = 1, Maintenance = true }, Config(members: 3, mode: ReplicationMode.Quorum), new[] { Fresh(2, 100) }.ToDictionary(v => v.Id), PromoteAfter - 1, 0, null, null));
        Assert.IsType<FailoverDecision.Healthy>(maintenance);
    }

    [Fact]
    public void A_primary_within_its_lease_is_healthy_and_no_replacement_comes_before_the_promotion_wait()
    {
        Assert.IsType<FailoverDecision.Healthy>(Decide(1000, views: [Fresh(2, 10), Fresh(3, 10)]));
        Assert.IsType<FailoverDecision.Healthy>(Decide(StoppedWritingAfter - 1, views: [Fresh(2, 10), Fresh(3, 10)]));
        Assert.IsNotType<FailoverDecision.Promote>(Decide(PromoteAfter - 1, views: [Fresh(2, 10), Fresh(3, 10)]));
        Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, views: [Fresh(2, 10), Fresh(3, 10)]));
    }

    [Fact]
    public void A_primary_that_reports_itself_fenced_is_replaced_at_once()
    {
        var fenced = Peer(1, InstanceRole.Stopped, fenced: 1, running: false);
        var decision = Decide(500, fencedSeenAt: 400, views: [fenced, Fresh(2, 10) with { StateAt = 450 }, Fresh(3, 20) with { StateAt = 450 }]);
        Assert.Equal(Id(3), Assert.IsType<FailoverDecision.Promote>(decision).Target);
    }

    [Fact]
    public void Only_reports_read_after_the_old_primary_stopped_writing_count()
    {
        var stale = Peer(2, InstanceRole.Replica, flush: 10, stateAt: StoppedWritingAfter - 1);
        Assert.IsType<FailoverDecision.Blocked>(Decide(PromoteAfter, ReplicationMode.Async, views: [stale]));
    }

    [Fact]
    public void The_replica_with_the_highest_exact_position_is_promoted()
    {
        var decision = Decide(PromoteAfter, views: [Fresh(2, 100), Fresh(3, 300)]);
        Assert.Equal(Id(3), Assert.IsType<FailoverDecision.Promote>(decision).Target);
    }

    [Fact]
    public void Quorum_mode_needs_enough_exact_reports_to_prove_one_holds_every_acknowledged_commit()
    {
        // 3 members: k = 1, so both standbys must report; 5 members: k = 2, so 3 of the 4.
        Assert.Contains("1 of 2 replicas", Assert.IsType<FailoverDecision.Blocked>(Decide(PromoteAfter, views: [Fresh(2, 100)])).Why, StringComparison.Ordinal);
        Assert.IsType<FailoverDecision.Blocked>(Decide(PromoteAfter, members: 5, views: [Fresh(2, 100), Fresh(3, 100)]));
        Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, members: 5, views: [Fresh(2, 100), Fresh(3, 100), Fresh(4, 90)]));

        // Async mode promotes the best of what reports.
        Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, ReplicationMode.Async, views: [Fresh(2, 100)]));
    }

    [Theory]
    [InlineData(0, 5)]
    [InlineData(1, 4)]
    [InlineData(2, 3)]
    public void Quorum_mode_counts_with_the_k_the_primary_proved_not_the_k_of_the_membership(int quorumK, int needed)
    {
        // 5 members, k = 2 by the membership; until the primary proved it in force (a membership that raised k, or
        // standbys that left), a commit may be on one standby only, or (0) on none that is left: nothing can be proven.
        var three = Decide(PromoteAfter, members: 5, quorumK: quorumK, views: [Fresh(2, 100), Fresh(3, 100), Fresh(4, 90)]);
        var four = Decide(PromoteAfter, members: 5, quorumK: quorumK, views: [Fresh(2, 100), Fresh(3, 100), Fresh(4, 90), Fresh(5, 80)]);
        if (needed == 5)
        {
            Assert.Contains("no standby is proven to hold every acknowledged commit", Assert.IsType<FailoverDecision.Blocked>(four).Why, StringComparison.Ordinal);
            return;
        }

        Assert.IsType<FailoverDecision.Promote>(four);
        if (needed == 4)
        {
            var blocked = Assert.IsType<FailoverDecision.Blocked>(three);
            Assert.Contains("3 of 4 replicas", blocked.Why, StringComparison.Ordinal);
            Assert.Contains("4 are needed", blocked.Why, StringComparison.Ordinal);
            Assert.Contains("had not proven k = 2", blocked.Why, StringComparison.Ordinal);
        }
        else
        {
            Assert.IsType<FailoverDecision.Promote>(three);
        }
    }

    [Fact]
    public void A_replica_still_replaying_local_wal_after_a_restart_neither_counts_nor_is_chosen()
    {
        // mc-3 flushed (and acknowledged) more than mc-2, then restarted: while it replays, its position is not exact.
        var decision = Decide(PromoteAfter, views: [Fresh(2, 100), Fresh(3, 60, settled: false)]);
        var blocked = Assert.IsType<FailoverDecision.Blocked>(decision);
        Assert.Contains("mc-3 still replaying local WAL", blocked.Why, StringComparison.Ordinal);
        Assert.Equal(Id(3), Assert.IsType<FailoverDecision.Promote>(Decide(PromoteAfter, views: [Fresh(2, 100), Fresh(3, 150)])).Target);
    }

    [Fact]
    public void A_replica_on_another_branch_than_the_primarys_line_is_left_out_however_far_it_went()
    {
        // The primary promoted at epoch 3 on timeline 3 (forked from 2 at 500); mc-3 holds timeline 4 from an
        // abandoned branch (forked from 2 at 400).
        var primaryLine = Line(3, (1, 100), (2, 500));
        var onLine = Fresh(2, 600, line: primaryLine);
        var branch = Fresh(3, 900, line: Line(4, (1, 100), (2, 400)));
        var decision = Decide(PromoteAfter, ReplicationMode.Async, primaryLine: primaryLine, views: [onLine, branch]);
        Assert.Equal(Id(2), Assert.IsType<FailoverDecision.Promote>(decision).Target);

        // In quorum mode the branch does not count towards the proof either.
        Assert.IsType<FailoverDecision.Blocked>(Decide(PromoteAfter, primaryLine: primaryLine, views: [onLine, branch]));
    }

    [Fact]
    public void Positions_compare_along_the_line_a_replica_behind_the_fork_holds_what_it_shares()
    {
        // mc-2 is on the primary's timeline 2 at 600; mc-3 never crossed the fork at 500 and replayed only to 450.
        var primaryLine = Line(2, (1, 500));
        var decision = Decide(PromoteAfter, primaryLine: primaryLine, views: [Fresh(2, 600, line: primaryLine), Fresh(3, 480, replay: 450)]);
        Assert.Equal(Id(2), Assert.IsType<FailoverDecision.Promote>(decision).Target);

        // One that flushed old-timeline WAL past the fork counts only up to the fork.
        var past = Decide(PromoteAfter, primaryLine: primaryLine, views: [Fresh(2, 520, line: primaryLine), Fresh(3, 900)]);
        Assert.Equal(Id(2), Assert.IsType<FailoverDecision.Promote>(past).Target);
    }

    [Fact]
    public void Without_the_primarys_line_quorum_mode_refuses_to_choose_between_branches()
    {
        var a = Fresh(2, 600, line: Line(3, (1, 100), (2, 500)));
        var b = Fresh(3, 700, line: Line(4, (1, 100), (2, 400)));
        Assert.Contains("different branches", Assert.IsType<FailoverDecision.Blocked>(Decide(PromoteAfter, views: [a, b])).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fenced_primary_whose_manager_lives_is_restarted_at_a_new_epoch_when_no_replica_can_be_proven()
    {
        // The replicas answer, but no report read after the fence has come yet: they get time to report.
        var fenced = Peer(1, InstanceRole.Stopped, fenced: 1, running: false);
        PeerView[] views = [fenced, Peer(2, InstanceRole.Replica, stateAt: 400), Peer(3, InstanceRole.Replica, stateAt: 400)];
        Assert.IsType<FailoverDecision.Blocked>(Decide(1000, fencedSeenAt: 500, views: views));
        var restart = Decide(500 + FailoverPlanner.FreshReportWaitMs, fencedSeenAt: 500, views: views);
        Assert.Equal(Id(1), Assert.IsType<FailoverDecision.Promote>(restart).Target);
    }

    /// <summary>
    /// The fenced primary (a stalled promotion given up, say) and how many others answer: when fewer answer than the
    /// proof needs (quorum: standbys − k + 1; async: one), waiting for their reports cannot prove a replica, and the
    /// fenced primary, which holds every acknowledged commit, is restarted at once.
    /// </summary>
    [Theory]
    [InlineData(ReplicationMode.Quorum, 3, 1, false)]
    [InlineData(ReplicationMode.Quorum, 3, 2, true)]
    [InlineData(ReplicationMode.Quorum, 5, 2, false)]
    [InlineData(ReplicationMode.Quorum, 5, 3, true)]
    [InlineData(ReplicationMode.Async, 3, 0, false)]
    [InlineData(ReplicationMode.Async, 3, 1, true)]
    public void A_fenced_primary_waits_for_replica_reports_only_while_enough_members_answer_to_prove_one(ReplicationMode mode, int members, int answering, bool waits)
    {
        var views = new List<PeerView> { Peer(1, InstanceRole.Stopped, fenced: 1, running: false) };
        views.AddRange(Enumerable.Range(2, members - 1).Select(i => Peer(i, InstanceRole.Replica, stateAt: 400, reachable: i - 2 < answering)));
        var decision = Decide(1000, mode, members, fencedSeenAt: 500, views: [.. views]);
        if (waits)
        {
            Assert.Contains("waiting up to 3.0 s for replica reports", Assert.IsType<FailoverDecision.Blocked>(decision).Why, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(Id(1), Assert.IsType<FailoverDecision.Promote>(decision).Target);
        }
    }

    [Fact]
    public void Maintenance_mode_pauses_automatic_failover() =>
        Assert.Contains("maintenance", Assert.IsType<FailoverDecision.Blocked>(FailoverPlanner.Decide(new FailoverInput(
            State(1, 1) with { Maintenance = true }, Config(), new Dictionary<MemberId, PeerView> { [Id(2)] = Fresh(2, 1), [Id(3)] = Fresh(3, 1) }, PromoteAfter, 0, null, null))).Why, StringComparison.Ordinal);

    private static FailoverDecision Forced(long now, ForcedFailover? forced, bool maintenance = false, long? fencedSeenAt = null, ReplicationMode mode = ReplicationMode.Quorum, params PeerView[] views) =>
        FailoverPlanner.Decide(new FailoverInput(State(1, 1) with { QuorumK = 1, Maintenance = maintenance }, Config(mode: mode), views.ToDictionary(v => v.Id), now, 0, fencedSeenAt, null, forced));

    public static TheoryData<string, bool, int, ulong, ulong, string> ForcedCases() => new()
    {
        // case, maintenance, target (0: any), mc-2's and mc-3's positions, what the planner does
        { "paused, any target: the best is promoted all the same", true, 0, 500, 700, "promote 3" },
        { "paused, the best as target", true, 3, 500, 700, "promote 3" },
        { "a target behind the best is refused with by how much", false, 2, 500, 700, "blocked: is 200 bytes behind mc-3" },
        { "a target as far as the best (a tie) is promoted", false, 2, 700, 700, "promote 2" },
        { "unforced and paused: blocked", true, -1, 500, 700, "blocked: maintenance mode is on" },
    };

    [Theory]
    [MemberData(nameof(ForcedCases))]
    public void A_forced_failover_ignores_maintenance_and_promotes_its_target_only_when_it_holds_as_much_as_any(string name, bool maintenance, int target, ulong flush2, ulong flush3, string expected)
    {
        var forced = target < 0 ? null : new ForcedFailover(target == 0 ? MemberId.None : Id(target));
        var decision = Forced(PromoteAfter, forced, maintenance, views: [Fresh(2, flush2), Fresh(3, flush3)]);
        var actual = decision switch
        {
            FailoverDecision.Promote p => $"promote {p.Target}",
            FailoverDecision.Blocked b => "blocked: " + b.Why,
            _ => decision.ToString(),
        };
        Assert.True(expected.StartsWith("promote", StringComparison.Ordinal) ? actual == expected : actual.StartsWith("blocked", StringComparison.Ordinal) && actual.Contains(expected["blocked: ".Length..], StringComparison.Ordinal), $"{name}: {actual}");
    }

    [Fact]
    public void A_forced_target_behind_on_exact_positions_is_refused_for_good_one_not_settled_yet_is_waited_for()
    {
        var behind = Assert.IsType<FailoverDecision.Blocked>(Forced(PromoteAfter, new ForcedFailover(Id(2)), views: [Fresh(2, 500), Fresh(3, 700)]));
        Assert.True(behind.ForcedRefused);
        var unsettled = Assert.IsType<FailoverDecision.Blocked>(Forced(PromoteAfter, new ForcedFailover(Id(2)), mode: ReplicationMode.Async, views: [Fresh(2, 900, settled: false), Fresh(3, 700)]));
        Assert.False(unsettled.ForcedRefused);
        Assert.Contains("waiting for its exact position", unsettled.Why, StringComparison.Ordinal);
        var otherLine = Assert.IsType<FailoverDecision.Blocked>(Forced(PromoteAfter, new ForcedFailover(Id(3)), views: [Fresh(2, 700, line: Line(2, (1, 100))), Fresh(3, 700, line: Line(1))]));
        Assert.True(otherLine.ForcedRefused);
        Assert.Contains("is on the line", otherLine.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_forced_failover_never_shortens_the_wait_for_the_old_primary_to_stop_writing()
    {
        Assert.IsType<FailoverDecision.Healthy>(Forced(StoppedWritingAfter - 1, new ForcedFailover(Id(2)), views: [Fresh(2, 700), Fresh(3, 700)]));
        Assert.IsNotType<FailoverDecision.Promote>(Forced(PromoteAfter - 1, new ForcedFailover(Id(2)), views: [Fresh(2, 700), Fresh(3, 700)]));
    }

    [Fact]
    public void A_forced_failover_to_a_target_never_restarts_the_fenced_primary_instead()
    {
        var fenced = Peer(1, InstanceRole.Stopped, fenced: 1, running: false);
        var anyone = Forced(500 + FailoverPlanner.FreshReportWaitMs, new ForcedFailover(MemberId.None), fencedSeenAt: 500, views: [fenced]);
        Assert.Equal(Id(1), Assert.IsType<FailoverDecision.Promote>(anyone).Target);
        var toTwo = Forced(500 + FailoverPlanner.FreshReportWaitMs, new ForcedFailover(Id(2)), fencedSeenAt: 500, views: [fenced]);
        Assert.IsType<FailoverDecision.Blocked>(toTwo);
    }

    [Fact]
    public void The_lease_timings_keep_the_watchdogs_fence_before_the_leaders_promotion_even_with_drift()
    {
        // The primary's watchdog fires WatchdogAfter after its send, on a clock up to ρ slower; the leader promotes
        // PromoteAfter after its grant, later than that send.
        Assert.Empty(Lease.Problems());
        Assert.True((Lease.WatchdogAfter + Lease.StopBudget) * Lease.DriftBound < Lease.PromoteAfter);
        Assert.True(Lease.StoppedWritingAfter < Lease.PromoteAfter);
    }

    [Fact]
    public void Renewal_intervals_that_leave_too_few_tries_before_the_fence_are_refused_by_name()
    {
        Assert.Empty(LeaseTimings.For(LeaseTimings.MinimumLease).Problems());
        Assert.Contains((Lease with { RenewInterval = TimeSpan.FromMilliseconds(1500) }).Problems(), p => p.Contains("three retries", StringComparison.Ordinal));
        Assert.Contains((Lease with { RetryInterval = TimeSpan.FromMilliseconds(600) }).Problems(), p => p.Contains("no longer than the renewal interval", StringComparison.Ordinal));
        Assert.Contains((Lease with { RetryInterval = TimeSpan.Zero }).Problems(), p => p.Contains("must be positive", StringComparison.Ordinal));
    }
}
