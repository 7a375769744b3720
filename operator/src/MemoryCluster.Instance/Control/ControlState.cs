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
public sealed record ControlState(
    IReadOnlyList<Member> Members,
    Epoch Epoch,
    MemberId Primary,
    IReadOnlyList<MemberId> SyncStandbys,
    MemberId PendingSwitchover,
    bool Maintenance,
    LogIndex AppliedIndex)
{
    public static readonly ControlState Initial = new([], Epoch.Zero, MemberId.None, [], MemberId.None, false, LogIndex.Zero);

    /// <summary>Equal field for field, lists by their elements (record equality compares lists by reference).</summary>
    public bool SameAs(ControlState other) =>
        Members.SequenceEqual(other.Members) && Epoch == other.Epoch && Primary == other.Primary &&
        SyncStandbys.SequenceEqual(other.SyncStandbys) && PendingSwitchover == other.PendingSwitchover &&
        Maintenance == other.Maintenance && AppliedIndex == other.AppliedIndex;
}
