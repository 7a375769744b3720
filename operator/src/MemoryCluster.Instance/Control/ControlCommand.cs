using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Control;

/// <summary>Kinds of control command. The numbers are part of the stored format.</summary>
public enum ControlCommandType
{
    Unknown = 0,
    SetPrimary = 1,
    SetSyncSet = 2,
    RequestSwitchover = 3,
    ClearSwitchover = 4,
    SetMaintenance = 5,
    SetQuorumK = 6,
    SetFormat = 7,
}

/// <summary>
/// A command on the control state. Every command carries <see cref="ExpectedEpoch"/> and is refused
/// unless it equals the current epoch (compare-and-set), so decisions taken on a stale view never apply.
/// </summary>
/// <param name="Type">What the command does.</param>
/// <param name="ExpectedEpoch">The epoch the command was decided at.</param>
/// <param name="Node">The member it names: the new primary, or the switchover target.</param>
/// <param name="Nodes">The synchronous standby set of <see cref="ControlCommandType.SetSyncSet"/>.</param>
/// <param name="Flag">The maintenance flag of <see cref="ControlCommandType.SetMaintenance"/>.</param>
/// <param name="MembersAt"><see cref="ControlCommandType.SetQuorumK"/>: the membership (its Raft entry) the proof was made under; refused once another applies.</param>
/// <param name="K"><see cref="ControlCommandType.SetQuorumK"/>: the k proven.</param>
/// <param name="Reason"><see cref="ControlCommandType.SetPrimary"/>: why, for the history.</param>
/// <param name="AtUnixMs"><see cref="ControlCommandType.SetPrimary"/>: when it was proposed (Unix ms), stamped by the proposing host (<see cref="ForFormat"/>).</param>
public sealed record ControlCommand(
    ControlCommandType Type,
    Epoch ExpectedEpoch,
    MemberId Node = default,
    IReadOnlyList<MemberId>? Nodes = null,
    bool Flag = false,
    LogIndex MembersAt = default,
    int K = 0,
    PrimaryChangeReason Reason = PrimaryChangeReason.Unknown,
    long AtUnixMs = 0)
{
    public static ControlCommand SetPrimary(Epoch expectedEpoch, MemberId primary, PrimaryChangeReason reason) => new(ControlCommandType.SetPrimary, expectedEpoch, primary, Reason: reason);

    /// <summary>Every voter reads the control format <paramref name="level"/>: writers may use it from now on.</summary>
    public static ControlCommand SetFormat(Epoch expectedEpoch, int level) => new(ControlCommandType.SetFormat, expectedEpoch, K: level);

    /// <summary>
    /// The highest control format this code reads and writes. 0: commands of versions 1 and 2 only, no history.
    /// 1: SetPrimary version 3 (reason and time), SetFormat (version 4), and the history, also in snapshots. A
    /// writer uses a format only once the control state says every voter reads it (<see cref="ControlState.Format"/>,
    /// raised by the Raft leader when every voter reports it): a manager of an older release, in a rolling update,
    /// never meets an entry or a snapshot it cannot read.
    /// </summary>
    public const int HighestFormat = 1;

    /// <summary>
    /// This command as written under the control format <paramref name="format"/>, a change of primary stamped with
    /// the proposer's wall clock: under format 0 without reason nor time (version 1, as older releases read it).
    /// </summary>
    public ControlCommand ForFormat(int format, DateTimeOffset now) =>
        Type != ControlCommandType.SetPrimary ? this
        : format < 1 ? this with { Reason = PrimaryChangeReason.Unknown, AtUnixMs = 0 }
        : AtUnixMs == 0 ? this with { AtUnixMs = now.ToUnixTimeMilliseconds() }
        : this;

    public static ControlCommand SetSyncSet(Epoch expectedEpoch, IReadOnlyList<MemberId> standbys) => new(ControlCommandType.SetSyncSet, expectedEpoch, Nodes: standbys);

    public static ControlCommand RequestSwitchover(Epoch expectedEpoch, MemberId target) => new(ControlCommandType.RequestSwitchover, expectedEpoch, target);

    public static ControlCommand ClearSwitchover(Epoch expectedEpoch) => new(ControlCommandType.ClearSwitchover, expectedEpoch);

    public static ControlCommand SetMaintenance(Epoch expectedEpoch, bool on) => new(ControlCommandType.SetMaintenance, expectedEpoch, Flag: on);

    /// <summary>
    /// The primary proved that <paramref name="k"/> standbys hold every commit it acknowledged, under the membership
    /// set by entry <paramref name="membersAt"/>.
    /// </summary>
    public static ControlCommand SetQuorumK(Epoch expectedEpoch, LogIndex membersAt, int k) => new(ControlCommandType.SetQuorumK, expectedEpoch, MembersAt: membersAt, K: k);

    private const byte FormatVersion = 1;

    /// <summary>Version 2 holds <see cref="ControlCommandType.SetQuorumK"/> only: <c>u8 2, u8 type, u64 epoch, u64 membersAt, u32 k</c>.</summary>
    private const byte QuorumFormatVersion = 2;

    /// <summary>Version 3 holds <see cref="ControlCommandType.SetPrimary"/> only: <c>u8 3, u8 type, u64 epoch, u64 node, u8 reason, u64 unix ms</c>.</summary>
    private const byte PrimaryFormatVersion = 3;

    /// <summary>Version 4 holds <see cref="ControlCommandType.SetFormat"/> only: <c>u8 4, u8 type, u64 epoch, u32 level</c>.</summary>
    private const byte FormatFormatVersion = 4;

    /// <summary>
    /// The command as stored in the Raft log: <c>u8 version, u8 type, u64 epoch, u64 node, u32 count, u64 nodes...,
    /// bool flag</c>, little-endian (version 1; <see cref="ControlCommandType.SetQuorumK"/> is version 2,
    /// <see cref="ControlCommandType.SetPrimary"/> version 3; version 1 SetPrimary in older logs still reads, with
    /// no reason nor time). Logs on disk hold this format: never change it without a new version.
    /// </summary>
    public byte[] Encode()
    {
        var b = new BinaryBuffer();

        // One without a reason nor a time is written as version 1, as it was read from an older log: the same bytes.
        if (Type == ControlCommandType.SetPrimary && (Reason != PrimaryChangeReason.Unknown || AtUnixMs != 0))
        {
            b.U8(PrimaryFormatVersion);
            b.U8((byte)Type);
            b.U64(ExpectedEpoch.Value);
            b.U64(Node.Value);
            b.U8((byte)Reason);
            b.U64((ulong)AtUnixMs);
            return b.ToArray();
        }

        if (Type == ControlCommandType.SetFormat)
        {
            b.U8(FormatFormatVersion);
            b.U8((byte)Type);
            b.U64(ExpectedEpoch.Value);
            b.U32((uint)K);
            return b.ToArray();
        }

        if (Type == ControlCommandType.SetQuorumK)
        {
            b.U8(QuorumFormatVersion);
            b.U8((byte)Type);
            b.U64(ExpectedEpoch.Value);
            b.U64(MembersAt.Value);
            b.U32((uint)K);
            return b.ToArray();
        }

        b.U8(FormatVersion);
        b.U8((byte)Type);
        b.U64(ExpectedEpoch.Value);
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

    /// <summary>Reads the type of a command of a version that carries one type only, and refuses any other.</summary>
    private static void ExpectType(ref BinaryCursor c, byte version, ControlCommandType type)
    {
        if ((ControlCommandType)c.U8() != type)
        {
            throw new FormatException($"A version {version} control command must be {type}.");
        }
    }

    /// <summary>Reads a command written by <see cref="Encode"/>; throws <see cref="FormatException"/> on anything else.</summary>
    public static ControlCommand Decode(ReadOnlySpan<byte> data)
    {
        var c = new BinaryCursor(data);
        var version = c.U8();
        if (version == QuorumFormatVersion)
        {
            ExpectType(ref c, version, ControlCommandType.SetQuorumK);
            var at = new Epoch(c.U64());
            var membersAt = new LogIndex(c.U64());
            var k = c.U32();
            c.ExpectEnd();
            return k > int.MaxValue ? throw new FormatException($"SetQuorumK: k {k} is out of range.") : SetQuorumK(at, membersAt, (int)k);
        }

        if (version == FormatFormatVersion)
        {
            ExpectType(ref c, version, ControlCommandType.SetFormat);
            var at = new Epoch(c.U64());
            var level = c.U32();
            c.ExpectEnd();
            return level > int.MaxValue ? throw new FormatException($"SetFormat: level {level} is out of range.") : SetFormat(at, (int)level);
        }

        if (version == PrimaryFormatVersion)
        {
            ExpectType(ref c, version, ControlCommandType.SetPrimary);
            var at = new Epoch(c.U64());
            var primary = new MemberId(c.U64());
            var reason = (PrimaryChangeReason)c.U8();
            var unixMs = c.U64();
            c.ExpectEnd();
            if (!Enum.IsDefined(reason))
            {
                throw new FormatException($"SetPrimary: unknown reason {(int)reason}.");
            }

            return unixMs > long.MaxValue
                ? throw new FormatException($"SetPrimary: time {unixMs} is out of range.")
                : new ControlCommand(ControlCommandType.SetPrimary, at, primary, Reason: reason, AtUnixMs: (long)unixMs);
        }

        if (version != FormatVersion)
        {
            throw new FormatException($"Unknown control command version {version}.");
        }

        var type = (ControlCommandType)c.U8();
        if (type is < ControlCommandType.SetPrimary or > ControlCommandType.SetMaintenance)
        {
            throw new FormatException($"Unknown control command {(int)type}.");
        }

        var epoch = new Epoch(c.U64());
        var node = new MemberId(c.U64());
        var nodes = new MemberId[ConfigCodec.Count(ref c)];
        for (var i = 0; i < nodes.Length; i++)
        {
            nodes[i] = new MemberId(c.U64());
        }

        var flag = c.Bool();
        c.ExpectEnd();
        return new ControlCommand(type, epoch, node, nodes, flag);
    }
}
