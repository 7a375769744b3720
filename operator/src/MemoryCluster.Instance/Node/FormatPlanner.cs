using MemoryCluster.Instance.Control;

namespace MemoryCluster.Instance.Node;

/// <summary>
/// When the Raft leader raises the cluster's control format (<see cref="ControlState.Format"/>): only once every member
/// (voters and learners, which apply the same log) reports reading it, so that a manager of an older release, in a
/// rolling update, never meets an entry or a snapshot it cannot read. Pure.
/// </summary>
public static class FormatPlanner
{
    /// <summary>How long a first Raft leader waits for every member's report before it bootstraps in the format the cluster has (a member down at creation).</summary>
    public const long BootstrapWaitMs = 5_000;

    /// <summary>The format to raise the cluster to now: the lowest any member reports reading, when above the cluster's; null when a member was not heard, or reads no more than the cluster writes.</summary>
    public static int? Raise(ControlState control, IReadOnlyDictionary<MemberId, PeerView> views)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(views);
        if (control.Members.Count == 0)
        {
            return null;
        }

        var lowest = control.Members.Min(m => views.TryGetValue(MemberId.FromNodeId(m.Id), out var view) && view.Reachable ? view.ControlFormat : -1);
        return lowest > control.Format ? lowest : null;
    }

    /// <summary>
    /// Whether the first Raft leader may propose the first primary: once the cluster writes this release's format
    /// (its history then starts with the bootstrap), or when it cannot be raised now and the leader has waited
    /// <see cref="BootstrapWaitMs"/> for every member's report.
    /// </summary>
    public static bool BootstrapMayProceed(ControlState control, IReadOnlyDictionary<MemberId, PeerView> views, long ledForMs) =>
        control.Format >= ControlCommand.HighestFormat || (Raise(control, views) is null && ledForMs >= BootstrapWaitMs);
}
