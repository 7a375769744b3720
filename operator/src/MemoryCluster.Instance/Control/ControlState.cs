using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Control;

/// <summary>
/// The replicated control state: members, the epoch (fencing token, +1 on every change of primary),
/// the primary, the synchronous standby set, a pending switchover and the maintenance flag. Nothing else.
/// </summary>
/// <param name="Members">The Raft members, as of the last configuration applied.</param>
/// <param name="Epoch">The fencing token.</param>
/// <param name="Primary">The member that may run as primary at <paramref name="Epoch"/>; none before the first.</param>
/// <param name="SyncStandbys">The synchronous standby set (never the primary), sorted.</param>
/// <param name="PendingSwitchover">The member a switchover was requested to; none when there is no request.</param>
/// <param name="Maintenance">Automatic failover is paused.</param>
/// <param name="AppliedIndex">The last Raft entry applied to this state.</param>
/// <param name="MembersAt">The Raft entry that set <paramref name="Members"/> (zero: the founding members, or a snapshot taken before this was kept).</param>
/// <param name="QuorumK">
/// Quorum mode: the number of standbys of the membership proven to hold every acknowledged commit (0: none proven).
/// Set to the membership's k by the first primary (it starts from initdb with that configuration) and by the
/// primary's proof (<see cref="ControlCommandType.SetQuorumK"/>); kept across a change of primary (a standby promotes
/// only with the membership's configuration in force); lowered by every standby that leaves the membership and to a
/// lower k; a membership with a higher k leaves it as it was until the primary proves the new k.
/// </param>
/// <param name="History">The last <see cref="HistoryLimit"/> changes of primary, oldest first, kept from control format 1 on.</param>
/// <param name="Format">The control format every voter reads (<see cref="ControlCommand.HighestFormat"/>); only rises.</param>
public sealed record ControlState(
    IReadOnlyList<Member> Members,
    Epoch Epoch,
    MemberId Primary,
    IReadOnlyList<MemberId> SyncStandbys,
    MemberId PendingSwitchover,
    bool Maintenance,
    LogIndex AppliedIndex,
    LogIndex MembersAt = default,
    int QuorumK = 0,
    IReadOnlyList<PrimaryChange>? History = null,
    int Format = 0)
{
    /// <summary>How many changes of primary the state keeps: enough for the questions of a day, small in every snapshot.</summary>
    public const int HistoryLimit = 100;

    /// <summary>The changes of primary kept, oldest first.</summary>
    public IReadOnlyList<PrimaryChange> PrimaryHistory => History ?? [];

    public static readonly ControlState Initial = new([], Epoch.Zero, MemberId.None, [], MemberId.None, false, LogIndex.Zero);

    /// <summary>Equal field for field, lists by their elements (record equality compares lists by reference).</summary>
    public bool SameAs(ControlState other) =>
        Members.SequenceEqual(other.Members) && Epoch == other.Epoch && Primary == other.Primary &&
        SyncStandbys.SequenceEqual(other.SyncStandbys) && PendingSwitchover == other.PendingSwitchover &&
        Maintenance == other.Maintenance && AppliedIndex == other.AppliedIndex && MembersAt == other.MembersAt && QuorumK == other.QuorumK &&
        PrimaryHistory.SequenceEqual(other.PrimaryHistory) && Format == other.Format;

    /// <summary>Quorum mode's k for <see cref="Members"/>: ⌊voters/2⌋ (the one definition: <see cref="Node.MembershipPlanner.SyncStandbyCount"/>).</summary>
    public int MembersK => Node.MembershipPlanner.SyncStandbyCount(Members.Count(m => m.IsVoter));
}

/// <summary>Why the primary changed. The numbers are part of the stored format.</summary>
public enum PrimaryChangeReason
{
    /// <summary>Proposed by a manager older than the history (no reason was stored).</summary>
    Unknown = 0,

    /// <summary>The first primary of the cluster.</summary>
    Bootstrap = 1,

    /// <summary>A requested switchover completed.</summary>
    Switchover = 2,

    /// <summary>A switchover timed out and the primary resumed at a new epoch.</summary>
    SwitchoverAborted = 3,

    /// <summary>The Raft leader promoted a replica because the primary failed.</summary>
    Failover = 4,
}

/// <summary>One change of primary: the epoch it began, from and to which member, why, and when it was proposed (Unix ms, the proposer's clock; 0 when unknown).</summary>
public sealed record PrimaryChange(Epoch Epoch, MemberId From, MemberId To, PrimaryChangeReason Reason, long AtUnixMs);
