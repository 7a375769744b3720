using System.Globalization;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Node;

/// <summary>What the Raft leader's node looks at when it checks the primary.</summary>
/// <param name="Control">The committed control state.</param>
/// <param name="Config">The members, the mode and the lease rules.</param>
/// <param name="Views">Every member's last report, the leader's own included.</param>
/// <param name="Now">The leader's clock (ms).</param>
/// <param name="LastRenewal">The latest of: the last renewal this leader granted at the current epoch, when it saw that epoch committed, when it became leader.</param>
/// <param name="FencedSeenAt">When this leader first saw the primary report itself fenced at the current epoch; null if it has not.</param>
/// <param name="PrimaryLine">The line of history the primary reported at the current epoch, when this leader saw one.</param>
/// <param name="Forced">
/// A user's forced failover at the current epoch (<c>POST /failover</c>): maintenance mode does not block it, and with a
/// target only that member may be promoted, when it holds as much as the best candidate. It never shortens the wait
/// for the old primary to stop writing.
/// </param>
public sealed record FailoverInput(
    ControlState Control,
    NodeConfig Config,
    IReadOnlyDictionary<MemberId, PeerView> Views,
    long Now,
    long LastRenewal,
    long? FencedSeenAt,
    WalLine? PrimaryLine,
    ForcedFailover? Forced = null);

/// <summary>A user's forced failover: to <paramref name="To"/>, or (none) to the best candidate.</summary>
public sealed record ForcedFailover(MemberId To);

/// <summary>What the leader does about the primary.</summary>
public abstract record FailoverDecision(string Why)
{
    /// <summary>The primary holds its lease (or there is none yet); nothing to do.</summary>
    public sealed record Healthy(string Why) : FailoverDecision(Why);

    /// <summary>
    /// The primary has failed but no replacement can be chosen safely; <see cref="FailoverDecision.Why"/> says why. With
    /// <paramref name="DetachReplicas"/>, the replicas must first stop streaming from the old primary (quorum mode,
    /// a primary that stopped renewing: only their positions read after that count).
    /// </summary>
    /// <remarks><paramref name="ForcedRefused"/>: a forced failover's target holds less than the best candidate, on exact positions: final (the request is dropped and automatic failover goes on).</remarks>
    public sealed record Blocked(string Why, bool DetachReplicas = false, bool ForcedRefused = false) : FailoverDecision(Why);

    /// <summary>Commit <c>{epoch+1, primary = Target}</c>.</summary>
    public sealed record Promote(MemberId Target, string Why) : FailoverDecision(Why);
}

/// <summary>
/// The leader's failover choice (docs/failover.md). Pure: the node gathers <see cref="FailoverInput"/> and
/// proposes what this returns, with compare-and-set on the epoch.
/// </summary>
public static class FailoverPlanner
{
    /// <summary>How long the leader waits for replica reports before it restarts a fenced primary instead.</summary>
    public const long FreshReportWaitMs = 3000;

    public static FailoverDecision Decide(FailoverInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var control = input.Control;
        var config = input.Config;
        if (control.Epoch == Epoch.Zero || control.Primary.IsNone)
        {
            return new FailoverDecision.Healthy("no primary yet");
        }

        var primary = control.Primary;
        input.Views.TryGetValue(primary, out var old);
        var name = config.NameOf(primary);
        var reportedFenced = old is { Reachable: true } && old.FencedEpoch == control.Epoch && input.FencedSeenAt is not null;

        // The instant after which the old primary writes nothing more: a state read later shows every commit it
        // acknowledged.
        long stoppedBy;
        string cause;
        if (reportedFenced)
        {
            stoppedBy = input.FencedSeenAt!.Value;
            cause = $"{name} reported its PostgreSQL stopped and itself fenced at epoch {control.Epoch}";
        }
        else
        {
            var silent = input.Now - input.LastRenewal;
            var promoteAfter = (long)input.Config.Lease.PromoteAfter.TotalMilliseconds;

            // IMPORTANT: a replacement only after ρ·L + S + M without a renewal: by then the old primary, even on a
            // clock running ρ times slower, has fenced itself (manager at L − S − M, watchdog at L − M − S/2).
            if (silent < promoteAfter)
            {
                // Quorum mode: the replicas are asked to stop streaming as soon as the old primary has stopped writing
                // for sure (ρ·(L − M − S/2 + S) after the last renewal), not only once a replacement may be promoted,
                // so that their positions, which count only when read after they stopped, are in when it may. Only
                // the ask moves: nothing is promoted before ρ·L + S + M. Not during a switchover (its target still
                // catches up from the old primary) nor in maintenance mode (no failover follows).
                var stoppedWriting = (long)input.Config.Lease.StoppedWritingAfter.TotalMilliseconds;
                if (config.Mode == ReplicationMode.Quorum && silent >= stoppedWriting && control.PendingSwitchover.IsNone && !control.Maintenance)
                {
                    return new FailoverDecision.Blocked(
                        $"no lease renewal from {name} for {Seconds(silent)}: it has stopped writing; a replacement may be promoted after {Seconds(promoteAfter)}, and the replicas stop streaming from it now so that their positions count then",
                        DetachReplicas: true);
                }

                return new FailoverDecision.Healthy(silent <= (long)input.Config.Lease.FenceAfter.TotalMilliseconds
                    ? $"primary {name} holds its lease"
                    : $"primary {name} has not renewed its lease for {Seconds(silent)}; a replacement may be promoted after {Seconds(promoteAfter)}");
            }

            stoppedBy = input.LastRenewal + (long)input.Config.Lease.StoppedWritingAfter.TotalMilliseconds;
            cause = $"no lease renewal from {name} for {Seconds(silent)}";
        }

        if (control.Maintenance && input.Forced is null)
        {
            return new FailoverDecision.Blocked($"{cause}; maintenance mode is on, so automatic failover is paused");
        }

        // IMPORTANT (quorum mode): a primary that stopped renewing has fenced itself by stoppedBy, by its manager or
        // its watchdog; but should both be frozen together, its backends (in sessions of their own) go on committing,
        // and a standby still streaming from it goes on acknowledging. So only positions read after a replica stopped
        // streaming from it count: once standbys − k + 1 have, fewer than k can acknowledge anything more, and the
        // highest of their positions holds every acknowledged commit. A primary that reported itself fenced had every
        // process verified gone, so no replica needs to stop first.
        var detachFirst = !reportedFenced && config.Mode == ReplicationMode.Quorum;
        var fresh = input.Views.Values
            .Where(v => v.Id != primary && v.Reachable && v.Running && v.Role == InstanceRole.Replica && v.StateAt > stoppedBy
                && (!detachFirst || v.DetachedFrom == control.Epoch))
            .OrderBy(v => v.Id.Value)
            .ToList();
        var reason = Choose(input, fresh, out var best);
        if (best is not null && input.Forced is { To: var to } && !to.IsNone && to != best.Value)
        {
            // The user's choice, only when it holds as much as the best candidate (ties to it win by id).
            var wanted = fresh.FirstOrDefault(v => v.Id == to);
            var bestView = fresh.First(v => v.Id == best.Value);
            if (wanted is null || !wanted.PositionSettled || wanted.Line is null)
            {
                // Not final: its report read after the primary stopped writing may still come.
                return new FailoverDecision.Blocked($"{cause}; forced failover to {config.NameOf(to)}: waiting for its exact position read after the primary stopped writing (the best candidate now is {config.NameOf(best.Value)})");
            }

            if (wanted.Line != bestView.Line || wanted.FlushLsn < bestView.FlushLsn)
            {
                var where = wanted.Line != bestView.Line
                    ? $"is on the line {wanted.Line}, the best candidate {config.NameOf(best.Value)} on {bestView.Line}"
                    : $"is {bestView.FlushLsn.BytesAfter(wanted.FlushLsn)} bytes behind {config.NameOf(best.Value)} ({wanted.FlushLsn} against {bestView.FlushLsn})";
                return new FailoverDecision.Blocked($"{cause}; forced failover to {config.NameOf(to)} refused: it {where}; fail over to {config.NameOf(best.Value)}, or without a target", ForcedRefused: true);
            }

            return new FailoverDecision.Promote(to, $"{cause}; forced failover to {config.NameOf(to)}, as far as any candidate: {reason}");
        }

        if (best is not null)
        {
            return new FailoverDecision.Promote(best.Value, $"{cause}; {(input.Forced is null ? string.Empty : "forced failover: ")}{reason}");
        }

        if (detachFirst)
        {
            var waiting = input.Views.Values
                .Where(v => v.Id != primary && v.Reachable && v.Role == InstanceRole.Replica && v.DetachedFrom != control.Epoch)
                .Select(v => config.NameOf(v.Id))
                .OrderBy(n => n, StringComparer.Ordinal)
                .ToList();
            var note = waiting.Count == 0 ? string.Empty : $"; asked {string.Join(", ", waiting)} to stop streaming from {name} first";
            return new FailoverDecision.Blocked($"{cause}; {reason}{note}", DetachReplicas: true);
        }

        // No replica can be promoted safely. A primary that fenced itself and still answers holds every commit it
        // acknowledged: it may start again, at a new epoch, once the replicas have had time to report; at once when
        // too few members answer at all for their reports to prove one (a dead node among them).
        if (reportedFenced && input.Now - stoppedBy < FreshReportWaitMs && ReportsMayProve(input))
        {
            return new FailoverDecision.Blocked($"{cause}; {reason}; waiting up to {Seconds(FreshReportWaitMs)} for replica reports");
        }

        return reportedFenced && input.Forced is not { To.IsNone: false }
            ? new FailoverDecision.Promote(primary, $"{cause}; {reason}; restarting {name} as primary at a new epoch")
            : new FailoverDecision.Blocked($"{cause}; {reason}");
    }

    /// <summary>
    /// Chooses among the replicas that reported after the primary stopped writing. Only exact positions count
    /// (settled: the replica's startup process has finished replaying local WAL since it started, so its flushed
    /// position is what it holds). Positions compare along one line of history, the reference: the primary's own,
    /// when this leader saw it at this epoch, else the line every report lies on. A replica on another branch
    /// holds none of the reference line's commits past the branch point and is left out.
    /// </summary>
    private static string Choose(FailoverInput input, List<PeerView> fresh, out MemberId? best)
    {
        best = null;
        var config = input.Config;
        var standbys = config.Members.Count - 1;
        var unsettled = fresh.Where(v => !v.PositionSettled || v.Line is null).Select(v => config.NameOf(v.Id)).ToList();
        var settled = fresh.Where(v => v.PositionSettled && v.Line is not null).ToList();
        var unsettledNote = unsettled.Count == 0 ? string.Empty : $" ({string.Join(", ", unsettled)} still replaying local WAL: position not exact yet)";
        if (settled.Count == 0)
        {
            return "no replica reports an exact WAL position read after the primary stopped" + unsettledNote;
        }

        var reference = input.PrimaryLine ?? DominatingLine(settled);
        if (reference is null)
        {
            if (config.Mode == ReplicationMode.Quorum)
            {
                return $"the replicas' WAL lies on different branches ({string.Join(", ", settled.Select(v => $"{config.NameOf(v.Id)} {v.Line}"))}) and the primary's own line was not seen at this epoch";
            }

            // Async: the newest timeline's branch (its tip came last).
            reference = settled.Select(v => v.Line!).OrderByDescending(l => l.Timeline.Value).ThenByDescending(l => l.Ancestors.Count).First();
        }

        // IMPORTANT: positions compare only along the reference line; another branch's WAL past the branch point
        // holds none of the primary's commits.
        var related = new List<(PeerView View, LineRelation Relation, Lsn Effective)>();
        var offLine = new List<string>();
        foreach (var v in settled)
        {
            var (relation, effective) = reference.Relate(v.Line!, v.FlushLsn, v.ReplayLsn);
            if (relation == LineRelation.OffLine)
            {
                offLine.Add($"{config.NameOf(v.Id)} ({v.Line})");
            }
            else
            {
                related.Add((v, relation, effective));
            }
        }

        var offNote = offLine.Count == 0 ? string.Empty : $"; on another branch than {reference}: {string.Join(", ", offLine)}";
        if (config.Mode == ReplicationMode.Quorum)
        {
            // IMPORTANT: every acknowledged commit reached k = ⌊n/2⌋ standbys. Any standbys − k + 1 of them include
            // one of those, so the highest exact position among that many holds every acknowledged commit.
            // IMPORTANT: k is the proven one (ControlState.QuorumK): after a membership raised k, or standbys left,
            // commits may be on fewer standbys of the membership until the primary proves the k in force again.
            var (k, needed) = QuorumProofNeeds(input);
            if (k < 1)
            {
                return $"quorum mode: standbys left the membership since the primary last proved its synchronous standbys in force, so no standby is proven to hold every acknowledged commit (quorumK 0); none is promoted{unsettledNote}{offNote}";
            }

            if (related.Count < needed)
            {
                var unproven = k < Math.Min(config.SyncStandbys, standbys) ? $" (k = {k}: the primary had not proven k = {config.SyncStandbys} in force)" : string.Empty;
                return $"quorum mode: {related.Count} of {standbys} replicas report an exact position on the primary's line {reference}, {needed} are needed to prove that one holds every acknowledged commit{unproven}{unsettledNote}{offNote}";
            }
        }

        if (related.Count == 0)
        {
            return $"no replica reports an exact position on the line {reference}{unsettledNote}{offNote}";
        }

        var chosen = related
            .OrderByDescending(r => r.Effective.Value)
            .ThenBy(r => r.Relation == LineRelation.OnLine ? 0 : 1)
            .ThenBy(r => r.View.Id.Value)
            .First();
        best = chosen.View.Id;
        var others = string.Join(", ", related.Where(r => r.View.Id != chosen.View.Id).Select(r => $"{config.NameOf(r.View.Id)} {r.Effective}"));
        return $"promoting {config.NameOf(chosen.View.Id)}: highest exact WAL position {chosen.Effective} on line {reference}" +
            (others.Length > 0 ? $" (others: {others})" : string.Empty) + unsettledNote + offNote;
    }

    /// <summary>
    /// Quorum mode: the proven k (<see cref="ControlState.QuorumK"/>, at most the membership's and the standbys'), and
    /// how many exact reports prove that the highest holds every acknowledged commit (standbys − k + 1).
    /// </summary>
    private static (int K, int Needed) QuorumProofNeeds(FailoverInput input)
    {
        var standbys = input.Config.Members.Count - 1;
        var k = Math.Min(Math.Min(input.Control.QuorumK, input.Config.SyncStandbys), standbys);
        return (k, standbys - k + 1);
    }

    /// <summary>
    /// Whether reports still to come could let a replica be chosen: enough members other than the primary answer at
    /// all (quorum mode: as many as the proof needs; async: one). A member that does not answer reports nothing.
    /// </summary>
    private static bool ReportsMayProve(FailoverInput input)
    {
        var answering = input.Views.Values.Count(v => v.Id != input.Control.Primary && v.Reachable);
        if (input.Config.Mode != ReplicationMode.Quorum)
        {
            return answering >= 1;
        }

        var (k, needed) = QuorumProofNeeds(input);
        return k >= 1 && answering >= needed;
    }

    /// <summary>A line every report lies on (as a prefix, or past a branch point of it); null when the reports branch.</summary>
    private static WalLine? DominatingLine(List<PeerView> reports)
    {
        foreach (var candidate in reports.Select(r => r.Line!).Distinct())
        {
            if (reports.All(r => candidate.Relate(r.Line!, r.FlushLsn, r.ReplayLsn).Relation != LineRelation.OffLine))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string Seconds(long ms) => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:0.0} s");
}
