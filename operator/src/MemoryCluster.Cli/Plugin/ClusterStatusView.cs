using System.Globalization;
using System.Text;
using MemoryCluster.Api;

namespace MemoryCluster.Cli.Plugin;

/// <summary>One Event about a cluster as <c>kubectl memorycluster status</c> shows it.</summary>
/// <param name="At">When it last happened.</param>
/// <param name="Type">Normal or Warning.</param>
/// <param name="Reason">Its reason (PrimaryChanged, SwitchoverRefused, ...).</param>
/// <param name="Note">What it says.</param>
/// <param name="Count">How many times it happened (1, or its series' count).</param>
internal sealed record ClusterEvent(DateTimeOffset At, string Type, string Reason, string Note, int Count);

/// <summary>
/// What <c>kubectl memorycluster status NAME</c> prints: the cluster's state in a few lines, its instances (role,
/// timeline, position, lag, health), its conditions, and its most recent Events. Pure: the same input gives the
/// same text.
/// </summary>
internal static class ClusterStatusView
{
    public const int EventsShown = 10;

    public static string Render(MemoryClusterResource cluster, IReadOnlyList<ClusterEvent> events, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var status = cluster.Status;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Cluster:   {cluster.Metadata.Namespace}/{cluster.Metadata.Name}\n");
        text.Append(CultureInfo.InvariantCulture, $"Phase:     {status?.Phase ?? "(no status yet)"}\n");
        text.Append(CultureInfo.InvariantCulture, $"Primary:   {status?.CurrentPrimary ?? "none"}{(status?.Epoch is { } epoch ? $" (epoch {epoch})" : "")}\n");
        text.Append(CultureInfo.InvariantCulture, $"Instances: {status?.ReadyInstances ?? 0} of {cluster.Spec.Instances} ready; replication {cluster.Spec.Replication.Mode}; Raft leader {status?.RaftLeader ?? "unknown"}\n");
        if (status?.ObservedGeneration is { } observed && cluster.Metadata.Generation is { } generation && observed < generation)
        {
            text.Append(CultureInfo.InvariantCulture, $"Note:      the operator has not seen the latest spec yet (generation {generation}, status of {observed})\n");
        }

        if (Operator.Planning.ClusterAnnotations.RequestedSwitchover(cluster.Metadata) is { } to)
        {
            text.Append(CultureInfo.InvariantCulture, $"Requested: switchover to {to}\n");
        }

        text.Append('\n');
        var instances = new List<string[]> { new[] { "INSTANCE", "ROLE", "TIMELINE", "LSN", "LAG", "READY", "MESSAGE" } };
        instances.AddRange((status?.Instances ?? []).Select(i => new[]
        {
            i.Name,
            i.Role ?? "-",
            i.Timeline?.ToString(CultureInfo.InvariantCulture) ?? "-",
            i.Lsn ?? "-",
            i.LagBytes is { } lag ? Bytes(lag) : "-",
            i.Healthy switch { true => "yes", false => "no", null => "-" },
            (i.Message ?? "") + (i.PendingRestart is { Count: > 0 } pending ? $" (restart pending: {string.Join(", ", pending)})" : ""),
        }));
        text.Append(instances.Count == 1 ? "No instance has reported yet.\n" : Columns(instances));

        text.Append('\n');
        var conditions = new List<string[]> { new[] { "CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE" } };
        conditions.AddRange((status?.Conditions ?? []).Select(c => new[] { c.Type, c.Status, c.Reason, Age(now - c.LastTransitionTime), c.Message }));
        text.Append(conditions.Count == 1 ? "No conditions yet.\n" : Columns(conditions));

        text.Append('\n');
        var recent = events.OrderBy(e => e.At).TakeLast(EventsShown).ToList();
        var rows = new List<string[]> { new[] { "AGE", "TYPE", "REASON", "MESSAGE" } };
        rows.AddRange(recent.Select(e => new[] { Age(now - e.At), e.Type, e.Reason, e.Count > 1 ? $"{e.Note} (x{e.Count})" : e.Note }));
        text.Append(recent.Count == 0 ? "No recent events.\n" : Columns(rows));
        return text.ToString();
    }

    /// <summary>An age as kubectl shows one: 45s, 3m12s, 5h4m, 2d3h.</summary>
    internal static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }

        return age.TotalSeconds < 60 ? $"{(int)age.TotalSeconds}s"
            : age.TotalMinutes < 60 ? $"{(int)age.TotalMinutes}m{age.Seconds}s"
            : age.TotalHours < 24 ? $"{(int)age.TotalHours}h{age.Minutes}m"
            : $"{(int)age.TotalDays}d{age.Hours}h";
    }

    /// <summary>Bytes in the largest unit that keeps a whole number: 0 B, 512 B, 8 kB, 3 MB.</summary>
    internal static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024} kB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024 * 1024)} MB",
        _ => $"{bytes / (1024L * 1024 * 1024)} GB",
    };

    private static string Columns(List<string[]> rows) => Local.LocalCluster.Columns(rows);
}
