using System.Globalization;
using MemoryCluster.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Manager;

/// <summary>What the Raft leader's manager sees when it checks the primary.</summary>
/// <param name="Control">The committed control state.</param>
/// <param name="Members">How many instances the cluster has (3 or 5).</param>
/// <param name="Quorum">Quorum mode: every acknowledged commit is on the primary and ⌊n/2⌋ standbys.</param>
/// <param name="Views">Every member's last report, this one's included.</param>
/// <param name="NowMs">The leader's monotonic clock.</param>
/// <param name="LastRenewalMs">The latest of: the last renewal this leader granted for the current epoch, when it saw that epoch committed, when it became leader.</param>
/// <param name="FencedSeenAtMs">When this leader first saw the primary report itself fenced at the current epoch; null if it has not.</param>
/// <param name="Timings">The lease rules.</param>
internal sealed record FailoverInput(
    ControlState Control,
    int Members,
    bool Quorum,
    IReadOnlyDictionary<ulong, PeerView> Views,
    long NowMs,
    long LastRenewalMs,
    long? FencedSeenAtMs,
    LeaseTimings Timings);

/// <summary>What the leader does about the primary.</summary>
internal abstract record FailoverDecision(string Why)
{
    /// <summary>The primary holds its lease (or there is none yet); nothing to do.</summary>
    public sealed record Healthy(string Why) : FailoverDecision(Why);

    /// <summary>The primary has failed but no replacement can be chosen safely; <see cref="FailoverDecision.Why"/> says why.</summary>
    public sealed record Blocked(string Why) : FailoverDecision(Why);

    /// <summary>Commit <c>{epoch+1, primary = Target}</c>.</summary>
    public sealed record Promote(ulong Target, string Why) : FailoverDecision(Why);
}

/// <summary>
/// The leader's failover choice (docs/failover.md). Pure: the manager gathers <see cref="FailoverInput"/> and
/// proposes what this returns, with compare-and-set on the epoch.
/// </summary>
internal static class FailoverPlanner
{
    /// <summary>How long the leader waits for fresh replica reports before it restarts a fenced primary instead.</summary>
    public static readonly TimeSpan FreshReportWait = TimeSpan.FromSeconds(2);

    public static FailoverDecision Decide(FailoverInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var control = input.Control;
        if (control.Epoch == Epoch.Zero || control.Primary.IsNone)
        {
            return new FailoverDecision.Healthy("no primary yet");
        }

        var primary = control.Primary.Value;
        input.Views.TryGetValue(primary, out var old);
        var name = old?.Name ?? $"member {primary}";
        var reportedFenced = old is { Reachable: true } && old.FencedEpoch == control.Epoch.Value && input.FencedSeenAtMs is not null;

        // The instant after which the old primary writes nothing more: a state read later shows every
        // acknowledged commit.
        long stoppedBy;
        string cause;
        if (reportedFenced)
        {
            stoppedBy = input.FencedSeenAtMs!.Value;
            cause = $"{name} reported its Postgres stopped and itself fenced at epoch {control.Epoch}";
        }
        else
        {
            var silentMs = input.NowMs - input.LastRenewalMs;
            var promoteAfterMs = (long)input.Timings.PromoteAfter.TotalMilliseconds;
            if (silentMs < promoteAfterMs)
            {
                return new FailoverDecision.Healthy(silentMs <= (long)input.Timings.FenceAfter.TotalMilliseconds
                    ? $"primary {name} holds its lease"
                    : $"primary {name} has not renewed its lease for {Seconds(silentMs)}; a replacement may be promoted after {Seconds(promoteAfterMs)}");
            }

            stoppedBy = input.LastRenewalMs + (long)input.Timings.StoppedWritingAfter.TotalMilliseconds;
            cause = $"no lease renewal from {name} for {Seconds(silentMs)} (fenced by its own rule after {Seconds((long)input.Timings.FenceAfter.TotalMilliseconds)})";
        }

        if (control.Maintenance)
        {
            return new FailoverDecision.Blocked($"{cause}; maintenance mode is on, so automatic failover is paused");
        }

        var fresh = input.Views.Values
            .Where(v => v.Id != primary && v.Reachable && v.PostgresRunning && v.Role == InstanceRoles.Replica && v.StateAtMs > stoppedBy)
            .ToList();
        var reason = Candidates(input, fresh, out var best);
        if (best is not null)
        {
            return new FailoverDecision.Promote(best.Id, $"{cause}; {reason}");
        }

        // No replica can be promoted safely. A primary that fenced itself and still answers holds every
        // commit it acknowledged: it may start again, at a new epoch, once the replicas have had time to report.
        if (reportedFenced && input.NowMs - stoppedBy < (long)FreshReportWait.TotalMilliseconds)
        {
            return new FailoverDecision.Blocked($"{cause}; {reason}; waiting up to {Seconds((long)FreshReportWait.TotalMilliseconds)} for replica reports");
        }

        return reportedFenced
            ? new FailoverDecision.Promote(primary, $"{cause}; {reason}; restarting {name} as primary at a new epoch")
            : new FailoverDecision.Blocked($"{cause}; {reason}");
    }

    private static string Candidates(FailoverInput input, List<PeerView> fresh, out PeerView? best)
    {
        best = null;
        var standbys = input.Members - 1;
        if (fresh.Count == 0)
        {
            return "no replica reports a running Postgres in recovery read after the primary stopped";
        }

        // LSNs compare only within one timeline: count the replicas on the newest one.
        var timeline = fresh.Max(v => v.Timeline);
        var onTimeline = fresh.Where(v => v.Timeline == timeline).ToList();
        if (input.Quorum)
        {
            // Every acknowledged commit reached k standbys. Among any standbys - k + 1 of them at least one has
            // it, so the highest position among that many holds every acknowledged commit.
            var k = Math.Min(input.Members / 2, standbys);
            var needed = standbys - k + 1;
            if (onTimeline.Count < needed)
            {
                return $"quorum mode: {onTimeline.Count} of {standbys} replicas report a fresh WAL position on timeline {timeline}, {needed} are needed to prove that one holds every acknowledged commit";
            }
        }

        var chosen = onTimeline.OrderByDescending(v => v.ReceiveLsn).ThenBy(v => v.Id).First();
        best = chosen;
        var others = string.Join(", ", onTimeline.Where(v => v.Id != chosen.Id).OrderBy(v => v.Id).Select(v => $"{v.Name} {Lsn.Format(v.ReceiveLsn)}"));
        return $"promoting {chosen.Name}: highest received WAL {Lsn.Format(chosen.ReceiveLsn)} on timeline {timeline}" + (others.Length > 0 ? $" (others: {others})" : string.Empty);
    }

    private static string Seconds(long ms) => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:0.0} s");
}
