using FsCheck;
using FsCheck.Fluent;

namespace MemoryCluster.Raft.Tests;

public sealed class ControlStateTests
{
    [Fact]
    public void Set_primary_bumps_the_epoch_and_clears_a_pending_switchover()
    {
        var s = ControlState.Initial with { PendingSwitchover = new NodeId(2), SyncStandbys = [new NodeId(2), new NodeId(3)] };
        var (outcome, next) = ControlStateMachine.ApplyCommand(s, ControlCommand.SetPrimary(0, new NodeId(2)));
        Assert.Equal(ApplyOutcome.Applied, outcome);
        Assert.Equal(1UL, next.Epoch);
        Assert.Equal(new NodeId(2), next.Primary);
        Assert.True(next.PendingSwitchover.IsNone);
        Assert.Equal([new NodeId(3)], next.SyncStandbys);
    }

    [Fact]
    public void Command_with_a_stale_epoch_is_refused_and_changes_nothing()
    {
        var s = ControlState.Initial with { Epoch = 5, Primary = new NodeId(1) };
        var (outcome, next) = ControlStateMachine.ApplyCommand(s, ControlCommand.SetPrimary(4, new NodeId(2)));
        Assert.Equal(ApplyOutcome.EpochMismatch, outcome);
        Assert.Same(s, next);
    }

    [Fact]
    public void Sync_set_may_not_contain_the_primary()
    {
        var s = ControlState.Initial with { Epoch = 1, Primary = new NodeId(1) };
        Assert.Equal(ApplyOutcome.Invalid, ControlStateMachine.ApplyCommand(s, ControlCommand.SetSyncSet(1, [new NodeId(1)])).Outcome);
        Assert.Equal(ApplyOutcome.Applied, ControlStateMachine.ApplyCommand(s, ControlCommand.SetSyncSet(1, [new NodeId(3), new NodeId(2)])).Outcome);
    }

    [Fact]
    public void Switchover_and_maintenance_round_trip()
    {
        var sm = new ControlStateMachine();
        sm.Apply(new Entry(new Term(1), new LogIndex(1), EntryType.Command, ControlCommand.SetPrimary(0, new NodeId(1)).Encode()));
        sm.Apply(new Entry(new Term(1), new LogIndex(2), EntryType.Command, ControlCommand.RequestSwitchover(1, new NodeId(2)).Encode()));
        Assert.Equal(new NodeId(2), sm.Current.PendingSwitchover);
        sm.Apply(new Entry(new Term(1), new LogIndex(3), EntryType.Command, ControlCommand.ClearSwitchover(1).Encode()));
        sm.Apply(new Entry(new Term(1), new LogIndex(4), EntryType.Command, ControlCommand.SetMaintenance(1, true).Encode()));
        Assert.True(sm.Current.PendingSwitchover.IsNone);
        Assert.True(sm.Current.Maintenance);
        Assert.Equal(new LogIndex(4), sm.Current.AppliedIndex);
        var garbage = sm.Apply(new Entry(new Term(1), new LogIndex(5), EntryType.Command, [9, 9]));
        Assert.Equal(ApplyOutcome.Invalid, garbage.Outcome);
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Snapshot_restores_exactly_the_same_state(ulong[] primaries, bool maintenance)
    {
        var sm = new ControlStateMachine();
        ulong index = 0;
        foreach (var p in (primaries ?? []).Where(p => p != 0).Take(20))
        {
            sm.Apply(new Entry(new Term(1), new LogIndex(++index), EntryType.Command, ControlCommand.SetPrimary(sm.Current.Epoch, new NodeId(p)).Encode()));
        }

        sm.Apply(new Entry(new Term(1), new LogIndex(++index), EntryType.Command, ControlCommand.SetMaintenance(sm.Current.Epoch, maintenance).Encode()));
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
            var command = i % 2 == 0 ? ControlCommand.SetPrimary(expected![i] % 3, new NodeId(list[i])) : ControlCommand.SetMaintenance(expected![i] % 3, true);
            var (outcome, next) = ControlStateMachine.ApplyCommand(state, command);
            ok &= next.Epoch >= state.Epoch;
            ok &= next.Epoch == state.Epoch || (outcome == ApplyOutcome.Applied && command.Type == ControlCommandType.SetPrimary && next.Epoch == state.Epoch + 1);
            state = next;
        }

        return ok.ToProperty();
    }
}
