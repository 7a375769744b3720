using System.Diagnostics;
using System.Globalization;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.E2e;

/// <summary>
/// The checks every run makes on what the managers reported (<see cref="StatusWatcher"/>), what the dual-primary
/// monitor saw (<see cref="DualPrimaryMonitor"/>) and what the writers had acknowledged. Pure: each takes the
/// recorded facts and returns the violations, each naming the member, the values and the times (seconds on the
/// run's clock, <c>origin</c> being its zero).
/// </summary>
internal static class StatusChecks
{
    public const string Armed = "armed";

    /// <summary>
    /// (a) A member that says it may write — <c>mayWrite</c>, or role primary — says its watchdog is armed, in every
    /// report. (A report without the field, from an older manager, is not judged.)
    /// </summary>
    public static IReadOnlyList<string> UnarmedWriters(IEnumerable<StatusSample> samples, long origin) =>
        [.. samples
            .Where(s => (s.MayWrite || s.Role == InstanceRole.Primary) && s.Watchdog is not null && s.Watchdog != Armed)
            .Select(s => Invariant($"{s.Member} reported role {s.Role}, mayWrite {s.MayWrite} with its watchdog {s.Watchdog} (asked at {At(s.AskedAt, origin)}, answered at {At(s.AnsweredAt, origin)})"))];

    /// <summary>
    /// (a, seen from outside) Between two answers "writable" on ONE long-lived monitor session — one backend, so one
    /// PostgreSQL that ran as primary all along (a primary never returns to recovery, and the manager clears its
    /// may-write latch, and so disarms, only once every process of that PostgreSQL is gone) — every report of that
    /// member asked after the first answer and answered before the second question says the watchdog is armed.
    /// </summary>
    public static IReadOnlyList<string> UnarmedWhileSessionWritable(IEnumerable<SessionAnswer> answers, IEnumerable<StatusSample> samples, long origin)
    {
        var byMember = samples.Where(s => s.Watchdog is not null).GroupBy(s => s.Member).ToDictionary(g => g.Key, g => g.OrderBy(s => s.AskedAt).ToList(), StringComparer.Ordinal);
        var violations = new List<string>();
        foreach (var session in answers.Where(a => a.Writable).GroupBy(a => (a.Member, a.Session)))
        {
            if (!byMember.TryGetValue(session.Key.Member, out var reports))
            {
                continue;
            }

            var writable = session.OrderBy(a => a.To).ToList();
            foreach (var (first, second) in writable.Zip(writable.Skip(1)))
            {
                foreach (var r in reports.Where(r => r.AskedAt >= first.To && r.AnsweredAt <= second.From && r.Watchdog != Armed))
                {
                    violations.Add(Invariant(
                        $"{r.Member} reported its watchdog {r.Watchdog} (role {r.Role}, mayWrite {r.MayWrite}; asked at {At(r.AskedAt, origin)}) while its PostgreSQL was writable on monitor session {session.Key.Session} at {At(first.To, origin)} and still at {At(second.From, origin)}"));
                }
            }
        }

        return violations;
    }

    /// <summary>
    /// (b) Reported WAL positions never go backwards: for one member, between two reports whose position is settled
    /// and whose line has the same timeline, <c>flushLsn</c> does not decrease — unless the data was replaced in
    /// between (a report said <c>follow</c> rewinding or cloning). A report on another timeline starts afresh (its
    /// PostgreSQL stopped and came back on another line, or it was promoted).
    /// </summary>
    public static IReadOnlyList<string> PositionsBackwards(IEnumerable<StatusSample> samples, long origin, long reportFrom = long.MinValue)
    {
        var violations = new List<string>();
        foreach (var member in samples.GroupBy(s => s.Member))
        {
            StatusSample? last = null;
            foreach (var s in member.OrderBy(s => s.AnsweredAt))
            {
                if (s.Follow is FollowState.Rewinding or FollowState.Cloning)
                {
                    last = null;
                    continue;
                }

                if (!s.PositionSettled || s.Line is null || s.FlushLsn is not { } flush)
                {
                    continue;
                }

                if (last is { Line: { } lastLine, FlushLsn: { } lastFlush } && lastLine.Timeline == s.Line.Timeline && flush < lastFlush && s.AnsweredAt >= reportFrom)
                {
                    violations.Add(Invariant(
                        $"{s.Member}'s settled flushLsn went back on timeline {s.Line.Timeline.Value}: {lastFlush} (answered at {At(last.AnsweredAt, origin)}, {last.Role}) then {flush} (answered at {At(s.AnsweredAt, origin)}, {s.Role})"));
                }

                last = s;
            }
        }

        return violations;
    }

    /// <summary>
    /// (b, against the primary) A replica never reports as exact (settled) a position below what it had already
    /// acknowledged to its primary as flushed: for a report of replica S whose state was read after a report of
    /// the primary in which <c>standbys</c> showed S flushed to X (the state read times are compared: S's read no
    /// earlier than asked at less its state's age, which counts from when its query began; the primary's no later
    /// than answered at less its state's age plus its query's duration), at the same epoch and on the same
    /// timeline, with no rewind or clone of S in between, S's settled <c>flushLsn</c> is at least X. The leader
    /// chooses the replacement of a failed primary by these positions: in quorum mode, a replica that holds a
    /// commit it acknowledged but reports less than it could make the leader promote one that lacks it.
    /// </summary>
    public static IReadOnlyList<string> UnderReported(IReadOnlyList<StatusSample> samples, long origin, long reportFrom = long.MinValue)
    {
        var perMs = Stopwatch.Frequency / 1000;
        var acks = samples
            .Where(p => p.Role == InstanceRole.Primary && p.Line is not null)
            .SelectMany(p => p.Standbys.Select(x => (Standby: x.Name, Primary: p, x.Flush, ReadBy: p.AnsweredAt - ((p.StateAgeMs - p.StateQueryMs) * perMs))))
            .GroupBy(a => a.Standby)
            .ToDictionary(g => g.Key, g => g.OrderBy(a => a.ReadBy).ToList(), StringComparer.Ordinal);
        var violations = new List<string>();
        foreach (var member in samples.GroupBy(s => s.Member))
        {
            if (!acks.TryGetValue(member.Key, out var acked))
            {
                continue;
            }

            long replacedAt = long.MinValue;
            foreach (var s in member.OrderBy(s => s.AnsweredAt))
            {
                if (s.Follow is FollowState.Rewinding or FollowState.Cloning)
                {
                    replacedAt = s.AnsweredAt;
                    continue;
                }

                if (s.Role != InstanceRole.Replica || !s.PositionSettled || s.Line is null || s.FlushLsn is not { } flush || s.AnsweredAt < reportFrom)
                {
                    continue;
                }

                var readFrom = s.AskedAt - (s.StateAgeMs * perMs);
                var earlier = acked.Where(a => a.ReadBy < readFrom && a.Primary.AskedAt > replacedAt && a.Primary.Epoch == s.Epoch && a.Primary.Line!.Timeline == s.Line.Timeline).ToList();
                if (earlier.Count == 0)
                {
                    continue;
                }

                var best = earlier.MaxBy(a => a.Flush.Value);
                if (flush < best.Flush)
                {
                    violations.Add(Invariant(
                        $"{s.Member} reported a settled flushLsn {flush} (answered at {At(s.AnsweredAt, origin)}, state {s.StateAgeMs} ms old) below the {best.Flush} it had acknowledged to the primary {best.Primary.Member} (its report answered at {At(best.Primary.AnsweredAt, origin)}), epoch {s.Epoch}, timeline {s.Line.Timeline.Value}"));
                }
            }
        }

        return violations;
    }

    /// <summary>
    /// An insert acknowledged by one member while the monitor saw another member writable: the write's interval
    /// (sent → acknowledged) overlaps a writable sample (sent → answered) of another member.
    /// </summary>
    public static IReadOnlyList<string> AckedWhileAnotherWritable(IEnumerable<(string Member, AckedWrite Write)> acked, IEnumerable<(string Member, long From, long To)> writable, long origin)
    {
        // Samples last at most a few hundred milliseconds: sorted by start, only those starting less than a second
        // before a write's start need a look.
        var window = Stopwatch.Frequency;
        var samples = writable.OrderBy(w => w.From).ToArray();
        var starts = samples.Select(w => w.From).ToArray();
        var violations = new List<string>();
        foreach (var (member, write) in acked)
        {
            var i = Array.BinarySearch(starts, write.SentAt - window);
            for (i = i < 0 ? ~i : i; i < samples.Length && samples[i].From <= write.AckedAt; i++)
            {
                var other = samples[i];
                if (other.Member != member && other.To >= write.SentAt)
                {
                    violations.Add(Invariant(
                        $"insert {write.Id} acknowledged by {member} (sent at {At(write.SentAt, origin)}, acknowledged at {At(write.AckedAt, origin)}) while the monitor saw {other.Member} writable ({At(other.From, origin)} to {At(other.To, origin)})"));
                    break;
                }
            }
        }

        return violations;
    }

    /// <summary>
    /// Inserts one member executed while another was writable, by the servers' own clocks (one machine, one clock): for
    /// an acknowledged insert on A whose statement read <c>clock_timestamp()</c> t, and each other member B, B's answers
    /// to the monitor just before and just after t by B's clock. <c>Definite</c> when both say writable: B was writable
    /// on both sides of t (a change back and forth between two answers would take a restart and a promotion); that is
    /// a second writable primary while A committed. <c>Possible</c> when one of them does: B's state changed around
    /// t, within the gap between its two answers (printed), so the order is not known.
    /// </summary>
    public static (IReadOnlyList<string> Definite, IReadOnlyList<string> Possible) ExecutedWhileAnotherWritable(IEnumerable<(string Member, AckedWrite Write)> acked, IEnumerable<ServerAnswer> answers)
    {
        var byMember = answers.GroupBy(a => a.Member, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.OrderBy(a => a.ServerAt).ToArray(), StringComparer.Ordinal);
        var times = byMember.ToDictionary(p => p.Key, p => p.Value.Select(a => a.ServerAt).ToArray(), StringComparer.Ordinal);
        var definite = new List<string>();
        var possible = new List<string>();
        foreach (var (member, write) in acked)
        {
            foreach (var (other, list) in byMember)
            {
                if (other == member)
                {
                    continue;
                }

                var i = Array.BinarySearch(times[other], write.ServerAt);
                var after = i >= 0 ? i : ~i;
                var before = i >= 0 ? i : after - 1;
                if (before < 0 || after >= list.Length)
                {
                    continue;
                }

                var (b, a) = (list[before], list[after]);
                if (!b.Writable && !a.Writable)
                {
                    continue;
                }

                var line = Invariant($"insert {write.Id} executed on {member} at {Clock(write.ServerAt)} while {other} answered {(b.Writable ? "writable" : "not writable")} at {Clock(b.ServerAt)} and {(a.Writable ? "writable" : "not writable")} at {Clock(a.ServerAt)} (server clocks)");
                (b.Writable && a.Writable ? definite : possible).Add(line);
                break;
            }
        }

        return (definite, possible);
    }

    private static string Clock(DateTime utc) => utc.ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture);

    /// <summary>How many times the epoch moved within [from, to]: the highest reported by then, less the highest before.</summary>
    public static long EpochChanges(IReadOnlyList<StatusSample> samples, long from, long to)
    {
        var before = samples.Where(s => s.AnsweredAt < from).Select(s => s.Epoch).DefaultIfEmpty(0UL).Max();
        var within = samples.Where(s => s.AnsweredAt >= from && s.AnsweredAt <= to).Select(s => s.Epoch).ToList();
        if (within.Count == 0)
        {
            return 0;
        }

        var start = before != 0 ? before : within.Min();
        return (long)(Math.Max(start, within.Max()) - start);
    }

    /// <summary>The first <paramref name="max"/> lines, and how many more there were.</summary>
    public static IEnumerable<string> Capped(IReadOnlyList<string> lines, int max = 5) =>
        lines.Count <= max ? lines : lines.Take(max).Append(Invariant($"... and {lines.Count - max} more"));

    /// <summary>Seconds from <paramref name="origin"/>, as printed in reports.</summary>
    public static string At(long ticks, long origin) => Invariant($"{(double)(ticks - origin) / Stopwatch.Frequency:0.000} s");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
