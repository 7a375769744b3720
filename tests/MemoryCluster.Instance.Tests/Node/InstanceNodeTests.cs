using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Raft;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

/// <summary>The node's rules, driven input by input as the host drives it.</summary>
public sealed class InstanceNodeTests
{
    private static readonly long Startup = (long)Lease.Lease.TotalMilliseconds;
    private static readonly long FenceAfter = (long)Lease.FenceAfter.TotalMilliseconds;
    private static readonly long WatchdogAfter = (long)Lease.WatchdogAfter.TotalMilliseconds;

    /// <summary>A node and its clock; <see cref="Step"/> remembers every action it returned.</summary>
    private sealed class Harness(int self = 1, int members = 3, ReplicationMode mode = ReplicationMode.Quorum, LeaseTimings? lease = null)
    {
        public InstanceNode Node { get; } = new(Config(self, members, mode, lease));

        public long Now { get; set; }

        public List<NodeAction> All { get; } = [];

        public IReadOnlyList<NodeAction> Step(Func<long, NodeInput> input)
        {
            var actions = Node.Step(input(Now));
            All.AddRange(actions);

            // A replica's slot step (the slots it keeps for a promotion) is done at once, as on an idle host: the
            // tests of what a replica does next do not answer it themselves.
            foreach (var slots in actions.OfType<PostgresAction.EnsureSlots>().Where(_ => Node.Status().Role == InstanceRole.Replica))
            {
                All.AddRange(Node.Step(new ActionDone(Now, slots.Id, Outcome.Done, null, DataKind.Standby)));
            }

            return actions;
        }

        public IReadOnlyList<NodeAction> Tick(long ms)
        {
            Now += ms;
            return Step(now => new Tick(now));
        }

        public IReadOnlyList<NodeAction> Raft(ControlState control, int leader = 2, bool isLeader = false) =>
            Step(now => new RaftObserved(now, new RaftView(isLeader ? RaftRole.Leader : RaftRole.Follower, new Term(1), Id(leader), isLeader, false), control));

        public T Single<T>(IReadOnlyList<NodeAction> actions)
            where T : NodeAction => Assert.Single(actions.OfType<T>());

        /// <summary>Runs the steps (their actions are kept), then reads the node's latest action of a type.</summary>
        public T Then<T>(IReadOnlyList<NodeAction> steps, Func<T> read)
        {
            _ = steps;
            return read();
        }

        /// <summary>The latest action of type <typeparamref name="T"/> the node asked for so far.</summary>
        public T Last<T>()
            where T : NodeAction => All.OfType<T>().LastOrDefault() ?? throw new Xunit.Sdk.XunitException($"the node never asked for {typeof(T).Name}");

        private readonly HashSet<long> _answered = [];

        /// <summary>
        /// Lets <paramref name="ms"/> pass in 50 ms ticks, answering as a healthy host would: renewals granted (when
        /// <paramref name="grant"/>), probes healthy, PostgreSQL actions done, and after each tick the state query
        /// <paramref name="observe"/> returns.
        /// </summary>
        public void Run(long ms, Func<PgObservation?> observe, bool grant = true)
        {
            var asked = All.OfType<RequestRenewal>().Where(r => !_answered.Contains(r.Id)).ToList();
            for (var end = Now + ms; Now < end;)
            {
                var pending = new Queue<NodeAction>(Tick(50).Concat(asked));
                asked = [];
                if (observe() is { } pg)
                {
                    foreach (var next in Step(now => new PostgresObserved(now, pg, null)))
                    {
                        pending.Enqueue(next);
                    }
                }

                while (pending.TryDequeue(out var action))
                {
                    IReadOnlyList<NodeAction> more = action switch
                    {
                        RequestRenewal r when _answered.Add(r.Id) => Step(now => new LeaseAnswered(now, r.Id, r.Epoch, now, grant, grant ? "granted" : "no Raft leader known")),
                        Probe => Step(now => new ProbeDone(now, true, false, null)),
                        PostgresAction a => Step(now => new ActionDone(now, a.Id, Outcome.Done, null, DataKind.Primary)),
                        Fence f => Step(now => new FenceDone(now, f.Id, Outcome.Done, null, DataKind.Primary)),
                        _ => [],
                    };
                    foreach (var next in more)
                    {
                        pending.Enqueue(next);
                    }
                }
            }
        }

        /// <summary>Answers the latest renewal the node asked for (after <paramref name="before"/> ran), as sent at <paramref name="sentAt"/>.</summary>
        public IReadOnlyList<NodeAction> Grant(IReadOnlyList<NodeAction> before, long sentAt, bool granted = true)
        {
            _ = before;
            var request = All.OfType<RequestRenewal>().Last(r => !_answered.Contains(r.Id));
            _answered.Add(request.Id);
            return Step(now => new LeaseAnswered(now, request.Id, request.Epoch, sentAt, granted, granted ? "granted" : "refused"));
        }
    }

    private static Harness NamedPrimary(DataKind data = DataKind.Primary, ulong epoch = 1, LeaseTimings? lease = null)
    {
        var h = new Harness(lease: lease);
        h.Raft(State(epoch, 1));
        h.Step(now => new Started(now, data, Epoch.Zero, null));
        h.Now = Startup;
        return h;
    }

    /// <summary>A replica past its startup wait whose PostgreSQL the node has started (following the named primary).</summary>
    private static Harness RunningReplica(int self, ControlState control)
    {
        var h = new Harness(self);
        h.Raft(control, leader: (int)control.Primary.Value);
        h.Step(now => new Started(now, DataKind.Standby, Epoch.Zero, null));
        h.Now = Startup;
        var start = h.Then(h.Tick(10), h.Last<PostgresAction.StartStandby>);
        Assert.Equal(control.Primary, start.Upstream);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Standby));
        return h;
    }

    [Fact]
    public void A_replica_that_follows_keeps_slots_for_the_others_and_advances_them_once_it_replayed_a_segment_past_them()
    {
        var h = RunningReplica(self: 2, State(1, 1));
        h.Step(now => new PeerObserved(now, Peer(1, InstanceRole.Primary, flush: 5000, stateAt: now)));
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000, receive: 1000), null));
        Assert.Single(h.All.OfType<PostgresAction.EnsureSlots>());

        // Replayed less than a segment past the slots: nothing more; a segment past: advanced.
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000 + PostgresPlanner.StandbySlotAdvanceBytes - 1, receive: 1000 + PostgresPlanner.StandbySlotAdvanceBytes), null));
        h.Tick(50);
        Assert.Single(h.All.OfType<PostgresAction.EnsureSlots>());
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000 + PostgresPlanner.StandbySlotAdvanceBytes, receive: 1000 + PostgresPlanner.StandbySlotAdvanceBytes), null));
        h.Tick(50);
        Assert.Equal(2, h.All.OfType<PostgresAction.EnsureSlots>().Count());
        Assert.Null(h.Node.Status().NotReadyWhy);
    }

    [Fact]
    public void The_watchdog_is_armed_at_the_leases_deadline_before_postgres_is_started_as_primary()
    {
        var h = NamedPrimary();
        var ask = h.Tick(10);
        var sentAt = h.Now;
        var actions = h.Grant(ask, sentAt);

        var arm = actions.OfType<ArmWatchdog>().Single();
        var start = actions.OfType<PostgresAction.StartPrimary>().Single();
        Assert.True(actions.ToList().IndexOf(arm) < actions.ToList().IndexOf(start), "armed before the start");
        Assert.Equal(sentAt + WatchdogAfter, arm.Deadline);
        Assert.Equal(sentAt + FenceAfter, start.NotAfter);
        Assert.Equal(InstanceRole.Primary, h.Node.Status().Role);
    }

    [Fact]
    public void A_primary_whose_lease_runs_out_is_fenced_at_the_deadline_counted_from_the_send_and_records_the_fence()
    {
        var h = NamedPrimary();
        var sentAt = h.Now + 10;
        var start = h.Then(h.Grant(h.Tick(10), sentAt), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));

        // No renewal is granted any more; the node fences at the deadline, not a tick later.
        for (var t = h.Now; t < sentAt + FenceAfter - 50; t += 50)
        {
            var actions = h.Tick(50);
            Assert.Empty(actions.OfType<Fence>());
            foreach (var r in actions.OfType<RequestRenewal>())
            {
                h.Step(now => new LeaseAnswered(now, r.Id, r.Epoch, now, false, "no Raft leader known"));
            }
        }

        h.Now = sentAt + FenceAfter;
        var fence = h.Single<Fence>(h.Step(now => new Tick(now)));
        Assert.Equal(new Epoch(1), fence.Record);
        var done = h.Step(now => new FenceDone(now, fence.Id, Outcome.Done, null, DataKind.Primary));
        Assert.Single(done.OfType<DisarmWatchdog>());
        var status = h.Node.Status();
        Assert.Equal(new Epoch(1), status.FencedEpoch);
        Assert.False(status.MayWrite);
        Assert.Equal(InstanceRole.Stopped, status.Role);
    }

    [Fact]
    public void A_primary_that_may_write_is_ticked_at_its_leases_deadline_not_a_tick_later()
    {
        var h = NamedPrimary();
        var sentAt = h.Now + 10;
        var start = h.Then(h.Grant(h.Tick(10), sentAt), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        Assert.True(h.Node.Status().MayWrite);
        var deadline = sentAt + FenceAfter;
        var interval = h.Node.TickIntervalMs;

        Assert.Equal(deadline, h.Node.NextTickAt(deadline - 1));
        Assert.Equal(deadline, h.Node.NextTickAt(deadline - interval + 1));
        Assert.Equal(deadline - 10, h.Node.NextTickAt(deadline - interval - 10));

        // Fenced, nothing may write: only the interval counts.
        h.Now = deadline;
        var fence = h.Single<Fence>(h.Step(now => new Tick(now)));
        h.Step(now => new FenceDone(now, fence.Id, Outcome.Done, null, DataKind.Primary));
        Assert.Equal(h.Now + h.Node.TickIntervalMs, h.Node.NextTickAt(h.Now));
    }

    [Fact]
    public void The_watchdog_stays_armed_while_a_just_promoted_primary_is_still_seen_in_recovery()
    {
        // Hole 2: a lease round that landed during pg_promote saw "in recovery" and disarmed the watchdog.
        var (h, promote) = Promoting();
        Assert.Equal(new Epoch(2), promote.Epoch);
        var arm = h.Last<ArmWatchdog>();
        Assert.True(h.All.IndexOf(arm) < h.All.IndexOf(promote), "armed before the promotion");

        // The promotion is under way; the state query and the probe still see recovery.
        var during = h.Step(now => new PostgresObserved(now, Replica(), null)).Concat(h.Step(now => new ProbeDone(now, true, true, null))).ToList();
        Assert.Empty(during.OfType<DisarmWatchdog>());
        Assert.True(h.Node.Status().WatchdogArmed);
        Assert.Equal(InstanceRole.Primary, h.Node.Status().Role);
    }

    [Fact]
    public void A_promoted_primary_accepts_standbys_only_once_a_state_query_shows_its_new_line()
    {
        // Seen in review: the slots (2-7 ms) can finish before the first state query after the promotion, which
        // leaves the line unknown; a replica reading that report cannot tell whether it must rewind first.
        var (h, promote) = Promoting();
        h.Step(now => new ActionDone(now, promote.Id, Outcome.Done, null, DataKind.Primary));
        var slots = h.Then(h.Tick(10), h.Last<PostgresAction.EnsureSlots>);
        h.Step(now => new ActionDone(now, slots.Id, Outcome.Done, null, DataKind.Primary));
        Assert.Null(h.Node.Status().Line);
        Assert.False(h.Node.Status().AcceptsStandbys);
        Assert.False(h.Node.SelfView().AcceptsStandbys);

        h.Step(now => new PostgresObserved(now, Primary(), null));
        Assert.NotNull(h.Node.Status().Line);
        Assert.True(h.Node.Status().AcceptsStandbys);
        Assert.True(h.Node.SelfView().AcceptsStandbys);
    }

    /// <summary>A standby named primary at epoch 2 whose promotion has been asked for and has not finished.</summary>
    private static (Harness H, PostgresAction.Promote Promote) Promoting()
    {
        var h = NamedPrimary(DataKind.Standby, epoch: 2);
        var startStandby = h.Then(h.Tick(10), h.Last<PostgresAction.StartStandby>);
        h.Step(now => new ActionDone(now, startStandby.Id, Outcome.Done, null, DataKind.Standby));
        h.Step(now => new PostgresObserved(now, Replica(), null));
        h.Tick(300);
        h.Step(now => new ProbeDone(now, true, true, null));
        h.Grant([], h.Now);
        return (h, h.Last<PostgresAction.Promote>());
    }

    /// <summary>Lets time pass with the lease renewed and probes healthy, the promotion unanswered, replay at <paramref name="replayAt"/>(t); returns the first fence.</summary>
    private static Fence? RunPromoting(Harness h, long ms, Func<long, ulong> replayAt)
    {
        var answered = new HashSet<long>();
        for (var end = h.Now + ms; h.Now < end;)
        {
            var actions = h.Tick(50).Concat(h.Step(now => new PostgresObserved(now, Replica(replay: replayAt(now), receive: replayAt(now)), null))).ToList();
            foreach (var action in actions)
            {
                if (action is Fence fence)
                {
                    return fence;
                }

                if (action is RequestRenewal r && answered.Add(r.Id))
                {
                    h.Step(now => new LeaseAnswered(now, r.Id, r.Epoch, now, true, "granted"));
                }
                else if (action is Probe)
                {
                    h.Step(now => new ProbeDone(now, true, true, null));
                }
            }
        }

        return null;
    }

    [Fact]
    public void A_promotion_that_makes_no_progress_is_given_up_by_a_fence_recording_the_epoch()
    {
        // Seen (adversarial review, finding 4): the promotion target's startup process was frozen; pg_promote waited,
        // the lease kept being renewed, and nothing gave up for 34 s although another replica held the same WAL.
        var (h, promote) = Promoting();
        var asked = h.Now;
        var fence = RunPromoting(h, InstanceNode.PromoteStallMs + 2_000, _ => 4000);
        Assert.NotNull(fence);
        Assert.Equal(new Epoch(2), fence.Record);
        Assert.Contains("promotion made no progress", fence.Why, StringComparison.Ordinal);
        Assert.InRange(h.Now - asked, InstanceNode.PromoteStallMs, InstanceNode.PromoteStallMs + 200);

        // Fenced at the epoch it was promoted at: it says so to the others, so the leader replaces it at once.
        var done = h.Step(now => new FenceDone(now, fence.Id, Outcome.Done, null, DataKind.Standby));
        Assert.Equal(new Epoch(2), Assert.Single(done.OfType<AnnounceFenced>()).Epoch);
        h.Step(now => new ActionDone(now, promote.Id, Outcome.Failed, "postgres exited during the promotion", DataKind.Standby));
        Assert.Empty(h.Tick(100).OfType<PostgresAction>());
    }

    [Fact]
    public void A_promotion_still_replaying_is_not_given_up()
    {
        // A promotion first replays what the standby received: while replay moves on, it is progress, however long.
        var (h, _) = Promoting();
        var start = h.Now;
        Assert.Null(RunPromoting(h, InstanceNode.PromoteStallMs * 3, now => 4000 + (ulong)(now - start)));
    }

    [Fact]
    public void A_primary_demoted_by_a_newer_epoch_is_fenced_without_waiting_for_its_lease()
    {
        var h = NamedPrimary();
        var start = h.Then(h.Grant(h.Tick(10), h.Now), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        var fence = h.Single<Fence>(h.Raft(State(2, 2)));
        Assert.Equal(Epoch.Zero, fence.Record);
        Assert.Contains("names mc-2 primary", fence.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Postgres_dying_under_a_primary_is_fenced_and_recorded_so_it_never_runs_as_primary_again_at_that_epoch()
    {
        var h = NamedPrimary();
        var start = h.Then(h.Grant(h.Tick(10), h.Now), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        var fence = h.Single<Fence>(h.Step(now => new PostgresExited(now, -9)));
        Assert.Equal(new Epoch(1), fence.Record);
        var done = h.Step(now => new FenceDone(now, fence.Id, Outcome.Done, null, DataKind.Primary));

        // The others are told at once, so that the leader reads the fenced report now, not at its next poll.
        Assert.Equal(new Epoch(1), Assert.Single(done.OfType<AnnounceFenced>()).Epoch);
        var after = h.Tick(100);
        Assert.Empty(after.OfType<PostgresAction>());
        Assert.Empty(after.OfType<RequestRenewal>());
        Assert.Empty(after.OfType<AnnounceFenced>());
        Assert.True(h.Node.Status().FencedEpoch == new Epoch(1));
    }

    [Fact]
    public void A_fence_that_records_no_epoch_is_not_announced()
    {
        var h = NamedPrimary();
        var start = h.Then(h.Grant(h.Tick(10), h.Now), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        var fence = h.Single<Fence>(h.Raft(State(2, 2)));
        var done = h.Step(now => new FenceDone(now, fence.Id, Outcome.Done, null, DataKind.Primary));
        Assert.Empty(done.OfType<AnnounceFenced>());
    }

    [Fact]
    public void Renewals_overlap_at_a_slow_leader_up_to_a_bound_a_new_leader_is_asked_at_once_and_a_late_grant_still_extends_the_lease()
    {
        // Seen under load: a renewal answered after the host's short timeout was lost although granted, and while it
        // waited no other renewal went out; a primary restarted with its cluster fenced itself and was replaced.
        var h = NamedPrimary();
        var firstSent = h.Now + 10;
        var start = h.Then(h.Grant(h.Tick(10), firstSent), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        var granted = h.All.OfType<RequestRenewal>().Last();
        foreach (var earlier in h.All.OfType<RequestRenewal>().Where(r => r != granted).ToList())
        {
            h.Step(now => new LeaseAnswered(now, earlier.Id, earlier.Epoch, firstSent, false, "asking the Raft leader: timed out"));
        }

        // The leader answers nothing: probes pass, renewals pile up to the bound and no further.
        var sent = new List<(RequestRenewal Request, long At)>();
        void TickAnsweringProbes(long ms) => AnswerProbes(h.Tick(ms));
        void AnswerProbes(IReadOnlyList<NodeAction> actions)
        {
            foreach (var action in actions)
            {
                if (action is Probe)
                {
                    foreach (var r in h.Step(now => new ProbeDone(now, true, false, null)).OfType<RequestRenewal>())
                    {
                        sent.Add((r, h.Now));
                    }
                }
                else if (action is RequestRenewal r)
                {
                    sent.Add((r, h.Now));
                }
            }
        }

        for (var t = 0; t < 1_500; t += 50)
        {
            TickAnsweringProbes(50);
        }

        Assert.Equal(LeaseTimings.RenewalsInFlight, sent.Count);
        Assert.True(sent[1].At - sent[0].At >= (long)Lease.RenewInterval.TotalMilliseconds, "one renewal interval apart");

        // Another Raft leader is asked at once, although as many wait at the old one.
        AnswerProbes(h.Raft(State(1, 1), leader: 3));
        TickAnsweringProbes(50);
        Assert.Equal(LeaseTimings.RenewalsInFlight + 1, sent.Count);

        // The first renewal the old leader sat on is granted late: the lease now runs from its send, not the start's.
        h.Step(now => new LeaseAnswered(now, sent[0].Request.Id, sent[0].Request.Epoch, sent[0].At, true, "granted"));
        h.Now = firstSent + FenceAfter;
        Assert.Empty(h.Step(now => new Tick(now)).OfType<Fence>());
        h.Now = sent[0].At + FenceAfter;
        Assert.Single(h.Step(now => new Tick(now)).OfType<Fence>());
    }

    [Fact]
    public void A_primary_asks_a_newly_elected_Raft_leader_at_once_not_at_its_next_renewal_slot()
    {
        // Seen in kill-raft-leader under load: the new leader was known 0.3 s before the primary's next slot, and its
        // lease, already short of the renewals the dead leader never answered, ran out before that slot came.
        var h = NamedPrimary();
        var start = h.Then(h.Grant(h.Tick(10), h.Now), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));

        // The leader is gone: the next renewal finds none, and the retry is due a renewal interval later.
        h.Raft(State(1, 1), leader: 0);
        IReadOnlyList<NodeAction> ProbeAnswered(IReadOnlyList<NodeAction> actions) =>
            actions.OfType<Probe>().Any() ? h.Step(now => new ProbeDone(now, true, false, null)) : actions;
        var asked = new List<RequestRenewal>();
        for (var i = 0; i < 20 && asked.Count == 0; i++)
        {
            asked.AddRange(ProbeAnswered(h.Tick(50)).OfType<RequestRenewal>());
        }

        var refused = Assert.Single(asked);
        h.Step(now => new LeaseAnswered(now, refused.Id, refused.Epoch, now, false, "no Raft leader known"));

        // 50 ms later a new leader is known: the primary probes and asks it in the same step.
        h.Now += 50;
        var renewed = ProbeAnswered(h.Raft(State(1, 1), leader: 3));
        Assert.Single(renewed.OfType<RequestRenewal>());
    }

    [Fact]
    public void The_primary_campaigns_first_for_Raft_leadership_while_it_holds_its_lease_and_not_once_fenced()
    {
        // Named primary at epoch 1, before any lease (a cluster starting): not yet.
        var h = NamedPrimary();
        var ask = h.Tick(10);
        Assert.Empty(h.All.OfType<CampaignFirst>());
        var granted = h.Grant(ask, h.Now);
        Assert.True(h.Single<CampaignFirst>(granted).First);
        var start = h.Last<PostgresAction.StartPrimary>();
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        Assert.Single(h.All.OfType<CampaignFirst>());

        var fence = h.Single<Fence>(h.Step(now => new PostgresExited(now, -9)));
        var done = h.Step(now => new FenceDone(now, fence.Id, Outcome.Done, null, DataKind.Primary));
        Assert.False(h.Single<CampaignFirst>(done).First);

        // A replica never asks for it (its Raft voter starts without it).
        var replica = RunningReplica(2, State(1, 1));
        replica.Tick(1_000);
        Assert.Empty(replica.All.OfType<CampaignFirst>());
    }

    [Fact]
    public void A_primary_renews_every_renewal_interval_while_granted_and_sooner_after_a_renewal_was_not_granted()
    {
        // The defaults renew every tenth of the lease either way; a longer steady interval shows the retry.
        var timings = Lease with { RenewInterval = Lease.RetryInterval * 2 };
        Assert.Empty(timings.Problems());
        var renew = (long)timings.RenewInterval.TotalMilliseconds;
        var retry = (long)timings.RetryInterval.TotalMilliseconds;
        var h = NamedPrimary(lease: timings);
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica)));
        h.Run(2000, () => Primary(standbys: Standby("mc-2")));
        Assert.True(h.Node.Status().Ready);

        // Returns when the next renewal is asked for, answering probes healthy on the way.
        long NextRequest()
        {
            for (var i = 0; i < 100; i++)
            {
                var pending = new Queue<NodeAction>(h.Tick(10));
                while (pending.TryDequeue(out var action))
                {
                    switch (action)
                    {
                        case RequestRenewal:
                            return h.Now;
                        case Probe:
                            foreach (var again in h.Step(now => new ProbeDone(now, true, false, null)))
                            {
                                pending.Enqueue(again);
                            }

                            break;
                    }
                }
            }

            throw new Xunit.Sdk.XunitException("no renewal was asked for within a second: " + string.Join(", ", h.All.TakeLast(8).Select(a => a.GetType().Name)) + " " + h.Node.Status().Activity);
        }

        var first = NextRequest();
        h.Grant([], first);
        var second = NextRequest();
        Assert.InRange(second - first, renew, renew + 20);
        h.Grant([], second, granted: false);
        var third = NextRequest();
        Assert.InRange(third - second, retry, retry + 20);
        h.Grant([], third);
        var fourth = NextRequest();
        Assert.InRange(fourth - third, renew, renew + 20);
    }

    [Fact]
    public void A_state_is_dated_when_its_query_began_so_a_slow_query_never_passes_for_a_fresh_one()
    {
        // The leader counts a replica's position only when read after the old primary stopped writing
        // (PeerView.StateAt > stoppedBy): a query that answered late must not be dated when it answered.
        var h = RunningReplica(self: 2, State(1, 1));
        var began = h.Now;
        h.Tick(1_500);
        h.Step(now => new PostgresObserved(now, Replica(replay: 7_000_000, receive: 7_500_000), null, QueryStarted: began));

        Assert.Equal(began, h.Node.SelfView().StateAt);
        Assert.Equal(1_500, h.Node.Status().StateQueryMs);
        Assert.Equal(began, h.Node.Status().StateAt);
    }

    [Fact]
    public void A_replicas_reported_position_never_goes_back_after_its_postmaster_restarts_and_is_exact_again_only_after_local_replay()
    {
        // Hole 1: during local replay after a restart pg_last_wal_receive_lsn() is null and replay is behind. And the
        // data may hold WAL flushed after the last state query: the position read before is a lower bound only.
        var h = RunningReplica(self: 2, State(1, 1));
        h.Step(now => new PostgresObserved(now, Replica(replay: 7_000_000, receive: 7_500_000), null));
        Assert.Equal(new Lsn(7_500_000), h.Node.SelfView().FlushLsn);
        Assert.True(h.Node.SelfView().PositionSettled);

        h.Step(now => new PostgresExited(now, -9));
        var restart = h.Then(h.Tick(100), h.Last<PostgresAction.StartStandby>);
        h.Step(now => new ActionDone(now, restart.Id, Outcome.Done, null, DataKind.Standby));
        h.Step(now => new PostgresObserved(now, Replica(replay: 1_000_000, receive: null, streaming: false), null));
        var view = h.Node.SelfView();
        Assert.Equal(new Lsn(7_500_000), view.FlushLsn);
        Assert.False(view.PositionSettled);

        // Local replay done, streaming asked for: the flushed WAL (past the last read before the crash) is known.
        h.Step(now => new PostgresObserved(now, Replica(replay: 7_800_000, receive: 7_700_000, streaming: false), null));
        view = h.Node.SelfView();
        Assert.Equal(new Lsn(7_800_000), view.FlushLsn);
        Assert.True(view.PositionSettled);
    }

    [Fact]
    public void A_state_read_before_postgres_exited_and_answered_after_is_ignored()
    {
        // Found by the simulator: a slow state query from the life before the crash answered once PostgreSQL was
        // replaying again and settled the old, lower position.
        var h = RunningReplica(self: 2, State(1, 1));
        h.Step(now => new PostgresObserved(now, Replica(replay: 3_000_000, receive: 3_000_000), null));
        var began = h.Now;
        h.Tick(50);
        h.Step(now => new PostgresExited(now, -9));
        var restart = h.Then(h.Tick(100), h.Last<PostgresAction.StartStandby>);
        h.Step(now => new ActionDone(now, restart.Id, Outcome.Done, null, DataKind.Standby));

        h.Step(now => new PostgresObserved(now, Replica(replay: 6_000_000, receive: 6_500_000), null, QueryStarted: began));
        var view = h.Node.SelfView();
        Assert.Equal(new Lsn(3_000_000), view.FlushLsn);
        Assert.False(view.PositionSettled);
        Assert.True(view.StateAt < h.Now - 100, "the ignored state does not date the report either");
    }

    [Fact]
    public void A_restarted_manager_reports_no_exact_position_until_local_replay_is_done()
    {
        var h = RunningReplica(self: 2, State(1, 1));
        h.Step(now => new PostgresObserved(now, Replica(replay: 1_000_000, receive: null, streaming: false), null));
        Assert.False(h.Node.SelfView().PositionSettled);
        h.Step(now => new PostgresObserved(now, Replica(replay: 7_000_000, receive: 6_900_000, streaming: false), null));
        Assert.True(h.Node.SelfView().PositionSettled);
        Assert.Equal(new Lsn(7_000_000), h.Node.SelfView().FlushLsn);
    }

    [Fact]
    public void A_replica_that_replayed_past_the_new_primarys_fork_says_so_and_is_rewound()
    {
        // Hole 3: it stayed on the old timeline for minutes, shown with lag 0.
        var h = RunningReplica(self: 3, State(2, 2));
        h.Step(now => new PostgresObserved(now, Replica(replay: 900, receive: 900, streaming: false), null));
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Primary, epoch: 2, line: Line(2, (1, 500)), flush: 1200)));
        var status = h.Node.Status();
        Assert.Equal(FollowState.Diverged, status.Follow);
        Assert.False(status.Ready);
        Assert.Null(status.LagBytes);
        var stop = h.Then(h.Tick(50), h.Last<PostgresAction.Stop>);
        h.Step(now => new PostgresExited(now, 0));
        h.Step(now => new ActionDone(now, stop.Id, Outcome.Done, null, DataKind.Standby));
        Assert.Equal(Id(2), h.Then(h.Tick(50), h.Last<PostgresAction.Rewind>).From);
    }

    [Fact]
    public void A_replica_takes_no_rewind_decision_from_a_new_primarys_line_read_before_its_history_file()
    {
        // e2e (double-failure-5): a primary's report read mid-promotion named timeline 2 without its parent; both
        // replicas took it for another branch than theirs and stopped to rewind, though they were on its line.
        var h = RunningReplica(self: 3, State(2, 2));
        h.Step(now => new PostgresObserved(now, Replica(replay: 400, receive: 400, streaming: false), null));
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Primary, epoch: 2, line: new WalLine(new TimelineId(2), []), flush: 1200)));
        Assert.NotEqual(FollowState.Diverged, h.Node.Status().Follow);
        h.Tick(50);
        Assert.Empty(h.All.OfType<PostgresAction.Stop>());

        // With its history (timeline 1 ended at 500, past what this replica replayed): on its line.
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Primary, epoch: 2, line: Line(2, (1, 500)), flush: 1200)));
        h.Tick(50);
        Assert.Empty(h.All.OfType<PostgresAction.Stop>());
        Assert.NotEqual(FollowState.Diverged, h.Node.Status().Follow);
    }

    [Theory]
    [InlineData("new timeline 3 forked off current database system timeline 2 before current recovery point 0/5000060")]
    [InlineData("new timeline 4 is not a child of database system timeline 2")]
    [InlineData("could not receive data from WAL stream: ERROR:  requested timeline 2 is not in this server's history")]
    [InlineData("could not receive data from WAL stream: ERROR:  requested starting point 0/5000000 on timeline 2 is not in this server's history")]
    public void A_standby_start_that_refuses_the_primarys_timeline_is_abandoned_and_rewound(string line)
    {
        // Found by the simulator (seeds 5055 and 8515): a rewound standby started towards the primary of that moment,
        // which was replaced while it replayed; it refused the new timeline (past its branch point, or not on its line
        // at all), never became consistent, and waited for connections before the node could rewind it.
        Assert.True(TimelineRefused.IsRefusal(line));
        var h = RunningReplica(self: 3, State(2, 2));
        h.Step(now => new PostgresExited(now, -9));
        var start = h.Then(h.Tick(100), h.Last<PostgresAction.StartStandby>);
        var refused = h.Step(now => new TimelineRefused(now, line));
        var abandon = Assert.Single(refused.OfType<AbandonAction>());
        Assert.Equal(start.Id, abandon.ActionId);

        // A refusal while nothing starts abandons nothing.
        h.Step(now => new ActionDone(now, start.Id, Outcome.Failed, $"abandoned: {abandon.Why}", DataKind.Standby));
        Assert.Empty(h.Step(now => new TimelineRefused(now, "new timeline 3 forked off ...")).OfType<AbandonAction>());

        var stop = h.Then(h.Tick(1_000), h.Last<PostgresAction.Stop>);
        h.Step(now => new PostgresExited(now, 0));
        h.Step(now => new ActionDone(now, stop.Id, Outcome.Done, null, DataKind.Standby));
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Primary, epoch: 2, line: Line(2, (1, 500)), flush: 1200)));
        Assert.Equal(Id(2), h.Then(h.Tick(50), h.Last<PostgresAction.Rewind>).From);
    }

    [Fact]
    public void The_member_named_primary_ignores_its_startup_process_refusing_the_placeholder_timelines()
    {
        // A standby named primary is started in recovery, then promoted; before the promotion the host writes
        // placeholder history files, which PostgreSQL refuses at every rescan ("is not a child of ..."). That refusal
        // is about no upstream: it must neither end the start nor mark the data diverged.
        var h = NamedPrimary(DataKind.Standby, epoch: 4);
        var start = h.Then(h.Tick(10), h.Last<PostgresAction.StartStandby>);
        var refused = h.Step(now => new TimelineRefused(now, "new timeline 3 is not a child of database system timeline 1"));
        Assert.Empty(refused.OfType<AbandonAction>());
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Standby));
        h.Step(now => new PostgresObserved(now, Replica(receive: null, streaming: false), null));
        h.Grant(h.Tick(10), h.Now);
        var promote = h.Then(h.Tick(10), h.Last<PostgresAction.Promote>);
        Assert.Equal(new Epoch(4), promote.Epoch);
        Assert.Empty(h.Step(now => new TimelineRefused(now, "new timeline 3 is not a child of database system timeline 1")).OfType<AbandonAction>());
        Assert.Empty(h.All.OfType<PostgresAction.Rewind>());
    }

    [Theory]
    [InlineData("started streaming WAL from primary at 0/5000000 on timeline 2")]
    [InlineData("new target timeline is 4")]
    [InlineData("could not receive data from WAL stream: ERROR:  requested WAL segment 000000020000000000000005 has already been removed")]
    public void Lines_that_do_not_refuse_the_timeline_are_not_refusals(string line) => Assert.False(TimelineRefused.IsRefusal(line));

    [Fact]
    public void A_raft_leader_whose_manager_stops_hands_leadership_to_a_streaming_replica_before_the_primary()
    {
        // Seen: a replica's manager stopped with SIGTERM while it led Raft; the others waited for an election and the
        // primary fenced itself 90 ms before the new leader could grant it a renewal.
        var h = RunningReplica(self: 2, State(1, 1));
        h.Raft(State(1, 1), leader: 2, isLeader: true);
        h.Step(now => new PeerObserved(now, Peer(1, InstanceRole.Primary, flush: 9000)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: true, flush: 8000)));
        var transfer = h.Single<TransferLeadership>(h.Step(now => new StopRequested(now)));
        Assert.Equal(Id(3), transfer.Target);

        // With the other replica gone, the primary leads rather than nobody.
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, reachable: false)));
        Assert.Equal(Id(1), h.Single<TransferLeadership>(h.Step(now => new StopRequested(now))).Target);

        // A member that does not lead hands nothing on.
        h.Raft(State(1, 1), leader: 3);
        Assert.Empty(h.Step(now => new StopRequested(now)).OfType<TransferLeadership>());
    }

    [Fact]
    public void A_raft_leader_refuses_renewals_for_an_epoch_it_decided_to_fail_over_from_in_the_same_step()
    {
        var h = AsyncLeader(out var before);
        Assert.True(h.Single<AnswerRenewal>(before).Granted);

        // The primary goes silent (async mode: positions count without the replicas stopping first); the other
        // replica reports a fresh, exact position.
        h.Now += (long)Lease.PromoteAfter.TotalMilliseconds + 10;
        var decision = h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now)));
        var failover = decision.OfType<Propose>().Single(p => p.Command.Type == ControlCommandType.SetPrimary);
        Assert.Equal(ControlCommand.SetPrimary(new Epoch(1), Id(3), PrimaryChangeReason.Failover), failover.Command);

        // Committed only by this leader in this term: another leader may have granted renewals this one never saw.
        Assert.Equal(new Term(1), failover.OnlyAsLeaderInTerm);
        var late = h.Step(now => new RenewalRequested(now, 2, Id(1), new Epoch(1), State(1, 1), true, null));
        var answer = h.Single<AnswerRenewal>(late);
        Assert.False(answer.Granted);
        Assert.Contains("failing over from epoch 1", answer.Why, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(600L)]
    public void A_new_raft_leader_counts_the_primary_lease_from_when_its_voters_silence_proves_every_earlier_grant_ended(long priorLeasesEndedMs)
    {
        // Member 2, a replica that saw epoch 1 long ago, is elected while the primary (member 1, which led Raft too)
        // is silent. Its voters' silence dates every earlier leader's lease, and so every renewal they granted,
        // priorLeasesEndedMs before the election: the promotion wait counts from there, not from the election.
        var h = new Harness(self: 2, mode: ReplicationMode.Async);
        h.Raft(State(1, 1), leader: 1);
        h.Step(now => new Started(now, DataKind.Standby, Epoch.Zero, null));
        h.Now = 10_000;
        h.Step(now => new RaftObserved(now, new RaftView(RaftRole.Leader, new Term(2), Id(2), true, false, priorLeasesEndedMs), State(1, 1)));
        var due = h.Now - priorLeasesEndedMs + (long)Lease.PromoteAfter.TotalMilliseconds;

        h.Now = due - 10;
        var early = h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now)));
        Assert.DoesNotContain(early.OfType<Propose>(), p => p.Command.Type == ControlCommandType.SetPrimary);

        h.Now = due + 10;
        var decided = h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now)));
        Assert.Contains(decided.OfType<Propose>(), p => p.Command.Type == ControlCommandType.SetPrimary);
    }

    [Fact]
    public void A_grant_or_an_epoch_seen_after_the_dated_silence_still_restarts_the_promotion_wait()
    {
        // Elected at 10 s with a silence dating earlier leases 600 ms back; the epoch was seen at 9.8 s (later than
        // that): the wait counts from the epoch. A grant of its own at 14 s counts from the grant.
        var h = new Harness(self: 2, mode: ReplicationMode.Async);
        h.Now = 9_800;
        h.Raft(State(1, 1), leader: 1);
        h.Step(now => new Started(now, DataKind.Standby, Epoch.Zero, null));
        h.Now = 10_000;
        h.Step(now => new RaftObserved(now, new RaftView(RaftRole.Leader, new Term(2), Id(2), true, false, 600), State(1, 1)));
        var promoteAfter = (long)Lease.PromoteAfter.TotalMilliseconds;
        h.Now = 9_800 + promoteAfter - 10;
        Assert.DoesNotContain(h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now))).OfType<Propose>(), p => p.Command.Type == ControlCommandType.SetPrimary);

        h.Now = 14_000;
        Assert.True(h.Single<AnswerRenewal>(h.Step(now => new RenewalRequested(now, 1, Id(1), new Epoch(1), State(1, 1), true, null))).Granted);
        h.Now = 14_000 + promoteAfter - 10;
        Assert.DoesNotContain(h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now))).OfType<Propose>(), p => p.Command.Type == ControlCommandType.SetPrimary);
        h.Now = 14_000 + promoteAfter + 10;
        Assert.True(h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now))).OfType<Propose>().Any(p => p.Command.Type == ControlCommandType.SetPrimary), h.Node.Status().Failover);
    }

    private static Harness AsyncLeader(out IReadOnlyList<NodeAction> granted)
    {
        var h = new Harness(self: 2, mode: ReplicationMode.Async);
        h.Raft(State(1, 1), leader: 2, isLeader: true);
        h.Step(now => new Started(now, DataKind.Standby, Epoch.Zero, null));
        granted = h.Step(now => new RenewalRequested(now, 1, Id(1), new Epoch(1), State(1, 1), true, null));
        return h;
    }

    /// <summary>Quorum mode: the Raft leader (member 2, a replica streaming from member 1) whose primary went silent.</summary>
    private static Harness QuorumLeaderWithSilentPrimary()
    {
        var h = RunningReplica(self: 2, State(1, 1));
        h.Raft(State(1, 1), leader: 2, isLeader: true);
        h.Step(now => new PeerObserved(now, Peer(1, InstanceRole.Primary, flush: 5000, stateAt: now)));
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000, receive: 1000), null));
        Assert.True(h.Single<AnswerRenewal>(h.Step(now => new RenewalRequested(now, 1, Id(1), new Epoch(1), State(1, 1), true, null))).Granted);
        h.Step(now => new PeerObserved(now, Peer(1, InstanceRole.Primary, reachable: false)));
        return h;
    }

    [Fact]
    public void A_leader_that_loses_leadership_no_longer_asks_the_replicas_to_stop_streaming()
    {
        // Adversarial review of the earlier ask: a leader paused past the primary's silence and deposed meanwhile
        // kept advertising its ask, and the replicas stayed detached while the new leader renewed the primary.
        var h = QuorumLeaderWithSilentPrimary();
        h.Now += (long)Lease.PromoteAfter.TotalMilliseconds + 10;
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now)));
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000, receive: 1000), null));
        h.Tick(1);
        Assert.Equal(new Epoch(1), h.Node.SelfView().DetachFrom);

        h.Raft(State(1, 1), leader: 3, isLeader: false);
        h.Tick(1);
        Assert.Equal(Epoch.Zero, h.Node.SelfView().DetachFrom);

        // Leading again later, it asks again only by its own clock, from its new election.
        h.Raft(State(1, 1), leader: 2, isLeader: true);
        h.Tick(1);
        Assert.Equal(Epoch.Zero, h.Node.SelfView().DetachFrom);
    }

    [Fact]
    public void In_quorum_mode_the_leader_asks_the_replicas_to_stop_streaming_from_a_silent_primary_and_counts_only_positions_read_after()
    {
        // Adversarial finding 1: the old primary's manager and watchdog frozen together; its backends commit on and a
        // standby streaming from it acknowledges, after the leader read that standby's position.
        var h = QuorumLeaderWithSilentPrimary();
        var asked = h.Now;
        h.Now += (long)Lease.PromoteAfter.TotalMilliseconds + 10;
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now)));
        var ask = h.Step(now => new PostgresObserved(now, Replica(replay: 1000, receive: 1000), null)).Concat(h.Tick(1)).ToList();
        Assert.Equal(new Epoch(1), Assert.Single(h.All.OfType<AnnounceDetach>()).Epoch);
        Assert.DoesNotContain(ask.OfType<Propose>(), p => p.Command.Type == ControlCommandType.SetPrimary);
        Assert.Equal(new Epoch(1), h.Node.SelfView().DetachFrom);

        // This member, a replica too, stops streaming: primary_conninfo emptied.
        var repoint = h.Last<PostgresAction.Repoint>();
        Assert.True(repoint.Upstream.IsNone);
        h.Step(now => new ActionDone(now, repoint.Id, Outcome.Done, null, DataKind.Standby));
        Assert.Equal(Epoch.Zero, h.Node.SelfView().DetachedFrom);

        // Its WAL receiver seen gone by a state query begun after the stop: its position counts; the other replica's
        // does once it says the same. Still streaming, it would not.
        h.Tick(10);
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000, receive: 1000, streaming: false) with { Receiver = WalReceiverStatus.None }, null));
        Assert.Equal(new Epoch(1), h.Node.SelfView().DetachedFrom);
        Assert.DoesNotContain(h.Tick(50).OfType<Propose>(), p => p.Command.Type == ControlCommandType.SetPrimary);
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, flush: 900, stateAt: now) with { DetachedFrom = new Epoch(1) }));
        h.Tick(50);
        Assert.True(h.All.OfType<Propose>().Any(p => p.Command.Type == ControlCommandType.SetPrimary), h.Node.Status().Failover);
        var failover = h.All.OfType<Propose>().Single(p => p.Command.Type == ControlCommandType.SetPrimary);
        Assert.Equal(ControlCommand.SetPrimary(new Epoch(1), Id(2), PrimaryChangeReason.Failover), failover.Command);
        Assert.True(h.Now - asked > (long)Lease.PromoteAfter.TotalMilliseconds);
    }

    // A replica (member 3) of member 1 whose leader (member 2) asks it to stop streaming: it empties primary_conninfo.
    private static (Harness H, PostgresAction.Repoint Repoint) ReplicaAskedToDetach()
    {
        var h = RunningReplica(self: 3, State(1, 1));
        h.Step(now => new PostgresObserved(now, Replica(), null));
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true, stateAt: now) with { DetachFrom = new Epoch(1) }));
        var repoint = h.Then(h.Tick(10), h.Last<PostgresAction.Repoint>);
        Assert.True(repoint.Upstream.IsNone);
        return (h, repoint);
    }

    [Fact]
    public void A_detached_replica_follows_the_primary_again_only_once_it_takes_writes_under_a_later_lease()
    {
        // The leader (member 2) asks: this replica stops streaming.
        var (h, repoint) = ReplicaAskedToDetach();
        h.Step(now => new ActionDone(now, repoint.Id, Outcome.Done, null, DataKind.Standby));

        // The leader's ask is no longer seen (out of reach): it stays detached.
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, reachable: false)));
        h.Step(now => new PeerObserved(now, Peer(1, InstanceRole.Primary, ready: false, stateAt: now)));
        h.Tick(500);
        Assert.DoesNotContain(h.All.OfType<PostgresAction.Repoint>(), r => r.Upstream == Id(1));

        // The primary takes writes again (it was granted a lease after the ask): the replica follows it.
        h.Step(now => new PeerObserved(now, Peer(1, InstanceRole.Primary, stateAt: now + 1)));
        h.Tick(50);
        Assert.Equal(Id(1), h.Last<PostgresAction.Repoint>().Upstream);
    }

    [Fact]
    public void A_replica_whose_emptying_ends_while_the_ask_is_out_of_sight_records_it_and_is_counted()
    {
        // Simulator seed 2302: the leader's report was lost between the ask and the end of the emptying. The stop
        // went unrecorded, the replica never reported DetachedFrom, and the leader waited for its position for good.
        var (h, repoint) = ReplicaAskedToDetach();

        // The ask goes out of sight, then the emptying completes.
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, reachable: false)));
        h.Step(now => new ActionDone(now, repoint.Id, Outcome.Done, null, DataKind.Standby));
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true, stateAt: now) with { DetachFrom = new Epoch(1) }));
        h.Tick(10);
        h.Step(now => new PostgresObserved(now, Replica(replay: 1000, receive: 1000, streaming: false) with { Receiver = WalReceiverStatus.None }, null));
        Assert.Equal(new Epoch(1), h.Node.SelfView().DetachedFrom);
    }

    [Fact]
    public void Renewals_are_refused_without_the_raft_lease_and_for_a_member_the_read_does_not_show_primary()
    {
        var h = new Harness(self: 2);
        h.Raft(State(1, 1), leader: 2, isLeader: true);
        Assert.False(h.Single<AnswerRenewal>(h.Step(now => new RenewalRequested(now, 1, Id(1), new Epoch(1), State(1, 1), false, null))).Granted);
        Assert.False(h.Single<AnswerRenewal>(h.Step(now => new RenewalRequested(now, 2, Id(3), new Epoch(1), State(1, 1), true, null))).Granted);
        Assert.False(h.Single<AnswerRenewal>(h.Step(now => new RenewalRequested(now, 3, Id(1), new Epoch(1), null, true, "timed out"))).Granted);
    }

    [Fact]
    public void A_quorum_primary_that_no_standby_reaches_gives_up_its_lease_when_healthy_replicas_report_elsewhere()
    {
        var h = NamedPrimary();
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: false)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: false)));
        h.Run(2000, () => Primary());
        Assert.False(h.Node.Status().Ready);
        Assert.True(h.Node.Status().WaitingForStandbys);
        Assert.False(h.Node.Status().SteppingDown);

        // No standby streams from it for two leases: every commit waits, and healthy replicas report elsewhere.
        h.Run(8000, () => Primary());
        Assert.True(h.Node.Status().SteppingDown);
        var fence = Assert.Single(h.All.OfType<Fence>());
        Assert.Contains("stepped down", fence.Why, StringComparison.Ordinal);
        Assert.Empty(h.All.Skip(h.All.IndexOf(fence)).OfType<RequestRenewal>());

        // With k standbys streaming it keeps its lease however long it runs.
        var fine = NamedPrimary();
        fine.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: false)));
        fine.Run(10_000, () => Primary(standbys: Standby("mc-2")));
        Assert.False(fine.Node.Status().SteppingDown);
        Assert.Empty(fine.All.OfType<Fence>());
    }

    /// <summary>A quorum primary (3 members) whose two standbys report streaming and reply for 2 s.</summary>
    private static void HeardByBothStandbys(Harness h)
    {
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: true)));
        h.Run(2000, () => Primary(standbys: [Standby("mc-2"), Standby("mc-3")]));
    }

    /// <summary>The primary's state after its standbys' last replies at <paramref name="lastReply"/> (mc-3's <paramref name="extraAge"/> ms older): the walsenders' rows stay, ageing.</summary>
    private static PgObservation SilentSince(Harness h, long lastReply, long extraAge = 0) =>
        Primary(standbys: [Standby("mc-2", replyAge: (h.Now - lastReply) / 1000.0), Standby("mc-3", replyAge: (h.Now - lastReply + extraAge) / 1000.0)]);

    [Fact]
    public void A_quorum_primary_whose_standbys_stopped_replying_fences_4_s_after_the_last_reply_without_waiting_out_its_lease()
    {
        // The walsenders' rows stay "streaming" after a cut, their last replies ageing (PostgreSQL computes the age).
        var h = NamedPrimary();
        HeardByBothStandbys(h);
        Assert.True(h.Node.Status().Ready);

        var lastReply = h.Now;
        PgObservation Cut() => SilentSince(h, lastReply, extraAge: 300);
        h.Run(3900, Cut);
        Assert.False(h.Node.Status().Ready);
        Assert.False(h.Node.Status().SteppingDown);
        Assert.Empty(h.All.OfType<Fence>());

        // The lease is still renewed and held: the fence comes from the step-down, at once.
        h.Run(200, Cut);
        Assert.True(h.Node.Status().SteppingDown);
        var fence = Assert.Single(h.All.OfType<Fence>());
        Assert.Equal(new Epoch(1), fence.Record);
        Assert.Contains("stepped down", fence.Why, StringComparison.Ordinal);
        Assert.Equal(new Epoch(1), h.Node.Status().FencedEpoch);
        Assert.Contains(h.All.SkipWhile(a => a != fence), a => a is AnnounceFenced { Epoch.Value: 1 });
    }

    [Fact]
    public void A_quorum_primary_whose_only_replying_standby_restarts_keeps_its_epoch_for_two_leases_not_the_short_grace()
    {
        // k = 1, mc-3 down. mc-2 restarts: its walsender row vanishes at once (nothing dates the silence), and it
        // reports a running replica not streaming yet while it replays local WAL and reconnects.
        var h = NamedPrimary();
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Stopped, ready: false, running: false)));
        h.Run(2000, () => Primary(standbys: Standby("mc-2")));
        Assert.True(h.Node.Status().Ready);

        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, ready: false, streaming: false)));
        h.Run(1500, () => Primary());
        h.Run(1500, () => Primary(standbys: new StandbyObservation("mc-2", "catchup", "quorum", new Lsn(4000), new Lsn(4000), null, 0.1)));
        Assert.False(h.Node.Status().SteppingDown);
        Assert.Empty(h.All.OfType<Fence>());

        // Streaming again: the count starts afresh.
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true)));
        h.Run(8000, () => Primary(standbys: Standby("mc-2")));
        Assert.Empty(h.All.OfType<Fence>());
    }

    [Fact]
    public void A_quorum_primary_in_maintenance_mode_never_steps_down_since_no_failover_would_follow()
    {
        var h = new Harness();
        h.Raft(State(1, 1) with { Maintenance = true });
        h.Step(now => new Started(now, DataKind.Primary, Epoch.Zero, null));
        h.Now = Startup;
        HeardByBothStandbys(h);
        var lastReply = h.Now;
        h.Run(12_000, () => SilentSince(h, lastReply));
        Assert.False(h.Node.Status().Ready);
        Assert.False(h.Node.Status().SteppingDown);
        Assert.Empty(h.All.OfType<Fence>());
    }

    [Fact]
    public void A_quorum_primary_whose_standbys_have_not_replied_at_this_epoch_yet_waits_two_leases_before_it_steps_down()
    {
        // Just started or promoted: the standbys re-point to it (a restart, a rewind) before they stream.
        var h = NamedPrimary();
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: false)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: false)));
        h.Run(4500, () => Primary());
        Assert.False(h.Node.Status().SteppingDown);
        Assert.Empty(h.All.OfType<Fence>());
        h.Run(3000, () => Primary());
        Assert.True(h.Node.Status().SteppingDown);
        Assert.Single(h.All.OfType<Fence>());
    }

    [Fact]
    public void A_quorum_primary_counts_a_standby_whose_replies_stopped_as_not_streaming_and_steps_down()
    {
        // A frozen walreceiver (SIGSTOP) leaves its walsender's row "streaming" until wal_sender_timeout; it
        // acknowledges nothing, so every commit waits on it.
        var h = NamedPrimary();
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: false)));
        h.Run(2000, () => Primary(standbys: Standby("mc-2")));
        Assert.True(h.Node.Status().Ready);

        h.Run(8000, () => Primary(standbys: Standby("mc-2", replyAge: 30)));
        Assert.False(h.Node.Status().Ready);
        Assert.True(h.Node.Status().SteppingDown);
        Assert.Contains("stepped down", Assert.Single(h.All.OfType<Fence>()).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_quorum_primary_whose_commits_wait_for_standbys_is_not_ready_and_says_why_but_keeps_its_role()
    {
        var h = NamedPrimary();
        h.Run(2000, () => Primary(standbys: Standby("mc-3")));
        Assert.True(h.Node.Status().Ready);
        Assert.Null(h.Node.Status().NotReadyWhy);

        // Its only standby stops replying (the row stays "streaming"), or has not replied yet.
        foreach (var age in new double?[] { 3.5, null })
        {
            h.Run(200, () => Primary(standbys: Standby("mc-3", replyAge: age)));
            var status = h.Node.Status();
            Assert.False(status.Ready);
            Assert.True(status.WaitingForStandbys);
            Assert.Equal(InstanceRole.Primary, status.Role);
            Assert.Equal("waiting for synchronous standbys: 0 of 1 replying", status.NotReadyWhy);
        }

        // No standby at all.
        h.Run(200, () => Primary());
        Assert.Equal("waiting for synchronous standbys: 0 of 1 replying", h.Node.Status().NotReadyWhy);

        // A reply comes back.
        h.Run(200, () => Primary(standbys: Standby("mc-3", replyAge: 0.1)));
        Assert.True(h.Node.Status().Ready);
        Assert.False(h.Node.Status().WaitingForStandbys);
    }

    [Fact]
    public void A_replica_whose_walreceiver_heard_nothing_from_the_primary_for_seconds_is_not_streaming_nor_ready()
    {
        var h = RunningReplica(self: 2, State(1, 1));
        h.Step(now => new PostgresObserved(now, Replica(receiptAge: 1.0), null));
        Assert.Equal(FollowState.Streaming, h.Node.Status().Follow);
        Assert.True(h.Node.Status().Ready);
        Assert.True(h.Node.SelfView().Streaming);

        // PostgreSQL still says "streaming": the walreceiver process exists, frozen.
        h.Step(now => new PostgresObserved(now, Replica(receiptAge: 12.5), null));
        var status = h.Node.Status();
        Assert.Equal(FollowState.Connecting, status.Follow);
        Assert.False(status.Ready);
        Assert.Contains("received nothing from the primary for 12.5 s", status.FollowWhy, StringComparison.Ordinal);
        Assert.Contains("not streaming from the primary", status.NotReadyWhy, StringComparison.Ordinal);
        Assert.False(h.Node.SelfView().Streaming);
        Assert.False(h.Node.SelfView().IsStreamingReplica);
    }

    [Fact]
    public void A_member_back_in_its_role_shows_no_stale_error()
    {
        var h = NamedPrimary();
        h.Grant([], h.Now);
        var start = h.Last<PostgresAction.StartPrimary>();
        h.Step(now => new ActionDone(now, start.Id, Outcome.Failed, "postgres exited while starting", DataKind.Primary));
        Assert.Equal("start as primary: postgres exited while starting", h.Node.Status().LastError);
        h.Run(3000, () => Primary(standbys: Standby("mc-2")));
        Assert.True(h.Node.Status().Ready);
        Assert.Null(h.Node.Status().LastError);
    }

    [Fact]
    public void A_switchover_request_is_checked_against_the_members_reports()
    {
        var h = WritingPrimary();
        Assert.Contains("no member is named 'mc-9'", h.Node.CheckSwitchover("mc-9").Message, StringComparison.Ordinal);
        Assert.Contains("already the primary", h.Node.CheckSwitchover("mc-1").Message, StringComparison.Ordinal);
        Assert.Null(h.Node.CheckSwitchover("mc-2").Command);

        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true, flush: 4000)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: true, flush: 4990)));
        var (command, message, _) = h.Node.CheckSwitchover(null);
        Assert.Equal(ControlCommand.RequestSwitchover(new Epoch(1), Id(3)), command);
        Assert.Contains("switchover to mc-3 requested", message, StringComparison.Ordinal);

        // Once requested, the same request again (a client's retry after a lost answer) is accepted, another refused.
        h.Raft(State(1, 1, pending: 3));
        var retry = h.Node.CheckSwitchover("mc-3");
        Assert.Null(retry.Command);
        Assert.Equal(new Epoch(1), retry.InProgressAt);
        Assert.Equal(new Epoch(1), h.Node.CheckSwitchover(null).InProgressAt);
        var other = h.Node.CheckSwitchover("mc-2");
        Assert.Null(other.InProgressAt);
        Assert.Contains("a switchover to mc-3 is already in progress", other.Message, StringComparison.Ordinal);
    }

    /// <summary>mc-1, primary at epoch 1: started under its lease, its objects made; it takes writes.</summary>
    private static Harness WritingPrimary()
    {
        var h = NamedPrimary();
        var start = h.Then(h.Grant(h.Tick(10), h.Now), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        h.Step(now => new PostgresObserved(now, Primary(), null));
        var slots = h.Then(h.Tick(10), h.Last<PostgresAction.EnsureSlots>);
        h.Step(now => new ActionDone(now, slots.Id, Outcome.Done, null, DataKind.Primary));
        var ensure = h.Then(h.Tick(10), h.Last<PostgresAction.EnsurePrimaryObjects>);
        h.Step(now => new ActionDone(now, ensure.Id, Outcome.Done, null, DataKind.Primary));
        return h;
    }

    [Fact]
    public void A_new_primary_accepts_standbys_once_its_slots_exist_and_is_ready_only_once_its_roles_are_in_place()
    {
        var h = NamedPrimary();
        var start = h.Then(h.Grant(h.Tick(10), h.Now), h.Last<PostgresAction.StartPrimary>);
        h.Step(now => new ActionDone(now, start.Id, Outcome.Done, null, DataKind.Primary));
        h.Step(now => new PostgresObserved(now, Primary(), null));
        var status = h.Node.Status();
        Assert.False(status.AcceptsStandbys);
        Assert.Equal("creating the replication slots", status.NotReadyWhy);

        var slots = h.Then(h.Tick(10), h.Last<PostgresAction.EnsureSlots>);
        h.Step(now => new ActionDone(now, slots.Id, Outcome.Done, null, DataKind.Primary));
        status = h.Node.Status();
        Assert.True(status.AcceptsStandbys);
        Assert.False(status.Ready || status.WaitingForStandbys);
        Assert.Equal("setting up the primary's roles and grants", status.NotReadyWhy);
        Assert.False(h.Node.SelfView().Ready);
        Assert.True(h.Node.SelfView().AcceptsStandbys);

        var ensure = h.Then(h.Tick(10), h.Last<PostgresAction.EnsurePrimaryObjects>);
        h.Step(now => new ActionDone(now, ensure.Id, Outcome.Done, null, DataKind.Primary));
        status = h.Node.Status();
        Assert.True(status.AcceptsStandbys);
        Assert.True(status.Ready || status.WaitingForStandbys, status.NotReadyWhy);
        Assert.True(h.Node.SelfView().Ready);

        // A new epoch naming another member: it accepts no standby any more (it is fenced at once).
        h.Raft(State(2, 2));
        Assert.False(h.Node.Status().AcceptsStandbys);
    }

    /// <summary>mc-1, primary at epoch 1 taking writes, mc-2 and mc-3 streaming from it (mc-3 the most caught up).</summary>
    private static Harness StreamingPrimary(bool leader = false)
    {
        var h = WritingPrimary();
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true, flush: 4000)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: true, flush: 4990)));
        if (leader)
        {
            h.Raft(State(1, 1), leader: 1, isLeader: true);
        }

        return h;
    }

    [Fact]
    public void A_stopping_primary_that_leads_raft_switches_over_first_and_hands_leadership_on_once_the_epoch_moved()
    {
        var h = StreamingPrimary(leader: true);
        var stop = h.Step(now => new StopRequested(now));
        var propose = h.Single<Propose>(stop);
        Assert.Equal(ControlCommand.RequestSwitchover(new Epoch(1), Id(3)), propose.Command);
        Assert.Null(propose.OnlyAsLeaderInTerm);

        // Raft leadership stays here meanwhile: the hand-over's renewals and grants go on.
        Assert.Empty(stop.OfType<TransferLeadership>());
        Assert.True(h.Node.StopHandOverAsked);
        Assert.False(h.Node.StopMayProceed);

        h.Step(now => new ProposalDone(now, propose.Id, true, "RequestSwitchover applied"));
        h.Raft(State(1, 1, pending: 3), leader: 1, isLeader: true);
        Assert.False(h.Node.StopMayProceed);
        Assert.Contains("switchover to mc-3", h.Node.StopWaitingFor, StringComparison.Ordinal);

        // The switchover's own stop is carried out although the manager is stopping.
        Assert.True(h.Last<PostgresAction.Stop>().ForSwitchover);

        // The epoch moves to mc-3: the stop may proceed, the data is left alone (no rewind, no start as standby).
        h.Raft(State(2, 3), leader: 1, isLeader: true);
        Assert.True(h.Node.StopMayProceed);
        h.Tick(50);
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Primary, epoch: 2, flush: 6000)));
        h.Tick(50);
        Assert.DoesNotContain(h.All, a => a is PostgresAction.Rewind or PostgresAction.StartStandby or PostgresAction.CloneFrom);

        // Asked again, it hands Raft leadership on, and proposes nothing more.
        var again = h.Step(now => new StopRequested(now));
        Assert.Single(again.OfType<TransferLeadership>());
        Assert.DoesNotContain(again, a => a is Propose { Command.Type: ControlCommandType.RequestSwitchover });
    }

    [Theory]
    [InlineData("refused")]
    [InlineData("cleared")]
    [InlineData("aborted")]
    public void A_stopping_primary_may_stop_once_its_switchover_is_refused_cleared_or_aborted(string outcome)
    {
        var h = StreamingPrimary();
        var propose = h.Single<Propose>(h.Step(now => new StopRequested(now)));
        switch (outcome)
        {
            case "refused":
                h.Step(now => new ProposalDone(now, propose.Id, false, "RequestSwitchover refused by the control state: Rejected stale epoch"));
                break;
            case "cleared":
                h.Step(now => new ProposalDone(now, propose.Id, true, "RequestSwitchover applied"));

                // Applied on the leader but not yet here: still waiting.
                Assert.False(h.Node.StopMayProceed);
                h.Raft(State(1, 1, pending: 3));
                Assert.False(h.Node.StopMayProceed);
                h.Raft(State(1, 1));
                break;
            case "aborted":
                h.Raft(State(1, 1, pending: 3));
                h.Raft(State(2, 1));
                break;
        }

        Assert.True(h.Node.StopMayProceed);
        Assert.Null(h.Node.StopWaitingFor);
    }

    [Fact]
    public void A_stopping_primary_without_a_streaming_replica_a_replica_or_a_primary_mid_switchover_stops_at_once()
    {
        // No replica streams (local down stops the replicas first): nothing to hand over to.
        var h = StreamingPrimary();
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, reachable: false)));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, streaming: false, flush: 4990)));
        Assert.DoesNotContain(h.Step(now => new StopRequested(now)), a => a is Propose);
        Assert.False(h.Node.StopHandOverAsked);
        Assert.True(h.Node.StopMayProceed);

        // A switchover already pending: not asked again.
        var pending = StreamingPrimary();
        pending.Raft(State(1, 1, pending: 2));
        Assert.DoesNotContain(pending.Step(now => new StopRequested(now)), a => a is Propose { Command.Type: ControlCommandType.RequestSwitchover });
        Assert.True(pending.Node.StopMayProceed);

        // A replica asks nothing.
        var replica = RunningReplica(2, State(1, 1));
        Assert.DoesNotContain(replica.Step(now => new StopRequested(now)), a => a is Propose);
        Assert.True(replica.Node.StopMayProceed);
    }

    [Fact]
    public void A_stopping_primary_asks_for_reports_read_after_the_stop_began_and_a_replica_reads_none()
    {
        var h = StreamingPrimary();
        Assert.True(h.Node.StopWantsFreshReports);
        var since = h.Now + 10;
        h.Now += 20;

        // A report asked for before the stop began (in flight then) does not count; one asked for after it does.
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, streaming: true, flush: 4000), since - 5));
        h.Step(now => new PeerObserved(now, Peer(3, InstanceRole.Replica, reachable: false), since));
        Assert.False(h.Node.HeardFromPeersSince(since));
        h.Step(now => new PeerObserved(now, Peer(2, InstanceRole.Replica, reachable: false), since + 1));
        Assert.True(h.Node.HeardFromPeersSince(since));

        Assert.False(RunningReplica(2, State(1, 1)).Node.StopWantsFreshReports);
    }
}
