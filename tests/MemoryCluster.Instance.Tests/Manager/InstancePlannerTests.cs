using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Manager;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Tests.Manager;

public sealed class InstancePlannerTests
{
    private static readonly PgState RunningPrimary = new(false, 1, 5000, 5000, 5000, false);
    private static readonly PgState StreamingReplica = new(true, 1, 4000, 4000, 4000, true);

    private static ControlState Control(ulong epoch, ulong primary, ulong pending = 0) =>
        ControlState.Initial with { Epoch = new Epoch(epoch), Primary = new MemberId(primary), PendingSwitchover = new MemberId(pending) };

    private static PeerView Peer(ulong id, string role, bool ready = true, bool streaming = false, ulong receive = 5000, ulong write = 5000, bool reachable = true) =>
        new(id, $"mc-{id}", reachable, role, ready, streaming, receive, write, 1);

    private static Observation Observe(
        ControlState control,
        ulong self = 1,
        bool leader = false,
        DataKind data = DataKind.Primary,
        bool running = true,
        PgState? pg = null,
        ulong upstream = 0,
        bool objects = true,
        bool rewindFailed = false,
        SwitchoverProgress? switchover = null,
        long now = 1000,
        bool lease = true,
        ulong fenced = 0,
        long startupWait = 0,
        params PeerView[] peers) =>
        new(self, control, leader, data, running, pg ?? (running ? RunningPrimary : null), upstream, objects, rewindFailed, switchover,
            peers.ToDictionary(p => p.Id), now, 1000, 30_000)
        {
            HoldsPrimaryLease = lease,
            FencedEpoch = fenced,
            FenceReason = fenced == 0 ? null : "postgres exited unexpectedly",
            StartupWaitMs = startupWait,
        };

    [Fact]
    public void Raft_leader_proposes_itself_as_the_first_primary_with_compare_and_set_on_epoch_0()
    {
        var action = InstancePlanner.Next(Observe(ControlState.Initial, leader: true, data: DataKind.Missing, running: false));
        var propose = Assert.IsType<InstanceAction.Propose>(action);
        Assert.Equal(ControlCommand.SetPrimary(Epoch.Zero, new MemberId(1)), propose.Command);
    }

    [Fact]
    public void Follower_waits_for_the_quorum_to_choose_the_first_primary() =>
        Assert.IsType<InstanceAction.Wait>(InstancePlanner.Next(Observe(ControlState.Initial, data: DataKind.Missing, running: false)));

    [Fact]
    public void First_primary_runs_initdb_only_at_epoch_1() =>
        Assert.IsType<InstanceAction.InitDb>(InstancePlanner.Next(Observe(Control(1, 1), data: DataKind.Missing, running: false)));

    [Fact]
    public void Primary_with_an_empty_data_directory_after_epoch_1_refuses_to_create_a_new_database()
    {
        var action = InstancePlanner.Next(Observe(Control(4, 1), data: DataKind.Missing, running: false));
        Assert.Contains("refusing to create a new database", Assert.IsType<InstanceAction.Wait>(action).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Primary_whose_postgres_is_down_starts_it_as_primary() =>
        Assert.Equal(0UL, Assert.IsType<InstanceAction.Start>(InstancePlanner.Next(Observe(Control(1, 1), running: false))).Upstream);

    [Fact]
    public void Named_primary_still_in_recovery_promotes() =>
        Assert.IsType<InstanceAction.Promote>(InstancePlanner.Next(Observe(Control(2, 1), pg: StreamingReplica, data: DataKind.Standby)));

    [Fact]
    public void Fresh_primary_creates_roles_and_slots_before_it_calls_itself_ready() =>
        Assert.IsType<InstanceAction.EnsurePrimaryObjects>(InstancePlanner.Next(Observe(Control(1, 1), objects: false)));

    [Fact]
    public void Running_primary_that_sees_another_named_primary_stops_at_once()
    {
        var action = InstancePlanner.Next(Observe(Control(3, 2), peers: Peer(2, "primary")));
        Assert.False(Assert.IsType<InstanceAction.Stop>(action).ForSwitchover);
    }

    [Property(MaxTest = 500)]
    public Property A_running_primary_never_keeps_running_when_the_control_state_names_another() =>
        Prop.ForAll(
            Gen.Choose(1, 1000).ToArbitrary(),
            Gen.Choose(2, 5).ToArbitrary(),
            Gen.Elements(true, false).ToArbitrary(),
            (epoch, other, peerReady) =>
            {
                var action = InstancePlanner.Next(Observe(Control((ulong)epoch, (ulong)other), data: DataKind.Primary, peers: Peer((ulong)other, "primary", ready: peerReady)));
                return action is InstanceAction.Stop;
            });

    [Property(MaxTest = 500)]
    public Property Only_the_named_primary_ever_promotes() =>
        Prop.ForAll(
            Gen.Choose(1, 5).ToArbitrary(),
            Gen.Choose(1, 5).ToArbitrary(),
            Gen.Choose(1, 1000).ToArbitrary(),
            (self, primary, epoch) =>
            {
                var action = InstancePlanner.Next(Observe(Control((ulong)epoch, (ulong)primary), self: (ulong)self, data: DataKind.Standby, pg: StreamingReplica, upstream: (ulong)primary,
                    peers: Peer((ulong)primary, "primary")));
                return (action is InstanceAction.Promote) == (self == primary);
            });

    [Fact]
    public void New_replica_clones_once_the_primary_is_ready()
    {
        var waiting = InstancePlanner.Next(Observe(Control(1, 1), self: 2, data: DataKind.Missing, running: false, peers: Peer(1, "primary", ready: false)));
        Assert.IsType<InstanceAction.Wait>(waiting);
        var clone = InstancePlanner.Next(Observe(Control(1, 1), self: 2, data: DataKind.Missing, running: false, peers: Peer(1, "primary")));
        Assert.Equal(1UL, Assert.IsType<InstanceAction.CloneFrom>(clone).From);
    }

    [Fact]
    public void Former_primary_rewinds_onto_the_new_primary_then_reclones_when_rewind_failed()
    {
        var rewind = InstancePlanner.Next(Observe(Control(2, 2), self: 1, running: false, peers: Peer(2, "primary")));
        Assert.Equal(2UL, Assert.IsType<InstanceAction.Rewind>(rewind).From);
        var reclone = InstancePlanner.Next(Observe(Control(2, 2), self: 1, running: false, rewindFailed: true, peers: Peer(2, "primary")));
        Assert.Equal(2UL, Assert.IsType<InstanceAction.Reclone>(reclone).From);
    }

    [Fact]
    public void Former_primary_waits_for_the_new_primary_before_rewinding() =>
        Assert.IsType<InstanceAction.Wait>(InstancePlanner.Next(Observe(Control(2, 2), self: 1, running: false, peers: Peer(2, "replica", ready: false))));

    [Fact]
    public void Replica_following_the_old_primary_is_repointed()
    {
        var action = InstancePlanner.Next(Observe(Control(2, 2), self: 3, data: DataKind.Standby, pg: StreamingReplica, upstream: 1, peers: Peer(2, "primary")));
        Assert.Equal(2UL, Assert.IsType<InstanceAction.Repoint>(action).Upstream);
    }

    [Fact]
    public void Stopped_replica_starts_following_the_primary() =>
        Assert.Equal(1UL, Assert.IsType<InstanceAction.Start>(InstancePlanner.Next(Observe(Control(1, 1), self: 2, data: DataKind.Standby, running: false, peers: Peer(1, "primary")))).Upstream);

    [Fact]
    public void Switchover_to_a_streaming_target_stops_the_primary_cleanly()
    {
        var action = InstancePlanner.Next(Observe(Control(1, 1, pending: 2), peers: Peer(2, "replica", streaming: true, receive: 4800)));
        Assert.True(Assert.IsType<InstanceAction.Stop>(action).ForSwitchover);
    }

    [Theory]
    [InlineData(false, true, 5000, "not a healthy, streaming replica")]
    [InlineData(true, false, 5000, "not a healthy, streaming replica")]
    [InlineData(true, true, 100, "bytes behind")]
    public void Switchover_to_an_unfit_target_is_cleared_with_the_reason(bool ready, bool streaming, ulong receive, string reason)
    {
        var action = InstancePlanner.Next(Observe(Control(1, 1, pending: 2), peers: Peer(2, "replica", ready: ready, streaming: streaming, receive: receive)));
        var propose = Assert.IsType<InstanceAction.Propose>(action);
        Assert.Equal(ControlCommandType.ClearSwitchover, propose.Command.Type);
        Assert.Contains(reason, propose.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Stopped_old_primary_hands_over_only_once_the_target_has_its_final_wal()
    {
        var progress = new SwitchoverProgress(2, 6000, 1000);
        var behind = InstancePlanner.Next(Observe(Control(1, 1, pending: 2), running: false, switchover: progress, peers: Peer(2, "replica", receive: 6000)));
        Assert.IsType<InstanceAction.Wait>(behind);
        var caughtUp = InstancePlanner.Next(Observe(Control(1, 1, pending: 2), running: false, switchover: progress, peers: Peer(2, "replica", receive: 6100)));
        Assert.Equal(ControlCommand.SetPrimary(new Epoch(1), new MemberId(2)), Assert.IsType<InstanceAction.Propose>(caughtUp).Command);
    }

    [Fact]
    public void Switchover_that_times_out_is_abandoned_and_the_old_primary_resumes()
    {
        var progress = new SwitchoverProgress(2, 6000, 1000);
        var action = InstancePlanner.Next(Observe(Control(1, 1, pending: 2), running: false, switchover: progress, now: 1000 + 30_001, peers: Peer(2, "replica", receive: 10)));
        Assert.IsType<InstanceAction.AbortSwitchover>(action);
    }

    [Fact]
    public void Stopped_old_primary_does_not_restart_while_its_switchover_is_in_flight()
    {
        var action = InstancePlanner.Next(Observe(Control(1, 1, pending: 2), running: false, switchover: new SwitchoverProgress(2, 6000, 1000), peers: Peer(2, "replica", receive: 10)));
        Assert.IsNotType<InstanceAction.Start>(action);
    }

    [Fact]
    public void A_manager_that_just_started_takes_no_role_for_one_lease()
    {
        foreach (var observation in new[]
        {
            Observe(ControlState.Initial, leader: true, data: DataKind.Missing, running: false, startupWait: 800),
            Observe(Control(3, 1), running: false, startupWait: 800),
            Observe(Control(3, 2), self: 1, data: DataKind.Standby, running: false, startupWait: 800, peers: Peer(2, "primary")),
        })
        {
            var wait = Assert.IsType<InstanceAction.Wait>(InstancePlanner.Next(observation));
            Assert.Contains("waiting 800 ms more", wait.Why, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Primary_without_a_lease_neither_starts_nor_promotes()
    {
        var start = InstancePlanner.Next(Observe(Control(2, 1), running: false, lease: false));
        Assert.Contains("waiting for a primary lease", Assert.IsType<InstanceAction.Wait>(start).Why, StringComparison.Ordinal);
        var promote = InstancePlanner.Next(Observe(Control(2, 1), pg: StreamingReplica, data: DataKind.Standby, lease: false));
        Assert.Contains("before promoting", Assert.IsType<InstanceAction.Wait>(promote).Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Bootstrap_initdb_needs_no_lease_because_it_accepts_no_writes() =>
        Assert.IsType<InstanceAction.InitDb>(InstancePlanner.Next(Observe(Control(1, 1), data: DataKind.Missing, running: false, lease: false)));

    [Fact]
    public void Fenced_primary_never_runs_again_at_the_epoch_it_fenced_at()
    {
        var down = InstancePlanner.Next(Observe(Control(4, 1), running: false, fenced: 4));
        Assert.Contains("fenced at epoch 4", Assert.IsType<InstanceAction.Wait>(down).Why, StringComparison.Ordinal);
        Assert.IsType<InstanceAction.Fence>(InstancePlanner.Next(Observe(Control(4, 1), fenced: 4)));

        // A newer epoch naming it again (the leader restarting it) lets it start.
        Assert.IsType<InstanceAction.Start>(InstancePlanner.Next(Observe(Control(5, 1), running: false, fenced: 4)));
    }

    [Property(MaxTest = 500)]
    public Property Postgres_is_only_started_or_promoted_as_primary_with_a_lease_at_an_unfenced_epoch() =>
        Prop.ForAll(
            Gen.Choose(1, 6).ToArbitrary(),
            Gen.Choose(0, 6).ToArbitrary(),
            Gen.Choose(0, 7).ToArbitrary(),
            (epoch, fenced, flags) =>
            {
                var (lease, running, standby) = ((flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0);
                var action = InstancePlanner.Next(Observe(
                    Control((ulong)epoch, 1),
                    data: standby ? DataKind.Standby : DataKind.Primary,
                    running: running,
                    pg: running ? (standby ? StreamingReplica : RunningPrimary) : null,
                    lease: lease,
                    fenced: (ulong)fenced));
                var actsAsPrimary = action is InstanceAction.Start { Upstream: 0 } or InstanceAction.Promote;
                return !actsAsPrimary || (lease && fenced != epoch);
            });
}
