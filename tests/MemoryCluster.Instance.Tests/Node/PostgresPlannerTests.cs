using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class PostgresPlannerTests
{
    private static PlanInput Input(
        ControlState control,
        int self = 1,
        bool leader = false,
        DataKind data = DataKind.Primary,
        bool running = true,
        PgObservation? pg = null,
        bool mayWrite = false,
        int upstream = 0,
        bool objects = true,
        bool slots = true,
        bool rewindFailed = false,
        SwitchoverProgress? switchover = null,
        long now = 10_000,
        bool lease = true,
        ulong fenced = 0,
        long startupWait = 0,
        FollowCheck follow = FollowCheck.Unknown,
        bool targetHeard = true,
        params PeerView[] peers) => new()
        {
            Config = Config(self),
            Control = control,
            IsRaftLeader = leader,
            Data = data,
            Running = running,
            Pg = pg ?? (running ? Primary() : null),
            MayWrite = mayWrite,
            Upstream = Id(upstream),
            SlotsReady = slots,
            PrimaryObjectsReady = objects,
            RewindFailed = rewindFailed,
            Switchover = switchover,
            Peers = peers.ToDictionary(p => p.Id),
            Now = now,
            LeaseUntil = lease ? now + 1500 : null,
            FencedEpoch = new Epoch(fenced),
            FenceReason = fenced == 0 ? null : "postgres exited unexpectedly",
            StartupWait = startupWait,
            Follow = follow,
            Flushed = new Lsn(5000),
            Line = Tl1,
            SwitchoverTargetHeard = targetHeard,
            QuorumConfigInForce = true,
        };

    private static PlanStep Next(PlanInput input) => PostgresPlanner.Next(input);

    private static PlanStep.Act Act(PlanStep step, StepKind kind)
    {
        var act = Assert.IsType<PlanStep.Act>(step);
        Assert.Equal(kind, act.Kind);
        return act;
    }

    [Fact]
    public void Raft_leader_proposes_itself_as_the_first_primary_with_compare_and_set_on_epoch_0()
    {
        var propose = Assert.IsType<PlanStep.Propose>(Next(Input(ControlState.Initial, leader: true, data: DataKind.Missing, running: false)));
        Assert.Equal(ControlCommand.SetPrimary(Epoch.Zero, Id(1), PrimaryChangeReason.Bootstrap), propose.Command);
    }

    [Fact]
    public void Follower_waits_for_the_quorum_to_choose_the_first_primary() =>
        Assert.IsType<PlanStep.Wait>(Next(Input(ControlState.Initial, data: DataKind.Missing, running: false)));

    [Fact]
    public void First_primary_runs_initdb_only_at_epoch_1()
    {
        Act(Next(Input(State(1, 1), data: DataKind.Missing, running: false)), StepKind.InitDb);
        var refuse = Assert.IsType<PlanStep.Wait>(Next(Input(State(4, 1), data: DataKind.Missing, running: false)));
        Assert.Contains("refusing to create a new database", refuse.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Primary_whose_postgres_is_down_starts_it_as_primary_under_a_lease() =>
        Act(Next(Input(State(1, 1), running: false)), StepKind.StartPrimary);

    [Fact]
    public void A_standby_named_primary_starts_in_recovery_first_and_is_then_promoted_to_a_timeline_of_its_own()
    {
        // Started without standby.signal, a standby's data would keep the timeline the old primary wrote.
        Assert.Equal(MemberId.None, Act(Next(Input(State(2, 1), data: DataKind.Standby, running: false, lease: false)), StepKind.StartStandby).Member);
        Act(Next(Input(State(2, 1), data: DataKind.Standby, pg: Replica())), StepKind.Promote);
    }

    [Fact]
    public void Fresh_primary_creates_slots_first_then_roles_before_it_calls_itself_ready()
    {
        Act(Next(Input(State(1, 1), slots: false, objects: false)), StepKind.EnsureSlots);
        Act(Next(Input(State(1, 1), objects: false)), StepKind.EnsurePrimaryObjects);
    }

    /// <summary>A replica of mc-2 (named primary at epoch 2), streaming from mc-1 (the old primary) until now.</summary>
    private static PlanInput ReplicaOf2(PeerView primary, DataKind data = DataKind.Standby, bool running = true, FollowCheck follow = FollowCheck.Ok) =>
        Input(State(2, 2), self: 3, data: data, running: running, pg: running ? Replica() : null, upstream: running ? 1 : 0, follow: follow, peers: primary);

    public static TheoryData<string, bool, bool, ulong, InstanceRole, bool, StepKind?> RepointRows => new()
    {
        // what the primary's report shows,           accepts, ready, epoch, role,                reachable, step (null: wait)
        { "slots made, roles still being checked",    true,    false, 2,     InstanceRole.Primary, true,      StepKind.Repoint },
        { "ready",                                    false,   true,  2,     InstanceRole.Primary, true,      StepKind.Repoint },
        { "promoted, no slots yet",                   false,   false, 2,     InstanceRole.Primary, true,      null },
        { "accepting at an older epoch",              true,    false, 1,     InstanceRole.Primary, true,      null },
        { "still in recovery",                        true,    false, 2,     InstanceRole.Replica, true,      null },
        { "out of reach (last report kept)",          true,    false, 2,     InstanceRole.Primary, false,     null },
    };

    [Theory]
    [MemberData(nameof(RepointRows))]
    public void A_running_replica_repoints_at_a_primary_that_accepts_standbys_before_it_is_ready(string row, bool accepts, bool ready, ulong epoch, InstanceRole role, bool reachable, StepKind? expected)
    {
        var primary = Peer(2, role, epoch: epoch, ready: ready, reachable: reachable) with { AcceptsStandbys = accepts };
        var step = Next(ReplicaOf2(primary));
        if (expected is { } kind)
        {
            Assert.Equal(Id(2), Act(step, kind).Member);
        }
        else
        {
            Assert.True(step is PlanStep.Wait, $"{row}: {step}");
        }
    }

    public static TheoryData<string, int, bool, bool, StepKind?> StandbySlotRows => new()
    {
        // row,                                                  upstream, due,  detach, step (null: wait)
        { "follows the primary, slots due",                      2,        true,  false,  StepKind.EnsureSlots },
        { "follows the primary, slots in place and recent",      2,        false, false,  null },
        { "still follows the old primary: repoints first",      1,        true,  false,  StepKind.Repoint },
        { "asked to stop streaming: that first",                 1,        true,  true,   StepKind.Repoint },
        { "stopped streaming for a failover: no slot step",      0,        true,  true,   null },
    };

    [Theory]
    [MemberData(nameof(StandbySlotRows))]
    public void A_replica_keeps_slots_for_the_others_only_once_it_follows_the_primary_and_never_before_a_repoint(string row, int upstream, bool due, bool detach, StepKind? expected)
    {
        var replica = Input(State(2, 2), self: 3, data: DataKind.Standby, pg: Replica(), upstream: upstream, follow: FollowCheck.Ok, peers: Peer(2, InstanceRole.Primary, epoch: 2));
        var step = Next(replica with { StandbySlotsDue = due, Detach = detach, DetachRecorded = detach, PositionSettled = true });
        if (expected is { } kind)
        {
            Assert.True(step is PlanStep.Act { Kind: var k } && k == kind, $"{row}: {step}");
        }
        else
        {
            Assert.True(step is PlanStep.Wait, $"{row}: {step}");
        }
    }

    [Fact]
    public void Cloning_and_rewinding_wait_for_the_primary_to_be_ready_not_only_to_accept_standbys()
    {
        // pg_basebackup and pg_rewind log in with the replication role and use the rewind grants: both must be in place.
        var accepting = Peer(2, InstanceRole.Primary, epoch: 2, ready: false) with { AcceptsStandbys = true };
        Assert.IsType<PlanStep.Wait>(Next(ReplicaOf2(accepting, data: DataKind.Missing, running: false)));
        Assert.IsType<PlanStep.Wait>(Next(ReplicaOf2(accepting, running: false, follow: FollowCheck.Diverged)));

        var ready = Peer(2, InstanceRole.Primary, epoch: 2);
        Act(Next(ReplicaOf2(ready, data: DataKind.Missing, running: false)), StepKind.Clone);
        Act(Next(ReplicaOf2(ready, running: false, follow: FollowCheck.Diverged)), StepKind.Rewind);
    }

    [Fact]
    public void Running_primary_that_sees_another_named_primary_is_fenced_at_once()
    {
        Assert.IsType<PlanStep.Fence>(Next(Input(State(3, 2), mayWrite: true, peers: Peer(2, InstanceRole.Primary, epoch: 3))));

        // Even when its last observation still says "in recovery": it was started or promoted as primary.
        Assert.IsType<PlanStep.Fence>(Next(Input(State(3, 2), mayWrite: true, pg: Replica())));
    }

    [Property(MaxTest = 300)]
    public Property Only_the_named_primary_ever_starts_as_primary_or_promotes() =>
        Prop.ForAll(
            Gen.Choose(1, 3).ToArbitrary(),
            Gen.Choose(1, 3).ToArbitrary(),
            Gen.Choose(0, 8000).ToArbitrary(),
            (self, primary, seed) =>
            {
                var (epoch, flags) = (1 + (seed / 8), seed % 8);
                var (running, standby, inRecovery) = ((flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0);
                var step = Next(Input(State((ulong)epoch, primary), self: self, data: standby ? DataKind.Standby : DataKind.Primary, running: running,
                    pg: running ? (inRecovery ? Replica() : Primary()) : null, peers: Peer(primary, InstanceRole.Primary, epoch: (ulong)epoch)));
                var becomesPrimary = step is PlanStep.Act { Kind: StepKind.StartPrimary or StepKind.Promote };
                return !becomesPrimary || self == primary;
            });

    [Property(MaxTest = 500)]
    public Property Postgres_becomes_writable_only_with_a_lease_at_an_unfenced_epoch_after_the_startup_wait() =>
        Prop.ForAll(
            Gen.Choose(1, 6).ToArbitrary(),
            Gen.Choose(0, 6).ToArbitrary(),
            Gen.Choose(0, 15).ToArbitrary(),
            (epoch, fenced, flags) =>
            {
                var (lease, running, standby, starting) = ((flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, (flags & 8) != 0);
                var step = Next(Input(
                    State((ulong)epoch, 1),
                    data: standby ? DataKind.Standby : DataKind.Primary,
                    running: running,
                    pg: running ? (standby ? Replica() : Primary()) : null,
                    lease: lease,
                    fenced: (ulong)fenced,
                    startupWait: starting ? 500 : 0));
                var becomesPrimary = step is PlanStep.Act { Kind: StepKind.StartPrimary or StepKind.Promote };
                return !becomesPrimary || (lease && fenced != epoch && !starting);
            });

    [Fact]
    public void A_manager_that_just_started_takes_no_role_for_one_lease()
    {
        foreach (var input in new[]
        {
            Input(ControlState.Initial, leader: true, data: DataKind.Missing, running: false, startupWait: 800),
            Input(State(3, 1), running: false, startupWait: 800),
            Input(State(3, 2), data: DataKind.Standby, running: false, startupWait: 800, peers: Peer(2, InstanceRole.Primary, epoch: 3)),
        })
        {
            Assert.Contains("just started", Assert.IsType<PlanStep.Wait>(Next(input)).Why, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Fenced_primary_never_runs_again_at_the_epoch_it_fenced_at()
    {
        Assert.Contains("fenced at epoch 4", Assert.IsType<PlanStep.Wait>(Next(Input(State(4, 1), running: false, fenced: 4))).Why, StringComparison.Ordinal);
        Assert.IsType<PlanStep.Fence>(Next(Input(State(4, 1), fenced: 4)));

        // A newer epoch naming it again (the leader restarting it) lets it start.
        Act(Next(Input(State(5, 1), running: false, fenced: 4)), StepKind.StartPrimary);
    }

    [Fact]
    public void New_replica_clones_once_the_primary_is_ready_at_the_current_epoch()
    {
        Assert.IsType<PlanStep.Wait>(Next(Input(State(2, 1), self: 2, data: DataKind.Missing, running: false, peers: Peer(1, InstanceRole.Primary, epoch: 1))));
        Assert.IsType<PlanStep.Wait>(Next(Input(State(2, 1), self: 2, data: DataKind.Missing, running: false, peers: Peer(1, InstanceRole.Primary, epoch: 2, ready: false))));
        Assert.Equal(Id(1), Act(Next(Input(State(2, 1), self: 2, data: DataKind.Missing, running: false, peers: Peer(1, InstanceRole.Primary, epoch: 2))), StepKind.Clone).Member);
    }

    [Fact]
    public void Former_primary_rewinds_onto_the_new_primary_then_reclones_when_rewind_failed()
    {
        var primary = Peer(2, InstanceRole.Primary, epoch: 2);
        Assert.Equal(Id(2), Act(Next(Input(State(2, 2), running: false, peers: primary)), StepKind.Rewind).Member);
        Assert.Equal(Id(2), Act(Next(Input(State(2, 2), running: false, rewindFailed: true, peers: primary)), StepKind.Reclone).Member);
        Assert.IsType<PlanStep.Wait>(Next(Input(State(2, 2), running: false, peers: Peer(2, InstanceRole.Replica, epoch: 2, ready: false))));
    }

    [Fact]
    public void A_former_primary_stopped_cleanly_for_a_switchover_starts_as_a_replica_of_the_target_at_once_even_while_the_target_does_not_answer()
    {
        // Adversarial finding 3: the target froze right after the hand-over; the old primary waited to rewind onto it,
        // stopped, and so no member could prove it held every commit. Cleanly stopped, its WAL ends at the shutdown
        // checkpoint, which the target received: it starts following the target, and reports an exact position.
        var frozenTarget = Peer(2, InstanceRole.Replica, epoch: 1, reachable: false);
        var start = Act(Next(Input(State(2, 2), running: false, peers: frozenTarget) with { StoppedCleanlyAt = new Lsn(6000) }), StepKind.StartStandby);
        Assert.Equal(Id(2), start.Member);
        Assert.Contains("stopped cleanly at", start.Why, StringComparison.Ordinal);

        // Not known to be clean (a crash, a fence, a restarted manager): it waits to rewind, as before.
        Assert.IsType<PlanStep.Wait>(Next(Input(State(2, 2), running: false, peers: frozenTarget)));

        // Clean, but the new primary's line leaves it after all: rewound.
        Act(Next(Input(State(2, 2), running: false, follow: FollowCheck.Diverged, peers: Peer(2, InstanceRole.Primary, epoch: 2)) with { StoppedCleanlyAt = new Lsn(6000) }), StepKind.Rewind);
    }

    [Fact]
    public void A_detaching_replica_says_it_still_streams_while_its_wal_receiver_runs()
    {
        // Adversarial probe: the startup process stopped, the reload cannot stop the WAL receiver, which goes on
        // acknowledging the old primary's commits; the status said "stopped streaming" all the while.
        var detached = Input(State(1, 2), self: 3, data: DataKind.Standby, pg: Replica(), upstream: 0) with { Detach = true, DetachRecorded = true, PositionSettled = true };
        var still = Assert.IsType<PlanStep.Wait>(Next(detached));
        Assert.Contains("still runs (streaming)", still.Why, StringComparison.Ordinal);
        Assert.DoesNotContain("stopped streaming", still.Why, StringComparison.Ordinal);

        var gone = Assert.IsType<PlanStep.Wait>(Next(detached with { Pg = Replica() with { Receiver = WalReceiverStatus.None } }));
        Assert.StartsWith("stopped streaming from", gone.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_replica_not_streaming_whose_stop_was_not_recorded_for_this_epoch_writes_it_again()
    {
        // Simulator seed 2302 (SEEDS=20000): the emptying finished while the leader's ask was out of sight (message
        // loss), so it was never recorded; the replica waited "stopped streaming" and the leader, which never counted
        // its position, waited for it: no primary for good.
        var unrecorded = Input(State(1, 2), self: 3, data: DataKind.Standby, pg: Replica() with { Receiver = WalReceiverStatus.None }, upstream: 0) with { Detach = true, PositionSettled = true };
        var again = Act(Next(unrecorded), StepKind.Repoint);
        Assert.True(again.Member.IsNone);
        Assert.Contains("recording it for this epoch", again.Why, StringComparison.Ordinal);

        // Recorded: it waits, and says it stopped.
        Assert.StartsWith("stopped streaming from", Assert.IsType<PlanStep.Wait>(Next(unrecorded with { DetachRecorded = true })).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_replica_past_the_new_primarys_fork_is_stopped_and_rewound()
    {
        var primary = Peer(2, InstanceRole.Primary, epoch: 3);
        Act(Next(Input(State(3, 2), self: 3, data: DataKind.Standby, pg: Replica(), upstream: 2, follow: FollowCheck.Diverged, peers: primary)), StepKind.Stop);
        Act(Next(Input(State(3, 2), self: 3, data: DataKind.Standby, running: false, follow: FollowCheck.Diverged, peers: primary)), StepKind.Rewind);
    }

    [Fact]
    public void A_replica_on_another_branch_with_the_same_timeline_id_is_copied_afresh_since_pg_rewind_cannot_tell() =>
        Act(Next(Input(State(3, 2), self: 3, data: DataKind.Standby, running: false, follow: FollowCheck.NeedsClone, peers: Peer(2, InstanceRole.Primary, epoch: 3))), StepKind.Reclone);

    [Fact]
    public void Stopped_replica_starts_streaming_from_the_primary_at_once() =>
        Assert.Equal(Id(1), Act(Next(Input(State(1, 1), self: 2, data: DataKind.Standby, running: false)), StepKind.StartStandby).Member);

    [Fact]
    public void Replica_following_the_old_primary_is_repointed_once_the_new_one_is_ready()
    {
        Assert.IsType<PlanStep.Wait>(Next(Input(State(2, 2), self: 3, data: DataKind.Standby, pg: Replica(), upstream: 1, peers: Peer(2, InstanceRole.Replica, epoch: 2, ready: false))));
        Assert.Equal(Id(2), Act(Next(Input(State(2, 2), self: 3, data: DataKind.Standby, pg: Replica(), upstream: 1, peers: Peer(2, InstanceRole.Primary, epoch: 2))), StepKind.Repoint).Member);
    }

    [Fact]
    public void Switchover_to_a_streaming_target_stops_the_primary_cleanly()
    {
        var act = Act(Next(Input(State(1, 1, pending: 2), peers: Peer(2, InstanceRole.Replica, streaming: true, flush: 4800))), StepKind.StopForSwitchover);
        Assert.Equal(Id(2), act.Member);
    }

    [Fact]
    public void A_standby_named_primary_in_quorum_mode_promotes_only_with_the_memberships_k_in_force()
    {
        // 5 members (k = 2); the standby's configuration was written for 3 (k = 1): rewritten first, then promoted.
        var five = Input(State(2, 1), data: DataKind.Standby, pg: Replica(), upstream: 2) with { Config = Config(members: 5), QuorumConfigInForce = false };
        var rewrite = Act(Next(five), StepKind.Repoint);
        Assert.Equal(Id(2), rewrite.Member);
        Assert.Contains("ANY 2 of every other member", rewrite.Why, StringComparison.Ordinal);

        // Until a state query begun after the rewrite answers, it waits; with the membership's setting it promotes.
        Assert.Contains("reading the synchronous standby setting", Assert.IsType<PlanStep.Wait>(Next(five with { QuorumConfigInForce = null })).Why, StringComparison.Ordinal);
        Act(Next(five with { QuorumConfigInForce = true }), StepKind.Promote);

        // Async mode does not look.
        Act(Next(five with { Config = Config(members: 5, mode: ReplicationMode.Async), QuorumConfigInForce = null }), StepKind.Promote);
    }

    [Fact]
    public void A_replica_asked_to_reinit_stops_then_clones_afresh_from_a_ready_primary()
    {
        var replica = Input(State(1, 1), self: 2, data: DataKind.Standby, pg: Replica(), upstream: 1, peers: Peer(1, InstanceRole.Primary, epoch: 1)) with { ReinitRequested = true };
        Assert.Contains("reinit requested", Act(Next(replica), StepKind.Stop).Why, StringComparison.Ordinal);
        var stopped = replica with { Running = false, Pg = null };
        Assert.Equal(Id(1), Act(Next(stopped), StepKind.Reclone).Member);
        Assert.Contains("waiting for primary", Assert.IsType<PlanStep.Wait>(Next(stopped with { Peers = new Dictionary<MemberId, PeerView> { [Id(1)] = PeerView.Unreachable(Id(1)) } })).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_switchover_to_a_member_removed_since_the_request_is_cleared_not_waited_for()
    {
        var input = Input(State(1, 1, pending: 4), targetHeard: false, peers: Peer(2, InstanceRole.Replica, streaming: true, flush: 4800));
        var clear = Assert.IsType<PlanStep.Propose>(Next(input));
        Assert.Equal(ControlCommandType.ClearSwitchover, clear.Command.Type);
        Assert.Contains("no longer in the membership", clear.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Primary_records_a_proven_quorum_k_before_anything_else_it_would_do_in_its_role()
    {
        var proven = ControlCommand.SetQuorumK(new Epoch(1), new Raft.LogIndex(4), 1);
        var input = Input(State(1, 1, pending: 2), peers: Peer(2, InstanceRole.Replica, streaming: true, flush: 4800)) with { QuorumProven = proven };
        Assert.Equal(proven, Assert.IsType<PlanStep.Propose>(Next(input)).Command);

        // A proof from another epoch is not proposed.
        var stale = input with { QuorumProven = ControlCommand.SetQuorumK(Epoch.Zero, new Raft.LogIndex(4), 1) };
        Act(Next(stale), StepKind.StopForSwitchover);
    }

    [Fact]
    public void Switchover_waits_for_a_report_of_the_target_read_since_the_request_before_stopping_or_refusing()
    {
        // The last report (read before the request) shows a streaming target, which may have stopped since.
        var wait = Assert.IsType<PlanStep.Wait>(Next(Input(State(1, 1, pending: 2), targetHeard: false, peers: Peer(2, InstanceRole.Replica, streaming: true, flush: 4800))));
        Assert.Contains("reading its report before stopping", wait.Why, StringComparison.Ordinal);

        // Read since: it did not answer, and the request is cleared without PostgreSQL being stopped.
        var refuse = Assert.IsType<PlanStep.Propose>(Next(Input(State(1, 1, pending: 2), peers: PeerView.Unreachable(Id(2)))));
        Assert.Equal(ControlCommandType.ClearSwitchover, refuse.Command.Type);
    }

    [Theory]
    [InlineData(false, true, 5000UL, "not a ready replica")]
    [InlineData(true, false, 5000UL, "not a ready replica")]
    [InlineData(true, true, 100UL, "bytes behind")]
    public void Switchover_to_an_unfit_target_is_cleared_with_the_reason(bool ready, bool streaming, ulong flush, string reason)
    {
        var propose = Assert.IsType<PlanStep.Propose>(Next(Input(State(1, 1, pending: 2), peers: Peer(2, InstanceRole.Replica, ready: ready, streaming: streaming, flush: flush))));
        Assert.Equal(ControlCommandType.ClearSwitchover, propose.Command.Type);
        Assert.Contains(reason, propose.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Stopped_old_primary_hands_over_only_once_the_target_has_its_final_wal()
    {
        var progress = new SwitchoverProgress(Id(2), 1000, new Lsn(6000));
        Assert.IsType<PlanStep.Wait>(Next(Input(State(1, 1, pending: 2), running: false, switchover: progress, peers: Peer(2, InstanceRole.Replica, flush: 6000))));
        var handOver = Assert.IsType<PlanStep.Propose>(Next(Input(State(1, 1, pending: 2), running: false, switchover: progress, peers: Peer(2, InstanceRole.Replica, flush: 6100))));
        Assert.Equal(ControlCommand.SetPrimary(new Epoch(1), Id(2), PrimaryChangeReason.Switchover), handOver.Command);
    }

    [Fact]
    public void Switchover_that_times_out_is_aborted_by_a_compare_and_set_naming_the_old_primary_at_a_new_epoch()
    {
        var progress = new SwitchoverProgress(Id(2), 1000, new Lsn(6000));
        var abort = Assert.IsType<PlanStep.Propose>(Next(Input(State(1, 1, pending: 2), running: false, switchover: progress, now: 1000 + 30_001, peers: Peer(2, InstanceRole.Replica, flush: 10))));

        // The same compare-and-set as the hand-over (expected epoch 1): exactly one of the two can apply, and a
        // delayed hand-over finds the epoch moved.
        Assert.Equal(ControlCommand.SetPrimary(new Epoch(1), Id(1), PrimaryChangeReason.SwitchoverAborted), abort.Command);
    }

    [Fact]
    public void Stopped_old_primary_does_not_restart_while_its_switchover_is_in_flight()
    {
        var step = Next(Input(State(1, 1, pending: 2), running: false, switchover: new SwitchoverProgress(Id(2), 1000, new Lsn(6000)), peers: Peer(2, InstanceRole.Replica, flush: 10)));
        Assert.IsType<PlanStep.Wait>(step);
    }
}
