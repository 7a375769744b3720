namespace MemoryCluster.Raft.Sim;

/// <summary>
/// The state the simulator, the Raft tests and the Raft benchmark replicate: a register with a version that every
/// <see cref="RegisterCommandType.Set"/> bumps, a flag, the members and the applied index. Small, but it
/// has what makes a state machine worth checking: compare-and-set, configurations, snapshots.
/// </summary>
internal sealed record RegisterState(IReadOnlyList<Member> Members, ulong Version, ulong Value, bool Flag, LogIndex AppliedIndex)
{
    public static readonly RegisterState Initial = new([], 0, 0, false, LogIndex.Zero);
}

/// <summary>Kinds of register command.</summary>
internal enum RegisterCommandType
{
    Unknown = 0,

    /// <summary>Sets the value and bumps the version.</summary>
    Set = 1,

    /// <summary>Sets the flag; the version stays.</summary>
    SetFlag = 2,
}

/// <summary>A command on the register, refused unless <see cref="ExpectedVersion"/> is the current version.</summary>
internal sealed record RegisterCommand(RegisterCommandType Type, ulong ExpectedVersion, ulong Value = 0, bool Flag = false)
{
    public static RegisterCommand Set(ulong expectedVersion, ulong value) => new(RegisterCommandType.Set, expectedVersion, Value: value);

    public static RegisterCommand SetFlag(ulong expectedVersion, bool on) => new(RegisterCommandType.SetFlag, expectedVersion, Flag: on);

    public byte[] Encode()
    {
        var b = new BinaryBuffer();
        b.U8((byte)Type);
        b.U64(ExpectedVersion);
        b.U64(Value);
        b.Bool(Flag);
        return b.ToArray();
    }

    public static RegisterCommand Decode(ReadOnlySpan<byte> data)
    {
        var c = new BinaryCursor(data);
        var type = (RegisterCommandType)c.U8();
        if (type is not (RegisterCommandType.Set or RegisterCommandType.SetFlag))
        {
            throw new FormatException($"Unknown register command {(int)type}.");
        }

        var command = new RegisterCommand(type, c.U64(), c.U64(), c.Bool());
        c.ExpectEnd();
        return command;
    }

    public override string ToString() => Type == RegisterCommandType.Set ? $"set({ExpectedVersion},{Value})" : $"flag({ExpectedVersion},{Flag})";
}

/// <summary>The register's apply function and snapshots.</summary>
internal sealed class RegisterStateMachine(IReadOnlyList<Member>? initialMembers = null) : IStateMachine<RegisterState>
{
    public RegisterState Current { get; private set; } =
        RegisterState.Initial with { Members = ClusterConfig.FromVoters(initialMembers ?? []).Members };

    public ApplyResult<RegisterState> Apply(Entry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var (outcome, next) = entry.Type switch
        {
            EntryType.Config => (ApplyOutcome.Applied, Current with { Members = ConfigCodec.Decode(entry.Data).Members }),
            EntryType.Command => ApplyEncoded(Current, entry.Data),
            _ => (ApplyOutcome.Applied, Current),
        };
        Current = next with { AppliedIndex = entry.Index };
        return new ApplyResult<RegisterState>(outcome, Current, outcome == ApplyOutcome.Conflict ? $"version is {Current.Version}" : "");
    }

    private static (ApplyOutcome, RegisterState) ApplyEncoded(RegisterState state, byte[] data)
    {
        RegisterCommand command;
        try
        {
            command = RegisterCommand.Decode(data);
        }
        catch (FormatException)
        {
            return (ApplyOutcome.Invalid, state);
        }

        if (command.ExpectedVersion != state.Version)
        {
            return (ApplyOutcome.Conflict, state);
        }

        return command.Type == RegisterCommandType.Set
            ? (ApplyOutcome.Applied, state with { Version = state.Version + 1, Value = command.Value })
            : (ApplyOutcome.Applied, state with { Flag = command.Flag });
    }

    public byte[] TakeSnapshot()
    {
        var s = Current;
        var b = new BinaryBuffer();
        ConfigCodec.Write(b, new ClusterConfig(s.Members, []));
        b.U64(s.Version);
        b.U64(s.Value);
        b.Bool(s.Flag);
        b.U64(s.AppliedIndex.Value);
        return b.ToArray();
    }

    public void Restore(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Data.Length == 0)
        {
            Current = RegisterState.Initial with { Members = snapshot.Config.Members, AppliedIndex = snapshot.Index };
            return;
        }

        var c = new BinaryCursor(snapshot.Data);
        var members = ConfigCodec.ReadConfig(ref c).Members;
        Current = new RegisterState(members, c.U64(), c.U64(), c.Bool(), new LogIndex(c.U64()));
        c.ExpectEnd();
    }
}
