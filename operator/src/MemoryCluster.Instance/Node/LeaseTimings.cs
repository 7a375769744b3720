namespace MemoryCluster.Instance.Node;

/// <summary>
/// The timing rules of the primary lease (docs/failover.md). A primary counts its lease from the moment it
/// sent the renewal the Raft leader granted, on its own monotonic clock; the leader counts from the moment it
/// granted it, on its own. With clocks that drift apart by at most <see cref="DriftBound"/>:
/// <list type="bullet">
/// <item>the primary fences itself <see cref="FenceAfter"/> (lease − stop − margin) after the send of its last
/// granted renewal, so it has stopped writing by lease − margin;</item>
/// <item>its watchdog fences it <see cref="WatchdogAfter"/>, should the manager itself be stuck;</item>
/// <item>the leader promotes a replacement only <see cref="PromoteAfter"/> (drift × lease + stop + margin) after
/// the last renewal it granted, or after it became leader, whichever is later.</item>
/// </list>
/// </summary>
/// <param name="Lease">The lease a granted renewal gives.</param>
/// <param name="DriftBound">How much faster one host's monotonic clock may run than another's (≥ 1).</param>
/// <param name="StopBudget">Time allowed to stop Postgres once fencing starts (SIGKILL of every process in the data directory).</param>
/// <param name="Margin">Safety margin on top.</param>
/// <param name="RenewInterval">How often the primary asks for a renewal while renewals are granted.</param>
/// <param name="RetryInterval">How soon it asks again after a renewal was not granted or a probe failed (and the
/// least lease a start or a promotion needs left).</param>
public sealed record LeaseTimings(TimeSpan Lease, double DriftBound, TimeSpan StopBudget, TimeSpan Margin, TimeSpan RenewInterval, TimeSpan RetryInterval)
{
    public static readonly TimeSpan DefaultLease = TimeSpan.FromMilliseconds(2500);

    /// <summary>The smallest lease: fencing must start after at least a few renewals could have been tried.</summary>
    public static readonly TimeSpan MinimumLease = TimeSpan.FromMilliseconds(1500);

    /// <summary>
    /// Defaults around a lease: drift 1.1, 0.4 s to stop (a SIGKILL takes milliseconds; the rest is for a busy
    /// host), 0.3 s margin, a renewal every tenth of the lease, and again a tenth after one was not granted. (A renewal
    /// every fifth of the lease halves the primary's idle cost of renewing, but was not proven under load: two
    /// unexplained runs under heavy load, see docs/failover.md, left it off.)
    /// </summary>
    public static LeaseTimings For(TimeSpan lease) =>
        new(lease, 1.1, TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(300), lease / 10, lease / 10);

    public static LeaseTimings Default { get; } = For(DefaultLease);

    /// <summary>After the send of the last granted renewal, the primary stops accepting writes.</summary>
    public TimeSpan FenceAfter => Lease - StopBudget - Margin;

    /// <summary>After the send of the last granted renewal, the watchdog process stops Postgres if the manager has not.</summary>
    public TimeSpan WatchdogAfter => FenceAfter + (StopBudget / 2);

    /// <summary>
    /// After the last renewal the leader granted, by its clock, the old primary has stopped writing for sure:
    /// its watchdog's deadline plus the time to stop, stretched by the drift bound. Reports read later show
    /// every commit it acknowledged.
    /// </summary>
    public TimeSpan StoppedWritingAfter => (WatchdogAfter + StopBudget) * DriftBound;

    /// <summary>How many renewals the primary leaves unanswered at one Raft leader before it waits for one to end.</summary>
    public const int RenewalsInFlight = 4;

    /// <summary>How long the primary waits for a renewal's answer: one that came later could no longer extend the lease.</summary>
    public TimeSpan RenewalTimeout => FenceAfter;

    /// <summary>The leader counts the primary late (and reads reports often and fresh) when it granted nothing for this long.</summary>
    public TimeSpan LateAfter => RenewInterval + (RetryInterval * 2);

    /// <summary>After the last renewal the leader granted (or its election), it may promote a replacement.</summary>
    public TimeSpan PromoteAfter => (Lease * DriftBound) + StopBudget + Margin;

    /// <summary>Problems with these timings, empty when they are consistent.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (DriftBound < 1)
        {
            problems.Add($"drift bound must be at least 1, not {DriftBound}");
        }

        if (RetryInterval <= TimeSpan.Zero || RetryInterval > RenewInterval)
        {
            problems.Add($"the retry interval ({RetryInterval.TotalMilliseconds} ms) must be positive and no longer than the renewal interval ({RenewInterval.TotalMilliseconds} ms)");
        }

        if (FenceAfter < RenewInterval + (RetryInterval * 3))
        {
            problems.Add($"lease {Lease.TotalMilliseconds} ms leaves {FenceAfter.TotalMilliseconds} ms before fencing, less than a renewal interval ({RenewInterval.TotalMilliseconds} ms) and three retries ({RetryInterval.TotalMilliseconds} ms apart)");
        }

        if (StoppedWritingAfter >= PromoteAfter)
        {
            problems.Add("the watchdog would fire too late to fence before the leader may promote");
        }

        return problems;
    }
}
