namespace MemoryCluster.Raft;

/// <summary>
/// The replicated control state: members, the epoch (fencing token, +1 on every change of primary),
/// the primary, the synchronous standby set, a pending switchover and the maintenance flag. Nothing else.
/// </summary>
public sealed record ControlState(
    IReadOnlyList<Member> Members,
    ulong Epoch,
    NodeId Primary,
    IReadOnlyList<NodeId> SyncStandbys,
    NodeId PendingSwitchover,
    bool Maintenance,
    LogIndex AppliedIndex)
{
    public static readonly ControlState Initial = new([], 0, NodeId.None, [], NodeId.None, false, LogIndex.Zero);

    public bool SameAs(ControlState other) =>
        Members.SequenceEqual(other.Members) && Epoch == other.Epoch && Primary == other.Primary &&
        SyncStandbys.SequenceEqual(other.SyncStandbys) && PendingSwitchover == other.PendingSwitchover &&
        Maintenance == other.Maintenance && AppliedIndex == other.AppliedIndex;
}

/// <summary>Kinds of control command.</summary>
public enum ControlCommandType
{
    Unknown = 0,
    SetPrimary = 1,
    SetSyncSet = 2,
    RequestSwitchover = 3,
    ClearSwitchover = 4,
    SetMaintenance = 5,
}

/// <summary>
/// A command on the control state. Every command carries <see cref="ExpectedEpoch"/> and is refused
/// unless it equals the current epoch (compare-and-set), so decisions taken on a stale view never apply.
/// </summary>
public sealed record ControlCommand(
    ControlCommandType Type,
    ulong ExpectedEpoch,
    NodeId Node = default,
    IReadOnlyList<NodeId>? Nodes = null,
    bool Flag = false)
{
    public static ControlCommand SetPrimary(ulong expectedEpoch, NodeId primary) => new(ControlCommandType.SetPrimary, expectedEpoch, primary);

    public static ControlCommand SetSyncSet(ulong expectedEpoch, IReadOnlyList<NodeId> standbys) => new(ControlCommandType.SetSyncSet, expectedEpoch, Nodes: standbys);

    public static ControlCommand RequestSwitchover(ulong expectedEpoch, NodeId target) => new(ControlCommandType.RequestSwitchover, expectedEpoch, target);

    public static ControlCommand ClearSwitchover(ulong expectedEpoch) => new(ControlCommandType.ClearSwitchover, expectedEpoch);

    public static ControlCommand SetMaintenance(ulong expectedEpoch, bool on) => new(ControlCommandType.SetMaintenance, expectedEpoch, Flag: on);

    private const byte FormatVersion = 1;

    public byte[] Encode()
    {
        var b = new BinaryBuffer();
        b.U8(FormatVersion);
        b.U8((byte)Type);
        b.U64(ExpectedEpoch);
        b.U64(Node.Value);
        var nodes = Nodes ?? [];
        b.U32((uint)nodes.Count);
        foreach (var n in nodes)
        {
            b.U64(n.Value);
        }

        b.Bool(Flag);
        return b.ToArray();
    }

    public static ControlCommand Decode(ReadOnlySpan<byte> data)
    {
        var c = new BinaryCursor(data);
        var version = c.U8();
        if (version != FormatVersion)
        {
            throw new FormatException($"Unknown control command version {version}.");
        }

        var type = (ControlCommandType)c.U8();
        if (type is < ControlCommandType.SetPrimary or > ControlCommandType.SetMaintenance)
        {
            throw new FormatException($"Unknown control command {(int)type}.");
        }

        var epoch = c.U64();
        var node = new NodeId(c.U64());
        var nodes = new NodeId[ConfigCodec.Count(ref c)];
        for (var i = 0; i < nodes.Length; i++)
        {
            nodes[i] = new NodeId(c.U64());
        }

        var flag = c.Bool();
        c.ExpectEnd();
        return new ControlCommand(type, epoch, node, nodes, flag);
    }
}

/// <summary>Outcome of applying one command.</summary>
public enum ApplyOutcome
{
    Unknown = 0,
    Applied = 1,
    EpochMismatch = 2,
    Invalid = 3,
}

/// <summary>The result of a proposal once applied: the outcome and the state after it.</summary>
public sealed record ApplyResult(ApplyOutcome Outcome, ControlState State, string Reason = "");

/// <summary>The replicated state machine, driven by the host; Apply must be deterministic.</summary>
public interface IStateMachine<TState>
{
    TState Current { get; }

    /// <summary>Applies one committed entry (commands, no-ops and configurations alike), deterministically.</summary>
    ApplyResult Apply(Entry entry);

    byte[] TakeSnapshot();

    void Restore(Snapshot snapshot);
}

/// <summary>The apply function of the control state.</summary>
public sealed class ControlStateMachine(IReadOnlyList<Member>? initialMembers = null) : IStateMachine<ControlState>
{
    /// <summary>Before any entry: the founding members (as voters), or none for a node that joins.</summary>
    public ControlState Current { get; private set; } =
        ControlState.Initial with { Members = ClusterConfig.FromVoters(initialMembers ?? []).Members };

    public ApplyResult Apply(Entry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var (result, next) = entry.Type switch
        {
            EntryType.Config => (ApplyOutcome.Applied, Current with { Members = ConfigCodec.Decode(entry.Data).Members }),
            EntryType.Command => ApplyEncoded(Current, entry.Data),
            _ => (ApplyOutcome.Applied, Current),
        };
        Current = next with { AppliedIndex = entry.Index };
        return new ApplyResult(result, Current, result == ApplyOutcome.EpochMismatch ? $"epoch is {Current.Epoch}" : "");
    }

    private static (ApplyOutcome, ControlState) ApplyEncoded(ControlState state, byte[] data)
    {
        ControlCommand command;
        try
        {
            command = ControlCommand.Decode(data);
        }
        catch (FormatException)
        {
            // Deterministic on every node: an undecodable command is refused, never half-applied.
            return (ApplyOutcome.Invalid, state);
        }

        return ApplyCommand(state, command);
    }

    /// <summary>The pure transition. A refused command leaves the state unchanged.</summary>
    public static (ApplyOutcome Outcome, ControlState State) ApplyCommand(ControlState state, ControlCommand command)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(command);
        if (command.ExpectedEpoch != state.Epoch)
        {
            return (ApplyOutcome.EpochMismatch, state);
        }

        switch (command.Type)
        {
            case ControlCommandType.SetPrimary:
                if (command.Node.IsNone)
                {
                    return (ApplyOutcome.Invalid, state);
                }

                // IMPORTANT: every change of primary bumps the epoch; a primary fences itself when it sees a
                // newer epoch, and CAS on the epoch means two concurrent decisions cannot both apply.
                return (ApplyOutcome.Applied, state with
                {
                    Epoch = state.Epoch + 1,
                    Primary = command.Node,
                    PendingSwitchover = NodeId.None,
                    SyncStandbys = state.SyncStandbys.Where(n => n != command.Node).ToArray(),
                });
            case ControlCommandType.SetSyncSet:
                var set = (command.Nodes ?? []).Distinct().Order().ToArray();
                return set.Contains(state.Primary) && !state.Primary.IsNone
                    ? (ApplyOutcome.Invalid, state)
                    : (ApplyOutcome.Applied, state with { SyncStandbys = set });
            case ControlCommandType.RequestSwitchover:
                return command.Node.IsNone || command.Node == state.Primary
                    ? (ApplyOutcome.Invalid, state)
                    : (ApplyOutcome.Applied, state with { PendingSwitchover = command.Node });
            case ControlCommandType.ClearSwitchover:
                return (ApplyOutcome.Applied, state with { PendingSwitchover = NodeId.None });
            case ControlCommandType.SetMaintenance:
                return (ApplyOutcome.Applied, state with { Maintenance = command.Flag });
            default:
                return (ApplyOutcome.Invalid, state);
        }
    }

    public byte[] TakeSnapshot()
    {
        var s = Current;
        var b = new BinaryBuffer();
        ConfigCodec.Write(b, new ClusterConfig(s.Members, []));
        b.U64(s.Epoch);
        b.U64(s.Primary.Value);
        b.U32((uint)s.SyncStandbys.Count);
        foreach (var n in s.SyncStandbys)
        {
            b.U64(n.Value);
        }

        b.U64(s.PendingSwitchover.Value);
        b.Bool(s.Maintenance);
        b.U64(s.AppliedIndex.Value);
        return b.ToArray();
    }

    public void Restore(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Data.Length == 0)
        {
            Current = ControlState.Initial with { Members = snapshot.Config.Members, AppliedIndex = snapshot.Index };
            return;
        }

        var c = new BinaryCursor(snapshot.Data);
        var members = ConfigCodec.ReadConfig(ref c).Members;
        var epoch = c.U64();
        var primary = new NodeId(c.U64());
        var sync = new NodeId[ConfigCodec.Count(ref c)];
        for (var i = 0; i < sync.Length; i++)
        {
            sync[i] = new NodeId(c.U64());
        }

        var pending = new NodeId(c.U64());
        var maintenance = c.Bool();
        var applied = new LogIndex(c.U64());
        c.ExpectEnd();
        Current = new ControlState(members, epoch, primary, sync, pending, maintenance, applied);
    }
}
