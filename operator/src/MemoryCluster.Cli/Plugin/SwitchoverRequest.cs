using MemoryCluster.Api;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Cli.Plugin;

/// <summary>Where a switchover asked through <c>kubectl memorycluster switchover</c> stands.</summary>
internal enum SwitchoverState
{
    Waiting,
    Done,
    Refused,
}

/// <summary>
/// The decisions of <c>kubectl memorycluster switchover NAME --to POD</c>, pure: whether to ask at all, and, from
/// what the cluster shows afterwards, whether the switchover happened or was refused.
/// </summary>
internal static class SwitchoverRequest
{
    /// <summary>Why the request should not be made (an error for the user), or null to make it.</summary>
    public static string? Refusal(MemoryClusterResource cluster, string to)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var name = cluster.Metadata.Name;
        var instances = (cluster.Status?.Instances ?? []).Select(i => i.Name).ToList();
        if (cluster.Status?.CurrentPrimary is null)
        {
            return $"{name} has no primary now: a switchover needs one (see `kubectl memorycluster status {name}`)";
        }

        if (!instances.Contains(to))
        {
            return $"{to} is not an instance of {name} (instances: {string.Join(", ", instances)})";
        }

        return to == cluster.Status.CurrentPrimary ? $"{to} is the primary already" : null;
    }

    /// <summary>
    /// Done once <paramref name="to"/> is the primary at an epoch above <paramref name="startEpoch"/>; refused once the
    /// operator removed the request without that and recorded a <c>SwitchoverRefused</c> Event since the request
    /// (<paramref name="refusal"/>); waiting otherwise.
    /// </summary>
    public static SwitchoverState State(MemoryClusterResource cluster, string to, long startEpoch, string? refusal)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        if (cluster.Status?.CurrentPrimary == to && cluster.Status.Epoch > startEpoch)
        {
            return SwitchoverState.Done;
        }

        return ClusterAnnotations.RequestedSwitchover(cluster.Metadata) is null && refusal is not null ? SwitchoverState.Refused : SwitchoverState.Waiting;
    }
}
