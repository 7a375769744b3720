using FsCheck;
using FsCheck.Fluent;
using MemoryCluster.Instance.Control;
using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Tests.Control;

public sealed class ControlStateTests
{
    private static MemberId M(ulong id) => new(id);

    private static Epoch E(ulong value) => new(value);

    private static Entry Command(ulong index, ControlCommand command) =>
        new(new Term(1), new LogIndex(index), EntryType.Command, command.Encode());

    [Fact]
    public void Set_primary_bumps_the_epoch_and_clears_a_pending_switchover()
    {
        var s = ControlState.Initial with { PendingSwitchover = M(2), SyncStandbys = [M(2), M(3)] };
        var (outcome, next) = ControlStateMachine.ApplyCommand(s, ControlCommand.SetPrimary(Epoch.Zero, M(2), PrimaryChangeReason.Failover));
        Assert.Equal(ApplyOutcome.Applied, outcome);
        Assert.Equal(E(1), next.Epoch);
        Assert.Equal(M(2), next.Primary);
        Assert.True(next.PendingSwitchover.IsNone);
        Assert.Equal([M(3)], next.SyncStandbys);
    }

    [Fact]
    public void Command_with_a_stale_epoch_is_refused_and_changes_nothing()
    {
        var s = ControlState.Initial with { Epoch = E(5), Primary = M(1) };
        var (outcome, next) = ControlStateMachine.ApplyCommand(s, ControlCommand.SetPrimary(E(4), M(2), PrimaryChangeReason.Failover));
        Assert.Equal(ApplyOutcome.Conflict, outcome);
        Assert.Same(s, next);
    }

    [Fact]
    public void A_refused_command_says_which_epoch_is_current()
    {
        var sm = new ControlStateMachine();
        sm.Apply(Command(1, ControlCommand.SetPrimary(Epoch.Zero, M(1), PrimaryChangeReason.Failover)));
        var stale = sm.Apply(Command(2, ControlCommand.SetPrimary(Epoch.Zero, M(2), PrimaryChangeReason.Failover)));
        Assert.Equal(ApplyOutcome.Conflict, stale.Outcome);
        Assert.Equal("epoch is 1", stale.Reason);
        Assert.Equal(M(1), stale.State.Primary);
    }

    [Fact]
    public void Sync_set_may_not_contain_the_primary()
    {
        var s = ControlState.Initial with { Epoch = E(1), Primary = M(1) };
        Assert.Equal(ApplyOutcome.Invalid, ControlStateMachine.ApplyCommand(s, ControlCommand.SetSyncSet(E(1), [M(1)])).Outcome);
        Assert.Equal(ApplyOutcome.Applied, ControlStateMachine.ApplyCommand(s, ControlCommand.SetSyncSet(E(1), [M(3), M(2)])).Outcome);
    }

    [Fact]
    public void Switchover_and_maintenance_round_trip()
    {
        var sm = new ControlStateMachine();
        sm.Apply(Command(1, ControlCommand.SetPrimary(Epoch.Zero, M(1), PrimaryChangeReason.Failover)));
        sm.Apply(Command(2, ControlCommand.RequestSwitchover(E(1), M(2))));
        Assert.Equal(M(2), sm.Current.PendingSwitchover);
        sm.Apply(Command(3, ControlCommand.ClearSwitchover(E(1))));
        sm.Apply(Command(4, ControlCommand.SetMaintenance(E(1), true)));
        Assert.True(sm.Current.PendingSwitchover.IsNone);
        Assert.True(sm.Current.Maintenance);
        Assert.Equal(new LogIndex(4), sm.Current.AppliedIndex);
        var garbage = sm.Apply(new Entry(new Term(1), new LogIndex(5), EntryType.Command, [9, 9]));
        Assert.Equal(ApplyOutcome.Invalid, garbage.Outcome);
    }

    [Fact]
    public void A_configuration_entry_replaces_the_members()
    {
        var founders = new[] { new Member(new NodeId(1), "a:1", true), new Member(new NodeId(2), "b:1", true) };
        var sm = new ControlStateMachine(founders);
        Assert.Equal(founders, sm.Current.Members);
        var grown = new ClusterConfig([.. founders, new Member(new NodeId(3), "c:1", false)], []);
        var result = sm.Apply(new Entry(new Term(1), new LogIndex(1), EntryType.Config, ConfigCodec.Encode(grown)));
        Assert.Equal(ApplyOutcome.Applied, result.Outcome);
        Assert.Equal(grown.Members, sm.Current.Members);
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Snapshot_restores_exactly_the_same_state(ulong[] primaries, bool maintenance)
    {
        var sm = new ControlStateMachine();
        ulong index = 0;
        var list = (primaries ?? []).Where(p => p != 0).Take(20).ToList();
        if (list.Count % 2 == 1)
        {
            // Half of the cases in format 1 (with a history), half in format 0.
            sm.Apply(Command(++index, ControlCommand.SetFormat(sm.Current.Epoch, 1)));
        }

        foreach (var p in list)
        {
            var reason = (PrimaryChangeReason)(int)(p % 5);
            sm.Apply(Command(++index, ControlCommand.SetPrimary(sm.Current.Epoch, M(p), reason).ForFormat(sm.Current.Format, DateTimeOffset.FromUnixTimeMilliseconds((long)(p % 1_000_000_000_000) + 1))));
        }

        sm.Apply(Command(++index, ControlCommand.SetMaintenance(sm.Current.Epoch, maintenance)));
        var copy = new ControlStateMachine();
        copy.Restore(new Snapshot(new LogIndex(index), new Term(1), ClusterConfig.Empty, sm.TakeSnapshot()));
        return copy.Current.SameAs(sm.Current).ToProperty();
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Epoch_never_decreases_and_rises_only_with_a_new_primary(ulong[] expected, ulong[] nodes)
    {
        var state = ControlState.Initial;
        var ok = true;
        var list = nodes ?? [];
        for (var i = 0; i < Math.Min(list.Length, (expected ?? []).Length); i++)
        {
            var epoch = E(expected![i] % 3);
            var command = i % 2 == 0 ? ControlCommand.SetPrimary(epoch, M(list[i]), PrimaryChangeReason.Failover) : ControlCommand.SetMaintenance(epoch, true);
            var (outcome, next) = ControlStateMachine.ApplyCommand(state, command);
            ok &= next.Epoch >= state.Epoch;
            ok &= next.Epoch == state.Epoch || (outcome == ApplyOutcome.Applied && command.Type == ControlCommandType.SetPrimary && next.Epoch == state.Epoch.Next());
            state = next;
        }

        return ok.ToProperty();
    }

    // ---------------------------------------------------------------- the stored format

    // Bytes written by the control state when it lived in MemoryCluster.Raft (before Epoch and MemberId):
    // Raft logs and snapshots on disk hold exactly these, so they must still decode, and encode the same.
    public static TheoryData<string, ControlCommandType, ulong, ulong, ulong[], bool> StoredCommands() => new()
    {
        { "0101050000000000000002000000000000000000000000", ControlCommandType.SetPrimary, 5, 2, [], false },
        { "010207000000000000000000000000000000020000000300000000000000010000000000000000", ControlCommandType.SetSyncSet, 7, 0, [3, 1], false },
        { "0103090000000000000003000000000000000000000000", ControlCommandType.RequestSwitchover, 9, 3, [], false },
        { "0104090000000000000000000000000000000000000000", ControlCommandType.ClearSwitchover, 9, 0, [], false },
        { "0105020100000000000000000000000000000000000001", ControlCommandType.SetMaintenance, 258, 0, [], true },
    };

    [Theory]
    [MemberData(nameof(StoredCommands))]
    public void A_stored_command_decodes_and_encodes_to_the_same_bytes(string hex, ControlCommandType type, ulong epoch, ulong node, ulong[] nodes, bool flag)
    {
        var bytes = Convert.FromHexString(hex);
        var command = ControlCommand.Decode(bytes);
        Assert.Equal(type, command.Type);
        Assert.Equal(E(epoch), command.ExpectedEpoch);
        Assert.Equal(M(node), command.Node);
        Assert.Equal(nodes.Select(M), command.Nodes ?? []);
        Assert.Equal(flag, command.Flag);
        Assert.Equal(hex, Convert.ToHexString(command.Encode()));
    }

    [Fact]
    public void Every_change_of_primary_is_kept_in_the_history_with_its_reason_and_time_the_last_hundred()
    {
        var sm = new ControlStateMachine();
        ulong index = 0;
        sm.Apply(Command(++index, ControlCommand.SetFormat(Epoch.Zero, 1)));
        sm.Apply(Command(++index, ControlCommand.SetPrimary(Epoch.Zero, M(1), PrimaryChangeReason.Bootstrap).ForFormat(1, DateTimeOffset.FromUnixTimeMilliseconds(1_000))));
        sm.Apply(Command(++index, ControlCommand.SetPrimary(E(1), M(2), PrimaryChangeReason.Switchover).ForFormat(1, DateTimeOffset.FromUnixTimeMilliseconds(2_000))));

        // Refused commands leave no trace.
        sm.Apply(Command(++index, ControlCommand.SetPrimary(E(1), M(3), PrimaryChangeReason.Failover)));
        Assert.Equal(
            [new PrimaryChange(E(1), MemberId.None, M(1), PrimaryChangeReason.Bootstrap, 1_000), new PrimaryChange(E(2), M(1), M(2), PrimaryChangeReason.Switchover, 2_000)],
            sm.Current.PrimaryHistory);

        for (var i = 0; i < 150; i++)
        {
            sm.Apply(Command(++index, ControlCommand.SetPrimary(sm.Current.Epoch, M((ulong)(i % 3) + 1), PrimaryChangeReason.Failover)));
        }

        Assert.Equal(ControlState.HistoryLimit, sm.Current.PrimaryHistory.Count);
        Assert.Equal(sm.Current.Epoch, sm.Current.PrimaryHistory[^1].Epoch);
        Assert.Equal(E(53), sm.Current.PrimaryHistory[0].Epoch);

        var copy = new ControlStateMachine();
        copy.Restore(new Snapshot(new LogIndex(index), new Term(1), ClusterConfig.Empty, sm.TakeSnapshot()));
        Assert.True(copy.Current.SameAs(sm.Current));
    }

    [Fact]
    public void A_change_of_primary_with_a_reason_is_version_3_and_a_bad_reason_is_refused()
    {
        var command = ControlCommand.SetPrimary(E(4), M(2), PrimaryChangeReason.SwitchoverAborted).ForFormat(1, DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_123));
        var bytes = command.Encode();
        Assert.Equal("03010400000000000000020000000000000003", Convert.ToHexString(bytes)[..38]);
        Assert.Equal(command, ControlCommand.Decode(bytes));

        // Stamped once: the proposer's clock, never overwritten by a host the command passes through.
        Assert.Equal(command, command.ForFormat(1, DateTimeOffset.UnixEpoch.AddYears(100)));

        bytes[18] = 9;
        Assert.Contains("unknown reason 9", Assert.Throws<FormatException>(() => ControlCommand.Decode(bytes)).Message, StringComparison.Ordinal);

        // What a rejected command does to the state: nothing (the state machine answers Invalid).
        var sm = new ControlStateMachine();
        var before = sm.Current;
        Assert.Equal(ApplyOutcome.Invalid, sm.Apply(new Entry(new Term(1), new LogIndex(1), EntryType.Command, bytes)).Outcome);
        Assert.True(sm.Current.SameAs(before with { AppliedIndex = new LogIndex(1) }));
    }

    [Fact]
    public void Under_control_format_0_a_change_of_primary_is_written_as_older_releases_read_it_and_kept_in_no_history()
    {
        // What a cluster with a manager of an older release writes and holds: version 1 commands, no snapshot tail.
        var command = ControlCommand.SetPrimary(E(3), M(2), PrimaryChangeReason.Failover).ForFormat(0, DateTimeOffset.UnixEpoch.AddYears(60));
        Assert.Equal("0101030000000000000002000000000000000000000000", Convert.ToHexString(command.Encode()));

        var sm = new ControlStateMachine();
        sm.Apply(Command(1, ControlCommand.SetPrimary(Epoch.Zero, M(1), PrimaryChangeReason.Bootstrap).ForFormat(0, DateTimeOffset.UnixEpoch.AddYears(60))));
        Assert.Empty(sm.Current.PrimaryHistory);
        var formatZero = sm.TakeSnapshot();
        var older = new ControlStateMachine();
        older.Restore(new Snapshot(new LogIndex(1), new Term(1), ClusterConfig.Empty, formatZero));
        Assert.Equal(0, older.Current.Format);

        // Raised (only up), then kept in snapshots with the history.
        Assert.Equal(ApplyOutcome.Applied, sm.Apply(Command(2, ControlCommand.SetFormat(E(1), 1))).Outcome);
        Assert.Equal(ApplyOutcome.Invalid, sm.Apply(Command(3, ControlCommand.SetFormat(E(1), 1))).Outcome);
        Assert.Equal(ApplyOutcome.Invalid, sm.Apply(Command(4, ControlCommand.SetFormat(E(1), 0))).Outcome);
        sm.Apply(Command(5, ControlCommand.SetPrimary(E(1), M(2), PrimaryChangeReason.Failover).ForFormat(sm.Current.Format, DateTimeOffset.FromUnixTimeMilliseconds(5_000))));
        Assert.Equal([new PrimaryChange(E(2), M(1), M(2), PrimaryChangeReason.Failover, 5_000)], sm.Current.PrimaryHistory);
        var copy = new ControlStateMachine();
        copy.Restore(new Snapshot(new LogIndex(5), new Term(1), ClusterConfig.Empty, sm.TakeSnapshot()));
        Assert.True(copy.Current.SameAs(sm.Current));
        Assert.Equal(1, copy.Current.Format);

        var level = ControlCommand.SetFormat(E(7), 1).Encode();
        Assert.Equal("0407070000000000000001000000", Convert.ToHexString(level));
        Assert.Equal(ControlCommand.SetFormat(E(7), 1), ControlCommand.Decode(level));
    }

    [Fact]
    public void A_stored_snapshot_restores_and_is_taken_again_to_the_same_bytes()
    {
        // Three voters; epoch 2, primary 2, sync standbys {1, 3}, a switchover to 3 pending, maintenance on, applied 5.
        const string hex =
            "0300000001000000000000000D00000031302E302E302E313A373430300102000000000000000C00000070672D312E70673A37343030" +
            "0103000000000000000C00000070672D322E70673A3734303001000000000200000000000000020000000000000002000000010000000000" +
            "000003000000000000000300000000000000010500000000000000";
        var sm = new ControlStateMachine();
        sm.Restore(new Snapshot(new LogIndex(5), new Term(1), ClusterConfig.Empty, Convert.FromHexString(hex)));
        var s = sm.Current;
        Assert.Equal(
            [new Member(new NodeId(1), "10.0.0.1:7400", true), new Member(new NodeId(2), "pg-1.pg:7400", true), new Member(new NodeId(3), "pg-2.pg:7400", true)],
            s.Members);
        Assert.Equal(E(2), s.Epoch);
        Assert.Equal(M(2), s.Primary);
        Assert.Equal([M(1), M(3)], s.SyncStandbys);
        Assert.Equal(M(3), s.PendingSwitchover);
        Assert.True(s.Maintenance);
        Assert.Equal(new LogIndex(5), s.AppliedIndex);
        Assert.Equal(hex, Convert.ToHexString(sm.TakeSnapshot()));
    }

    // ---------------------------------------------------------------- the proven k (quorum mode)

    private static Member Voter(ulong id) => new(new NodeId(id), $"m{id}:7400", true);

    private static Entry Config(ulong index, params ulong[] voters) =>
        new(new Term(1), new LogIndex(index), EntryType.Config, ConfigCodec.Encode(new ClusterConfig([.. voters.Select(Voter)], [])));

    /// <summary>Five voters (entry 1), member 1 the first primary (entry 2).</summary>
    private static ControlStateMachine FiveVotersAndAPrimary()
    {
        var sm = new ControlStateMachine();
        sm.Apply(Config(1, 1, 2, 3, 4, 5));
        sm.Apply(Command(2, ControlCommand.SetPrimary(Epoch.Zero, M(1), PrimaryChangeReason.Failover)));
        return sm;
    }

    [Fact]
    public void The_proven_k_is_set_by_a_proof_under_the_current_membership_and_kept_by_a_change_of_primary()
    {
        var sm = FiveVotersAndAPrimary();

        // The first primary starts from initdb with the membership's configuration: its k from the start.
        Assert.Equal((2, 2), (sm.Current.QuorumK, sm.Current.MembersK));
        sm.Apply(Config(3, 1, 2, 3));
        Assert.Equal(0, sm.Current.QuorumK);
        sm.Apply(Config(4, 1, 2, 3, 4, 5));
        Assert.Equal(0, sm.Current.QuorumK);

        // k above the membership's (2 of 5 voters), or no k, is refused; a proof of 2 applies.
        Assert.Equal(ApplyOutcome.Invalid, sm.Apply(Command(5, ControlCommand.SetQuorumK(E(1), new LogIndex(4), 3))).Outcome);
        Assert.Equal(ApplyOutcome.Invalid, sm.Apply(Command(5, ControlCommand.SetQuorumK(E(1), new LogIndex(4), 0))).Outcome);
        Assert.Equal(ApplyOutcome.Applied, sm.Apply(Command(5, ControlCommand.SetQuorumK(E(1), new LogIndex(4), 2))).Outcome);
        Assert.Equal(2, sm.Current.QuorumK);

        // A new primary promotes only with the membership's k in force (PostgresPlanner): the proven k carries over.
        sm.Apply(Command(6, ControlCommand.SetPrimary(E(1), M(2), PrimaryChangeReason.Failover)));
        Assert.Equal(2, sm.Current.QuorumK);
    }

    [Fact]
    public void A_membership_with_a_lower_k_lowers_the_proven_k_a_higher_one_leaves_it_and_a_proof_from_before_a_change_is_refused()
    {
        var sm = FiveVotersAndAPrimary();
        Assert.Equal(2, sm.Current.QuorumK);

        // Shrink to 3 voters (k 1): both standbys that left may have held a commit the other two lack: none proven.
        sm.Apply(Config(4, 1, 2, 3));
        Assert.Equal((0, new LogIndex(4)), (sm.Current.QuorumK, sm.Current.MembersAt));

        // Grow to 4 voters (k 2): nothing more is proven until the primary proves the configuration in force.
        sm.Apply(Config(5, 1, 2, 3, 4));
        Assert.Equal(0, sm.Current.QuorumK);

        // A proof made under an earlier membership (a grow, shrink, grow race) proves nothing about the commits since.
        var stale = sm.Apply(Command(6, ControlCommand.SetQuorumK(E(1), new LogIndex(1), 2)));
        Assert.Equal(ApplyOutcome.Conflict, stale.Outcome);
        Assert.Equal("the membership changed (entry 5)", stale.Reason);
        Assert.Equal(0, sm.Current.QuorumK);
        Assert.Equal(ApplyOutcome.Applied, sm.Apply(Command(7, ControlCommand.SetQuorumK(E(1), new LogIndex(5), 2))).Outcome);
        Assert.Equal(2, sm.Current.QuorumK);

        // And a proof at an old epoch is refused as every command is.
        Assert.Equal("epoch is 1", sm.Apply(Command(8, ControlCommand.SetQuorumK(E(0), new LogIndex(5), 2))).Reason);
    }

    [Fact]
    public void Every_standby_that_leaves_lowers_the_proven_k_since_it_may_hold_a_commit_the_others_lack()
    {
        // 5 → 4 voters (k stays 2): a commit acknowledged by mc-4 and mc-5 is on one standby of the new membership.
        var sm = FiveVotersAndAPrimary();
        sm.Apply(Config(3, 1, 2, 3, 4));
        Assert.Equal((1, 2), (sm.Current.QuorumK, sm.Current.MembersK));

        // 3 voters and a learner (ANY 1 of the three others): a commit acknowledged by the learner alone; it leaves.
        var learner = new ControlStateMachine();
        learner.Apply(new Entry(new Term(1), new LogIndex(1), EntryType.Config, ConfigCodec.Encode(new ClusterConfig([Voter(1), Voter(2), Voter(3), new Member(new NodeId(4), "m4:7400", false)], []))));
        learner.Apply(Command(2, ControlCommand.SetPrimary(Epoch.Zero, M(1), PrimaryChangeReason.Failover)));
        Assert.Equal(1, learner.Current.QuorumK);
        learner.Apply(Config(3, 1, 2, 3));
        Assert.Equal(0, learner.Current.QuorumK);

        // The primary leaving (it hands over first, so it is not the primary then) is not a standby that left.
        var own = FiveVotersAndAPrimary();
        own.Apply(Config(3, 2, 3, 4, 5));
        Assert.Equal(2, own.Current.QuorumK);
    }

    [Fact]
    public void A_snapshot_keeps_the_membership_entry_and_the_proven_k()
    {
        var sm = FiveVotersAndAPrimary();
        sm.Apply(Config(3, 1, 2, 3));
        sm.Apply(Config(4, 1, 2, 3, 4));
        var copy = new ControlStateMachine();
        copy.Restore(new Snapshot(new LogIndex(4), new Term(1), ClusterConfig.Empty, sm.TakeSnapshot()));
        Assert.True(copy.Current.SameAs(sm.Current));
        Assert.Equal((new LogIndex(4), 0), (copy.Current.MembersAt, copy.Current.QuorumK));
    }

    [Fact]
    public void A_quorum_proof_is_stored_as_version_2_and_nothing_else_is()
    {
        var command = ControlCommand.SetQuorumK(E(7), new LogIndex(300), 2);
        var bytes = command.Encode();
        Assert.Equal("02060700000000000000" + "2C01000000000000" + "02000000", Convert.ToHexString(bytes));
        Assert.Equal(command, ControlCommand.Decode(bytes));

        // Version 2 with another type, or version 1 with SetQuorumK, is not a command.
        Assert.Throws<FormatException>(() => ControlCommand.Decode(Convert.FromHexString("020107000000000000002C0100000000000002000000")));
        Assert.Throws<FormatException>(() => ControlCommand.Decode(Convert.FromHexString("0106090000000000000000000000000000000000000000")));
    }

    // ---------------------------------------------------------------- the typed values

    [Fact]
    public void Epochs_compare_and_count_up()
    {
        Assert.Equal(E(0), Epoch.Zero);
        Assert.Equal(E(8), E(7).Next());
        Assert.True(E(1) < E(2) && E(2) > E(1) && E(2) <= E(2) && E(2) >= E(2));
        Assert.Equal(-1, E(1).CompareTo(E(2)));
        Assert.Equal("18446744073709551615", new Epoch(ulong.MaxValue).ToString());
    }

    [Fact]
    public void Member_ids_convert_to_and_from_raft_node_ids()
    {
        Assert.True(MemberId.None.IsNone);
        Assert.False(M(3).IsNone);
        Assert.Equal(new NodeId(3), M(3).ToNodeId());
        Assert.Equal(M(3), MemberId.FromNodeId(new NodeId(3)));
        Assert.Equal(MemberId.None, MemberId.FromNodeId(NodeId.None));
        Assert.Equal("3", M(3).ToString());
    }
}
