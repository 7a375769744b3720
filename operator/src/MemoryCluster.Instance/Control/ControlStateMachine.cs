using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Control;

/// <summary>The apply function of the control state, and its snapshots.</summary>
/// <param name="initialMembers">The founding members (as voters), or none for a node that joins.</param>
public sealed class ControlStateMachine(IReadOnlyList<Member>? initialMembers = null) : IStateMachine<ControlState>
{
    /// <summary>Before any entry: the founding members (as voters), or none for a node that joins.</summary>
    public ControlState Current { get; private set; } =
        ControlState.Initial with { Members = ClusterConfig.FromVoters(initialMembers ?? []).Members };

    public ApplyResult<ControlState> Apply(Entry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var (result, next, reason) = entry.Type switch
        {
            EntryType.Config => (ApplyOutcome.Applied, WithMembers(Current, ConfigCodec.Decode(entry.Data).Members, entry.Index), ""),
            EntryType.Command => ApplyEncoded(Current, entry.Data),
            _ => (ApplyOutcome.Applied, Current, ""),
        };
        Current = next with { AppliedIndex = entry.Index };
        return new ApplyResult<ControlState>(result, Current, reason);
    }

    /// <summary>
    /// A new membership: its entry is kept, and the proven k falls by every standby that left (a commit acknowledged
    /// by k standbys may sit on those), and to the new k when that is lower; a larger k, and the standbys that left,
    /// are proven again by the primary once the new configuration is in force. 0: nothing is proven.
    /// </summary>
    public static ControlState WithMembers(ControlState state, IReadOnlyList<Member> members, LogIndex at)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(members);
        var primary = state.Primary.ToNodeId();
        var left = state.Members.Count(m => m.Id != primary && members.All(n => n.Id != m.Id));
        var next = state with { Members = members, MembersAt = at };
        return next with { QuorumK = Math.Max(0, Math.Min(state.QuorumK - left, next.MembersK)) };
    }

    private static (ApplyOutcome, ControlState, string Reason) ApplyEncoded(ControlState state, byte[] data)
    {
        ControlCommand command;
        try
        {
            command = ControlCommand.Decode(data);
        }
        catch (FormatException)
        {
            // Deterministic on every node: an undecodable command is refused, never half-applied.
            return (ApplyOutcome.Invalid, state, "");
        }

        var (outcome, next) = ApplyCommand(state, command);
        var reason = outcome != ApplyOutcome.Conflict ? ""
            : command.ExpectedEpoch != state.Epoch ? $"epoch is {state.Epoch}"
            : $"the membership changed (entry {state.MembersAt})";
        return (outcome, next, reason);
    }

    /// <summary>
    /// The pure transition. A refused command leaves the state unchanged: <see cref="ApplyOutcome.Conflict"/>
    /// when its expected epoch is not the current one, <see cref="ApplyOutcome.Invalid"/> when it is not allowed.
    /// </summary>
    public static (ApplyOutcome Outcome, ControlState State) ApplyCommand(ControlState state, ControlCommand command)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(command);
        if (command.ExpectedEpoch != state.Epoch)
        {
            return (ApplyOutcome.Conflict, state);
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
                    // Kept from format 1 on, when every voter's snapshots carry it too.
                    History = state.Format < 1 ? state.History : [.. state.PrimaryHistory.TakeLast(ControlState.HistoryLimit - 1), new PrimaryChange(state.Epoch.Next(), state.Primary, command.Node, command.Reason, command.AtUnixMs)],
                    Epoch = state.Epoch.Next(),
                    Primary = command.Node,
                    PendingSwitchover = MemberId.None,
                    SyncStandbys = state.SyncStandbys.Where(n => n != command.Node).ToArray(),

                    // The proven k carries over: a standby promotes only with the membership's k in force
                    // (PostgresPlanner), and its commits then wait for that many standbys from the first. The first
                    // primary starts from initdb with the configuration of a membership at least this one: its k.
                    QuorumK = state.Epoch == Epoch.Zero ? state.MembersK : state.QuorumK,
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
                return (ApplyOutcome.Applied, state with { PendingSwitchover = MemberId.None });
            case ControlCommandType.SetMaintenance:
                return (ApplyOutcome.Applied, state with { Maintenance = command.Flag });
            case ControlCommandType.SetFormat:
                // Only rises; any level (a newer release's too): every voter applies it alike.
                return command.K <= state.Format ? (ApplyOutcome.Invalid, state) : (ApplyOutcome.Applied, state with { Format = command.K });
            case ControlCommandType.SetQuorumK:
                // IMPORTANT: a proof made under another membership proves nothing about the commits since it changed.
                if (command.MembersAt != state.MembersAt)
                {
                    return (ApplyOutcome.Conflict, state);
                }

                return command.K < 1 || command.K > state.MembersK || state.Primary.IsNone
                    ? (ApplyOutcome.Invalid, state)
                    : (ApplyOutcome.Applied, state with { QuorumK = command.K });
            default:
                return (ApplyOutcome.Invalid, state);
        }
    }

    /// <summary>
    /// The snapshot format: the members (as <see cref="ConfigCodec"/> writes a configuration, no retired ids),
    /// <c>u64 epoch, u64 primary, u32 count, u64 standbys..., u64 pending switchover, bool maintenance,
    /// u64 applied index</c>, then, only when either is not zero or the control format is 1 or more, <c>u64 members
    /// entry, u32 quorum k</c>, then, only from control format 1 on (every voter reads it), <c>u32 format, u32 count,
    /// (u64 epoch, u64 from, u64 to, u8 reason, u64 unix ms)...</c>. Snapshots on disk hold this format: never change
    /// it (one without a tail restores it as zero or empty).
    /// </summary>
    public byte[] TakeSnapshot()
    {
        var s = Current;
        var b = new BinaryBuffer();
        ConfigCodec.Write(b, new ClusterConfig(s.Members, []));
        b.U64(s.Epoch.Value);
        b.U64(s.Primary.Value);
        b.U32((uint)s.SyncStandbys.Count);
        foreach (var n in s.SyncStandbys)
        {
            b.U64(n.Value);
        }

        b.U64(s.PendingSwitchover.Value);
        b.Bool(s.Maintenance);
        b.U64(s.AppliedIndex.Value);
        if (s.MembersAt != LogIndex.Zero || s.QuorumK != 0 || s.Format >= 1)
        {
            b.U64(s.MembersAt.Value);
            b.U32((uint)s.QuorumK);
        }

        if (s.Format >= 1)
        {
            b.U32((uint)s.Format);
            b.U32((uint)s.PrimaryHistory.Count);
            foreach (var h in s.PrimaryHistory)
            {
                b.U64(h.Epoch.Value);
                b.U64(h.From.Value);
                b.U64(h.To.Value);
                b.U8((byte)h.Reason);
                b.U64((ulong)h.AtUnixMs);
            }
        }

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
        var epoch = new Epoch(c.U64());
        var primary = new MemberId(c.U64());
        var sync = new MemberId[ConfigCodec.Count(ref c)];
        for (var i = 0; i < sync.Length; i++)
        {
            sync[i] = new MemberId(c.U64());
        }

        var pending = new MemberId(c.U64());
        var maintenance = c.Bool();
        var applied = new LogIndex(c.U64());
        var (membersAt, quorumK) = c.AtEnd ? (LogIndex.Zero, 0u) : (new LogIndex(c.U64()), c.U32());
        var format = c.AtEnd ? 0u : c.U32();
        var history = c.AtEnd ? [] : new PrimaryChange[ConfigCodec.Count(ref c)];
        for (var i = 0; i < history.Length; i++)
        {
            var (at, from, to, reason, unixMs) = (new Epoch(c.U64()), new MemberId(c.U64()), new MemberId(c.U64()), (PrimaryChangeReason)c.U8(), c.U64());
            history[i] = !Enum.IsDefined(reason) || unixMs > long.MaxValue
                ? throw new FormatException($"control snapshot: history entry {i} has reason {(int)reason} and time {unixMs}")
                : new PrimaryChange(at, from, to, reason, (long)unixMs);
        }

        c.ExpectEnd();
        if (quorumK > int.MaxValue || format > int.MaxValue)
        {
            throw new FormatException($"control snapshot: quorum k {quorumK} or format {format} is out of range");
        }

        Current = new ControlState(members, epoch, primary, sync, pending, maintenance, applied, membersAt, (int)quorumK, history, (int)format);
    }
}
