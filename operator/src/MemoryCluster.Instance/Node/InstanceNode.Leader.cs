using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Node;

/// <summary>The Raft leader's duties: granting primary leases, failing over a primary that stopped renewing, handing leadership away from the primary.</summary>
public sealed partial class InstanceNode
{
    /// <summary>
    /// A Raft leader that is the primary hands leadership away no more often than this: a transfer that did not take
    /// (the target did not win in time) is tried again this soon. It was 10 s; in double-failure-5 (e2e) a primary
    /// whose transfer was abandoned still led Raft when its node was killed 3.9 s later, so the failover waited for an
    /// election first (0.8-0.9 s).
    /// </summary>
    public const long HandOverEveryMs = 3_000;

    /// <summary>... and not before it has led this long (a fresh leader first settles).</summary>
    public const long HandOverAfterMs = 5_000;

    private long _leaderSince = -1;

    // While leader: by when (this node's clock) every renewal an earlier leader could grant had been granted: its
    // election, or earlier by what its voters' silence proves.
    private long _priorGrantsEndedAt = -1;
    private Raft.Term _leaderTerm;
    private Epoch _epochSeen;
    private long _epochSeenAt;
    private Epoch _grantEpoch;
    private long _grantAt;
    private Epoch _noGrantEpoch;
    private Epoch _fencedSeenEpoch;
    private long _fencedSeenAt;
    private WalLine? _primaryLine;
    private long? _failoverProposal;
    private string? _failoverNote;
    private long _failoverLoggedAt;
    private long _lastHandOver = long.MinValue / 2;

    // The epoch from whose primary this leader asked the replicas to stop streaming (quorum mode).
    private Epoch _detachEpoch;

    // The pending proposal that raises the cluster's control format.
    private long? _formatProposal;

    // The last forced failover refused for good, at that epoch (shown in /status).
    private (Epoch Epoch, string Why)? _forcedRefusal;

    // A user's forced failover: at this epoch, in this leader's term, until this time.
    private (Epoch Epoch, Raft.Term Term, MemberId To, long Until)? _forced;

    /// <summary>How long a forced failover request stands (the old primary's lease must run out within it).</summary>
    public const long ForcedFailoverTtlMs = 30_000;

    /// <summary>
    /// A renewal request, after the host's linearizable read. Granted only by a leader that holds its Raft lease (so
    /// no other leader can exist), when the read shows the requester primary at that epoch, and never for an epoch
    /// this leader has decided to fail over from.
    /// </summary>
    private void OnRenewalRequested(RenewalRequested r)
    {
        string? refusal = null;
        if (!_raft.IsLeader)
        {
            refusal = "not the Raft leader";
        }
        else if (!r.HoldsRaftLease)
        {
            refusal = "the Raft leader does not hold its leader lease";
        }
        else if (r.ReadState is not { } state)
        {
            refusal = "the linearizable read failed: " + r.ReadError;
        }
        else if (state.Epoch != r.Epoch || state.Primary != r.From)
        {
            refusal = $"epoch is {state.Epoch}, primary {_config.NameOf(state.Primary)}";
        }
        else if (_noGrantEpoch == r.Epoch)
        {
            // IMPORTANT: once this leader decided to fail over from an epoch, the old primary's lease only runs out.
            refusal = $"failing over from epoch {r.Epoch}";
        }

        if (refusal is null)
        {
            _grantEpoch = r.Epoch;
            _grantAt = _now;
            if (_detachEpoch == r.Epoch)
            {
                // The primary renews again (one that had not started writing, say): the replicas may follow it again
                // once it takes writes; positions read before this grant no longer count anyway (the failover clock
                // restarts from it).
                _detachEpoch = Epoch.Zero;
            }
        }

        _out.Add(new AnswerRenewal(r.RequestId, refusal is null, r.ReadState?.Epoch ?? r.Epoch, refusal ?? "granted"));
    }

    /// <summary>On the Raft leader: is the primary alive, and if not, whom to promote; and hand leadership away from the primary.</summary>
    private void WatchAsLeader()
    {
        if (!_raft.IsLeader || _leaderSince < 0)
        {
            return;
        }

        var control = _control;
        var epoch = control.Epoch;
        var views = Views();
        if (_formatProposal is null && FormatPlanner.Raise(control, views) is { } level)
        {
            _formatProposal = NextId();
            _out.Add(new Propose(_formatProposal.Value, ControlCommand.SetFormat(epoch, level), $"every member reads control format {level}: the cluster writes it from now on", _leaderTerm));
        }

        if (epoch == Epoch.Zero || control.Primary.IsNone)
        {
            return;
        }

        if (views.TryGetValue(control.Primary, out var primary) && primary.Reachable && primary.Epoch == epoch)
        {
            if (primary.FencedEpoch == epoch && _fencedSeenEpoch != epoch)
            {
                _fencedSeenEpoch = epoch;
                _fencedSeenAt = _now;
            }

            if (primary is { Role: InstanceRole.Primary, Line: not null })
            {
                _primaryLine = primary.Line;
            }
        }

        if (_failoverProposal is not null)
        {
            return;
        }

        var forced = _forced is { } f && f.Epoch == epoch && f.Term == _leaderTerm && _now < f.Until ? new ForcedFailover(f.To) : null;
        var decision = FailoverPlanner.Decide(FailoverInputNow(views, forced));
        switch (decision)
        {
            case FailoverDecision.Healthy:
                _failoverNote = null;
                HandOverLeadership(views);
                return;
            case FailoverDecision.Blocked { ForcedRefused: true } refused:
                // Final: the request is dropped (automatic failover goes on from the next step) and the refusal shown.
                _forced = null;
                _forcedRefusal = (epoch, refused.Why);
                Log(LogLevel.Warning, refused.Why);
                return;
            case FailoverDecision.Blocked blocked:
                // The reason carries running figures: log it when it first appears, then every 2 s at most.
                if (_failoverNote is null || (_failoverNote != blocked.Why && _now - _failoverLoggedAt >= 2000))
                {
                    Log(LogLevel.Warning, "failover blocked: " + blocked.Why);
                    _failoverLoggedAt = _now;
                }

                _failoverNote = blocked.Why;
                if (blocked.DetachReplicas && _detachEpoch != epoch)
                {
                    // IMPORTANT: asked after the primary's lease ran out by this leader's clock. A replica stays
                    // detached until it sees the primary take writes again under a lease (granted later, or by a newer
                    // leader should this one have been deposed unawares: its failover proposal then cannot commit),
                    // never merely because the ask is no longer seen.
                    _detachEpoch = epoch;
                    Log(LogLevel.Warning, $"failover from epoch {epoch}: asking the replicas to stop streaming from {_config.NameOf(control.Primary)} before their positions count");
                    _out.Add(new AnnounceDetach(epoch));
                }

                return;
            case FailoverDecision.Promote promote:
                // IMPORTANT: from here on no renewal is granted at this epoch, in the same step as the decision.
                _noGrantEpoch = epoch;
                _failoverNote = promote.Why;
                _failoverProposal = NextId();
                Log(LogLevel.Warning, $"failover from epoch {epoch}: {promote.Why}");
                // IMPORTANT: committed only by this leader in this term: a leader elected meanwhile (this one paused,
                // say) may have granted renewals it never saw, and its own election restarts the failover clock.
                _out.Add(new Propose(_failoverProposal.Value, ControlCommand.SetPrimary(epoch, promote.Target, PrimaryChangeReason.Failover), promote.Why, _leaderTerm));
                return;
        }
    }

    /// <summary>What the failover planner looks at now, on this leader.</summary>
    private FailoverInput FailoverInputNow(IReadOnlyDictionary<MemberId, PeerView> views, ForcedFailover? forced)
    {
        var epoch = _control.Epoch;

        // IMPORTANT: the leader counts from its own last grant at this epoch, or from when it saw the epoch, or from
        // when every earlier leader's Raft lease had ended (its election, or earlier by its voters' silence), whichever
        // is latest: an earlier leader grants only while it holds its Raft lease.
        var lastRenewal = Math.Max(_priorGrantsEndedAt, Math.Max(_epochSeen == epoch ? _epochSeenAt : long.MinValue, _grantEpoch == epoch ? _grantAt : long.MinValue));
        return new FailoverInput(_control, _config, views, _now, lastRenewal, _fencedSeenEpoch == epoch ? _fencedSeenAt : null, _primaryLine, forced);
    }

    /// <summary>
    /// Whether this member takes a user's forced failover (to <paramref name="target"/>, or to the best candidate):
    /// only the Raft leader does, only while the primary has failed (its lease ran out, or it reported itself fenced;
    /// a healthy primary is switched over, not failed over), and never to the primary or a stranger. Taken, it stands
    /// for <see cref="ForcedFailoverTtlMs"/> at this epoch; the planner then ignores maintenance mode and promotes the
    /// target only when it holds as much as any candidate.
    /// </summary>
    public (bool Accepted, string Message, MemberId To) CheckFailover(string? target)
    {
        var control = _control;
        if (control.Primary.IsNone || control.Epoch == Epoch.Zero)
        {
            return (false, "the cluster has no primary yet", MemberId.None);
        }

        if (!_raft.IsLeader || _leaderSince < 0)
        {
            return (false, $"{_config.NameOf(_config.Self)} is not the Raft leader (the leader is {(_raft.Leader.IsNone ? "not known" : _config.NameOf(_raft.Leader))}): ask the leader", MemberId.None);
        }

        var to = MemberId.None;
        if (target is not null)
        {
            var member = _config.Members.FirstOrDefault(m => m.Name == target);
            if (member is null)
            {
                return (false, $"no member is named '{target}' (members: {string.Join(", ", _config.Members.Select(m => m.Name))})", MemberId.None);
            }

            if (member.Id == control.Primary)
            {
                return (false, $"{target} is the primary (epoch {control.Epoch}); fail over to another member, or without --to", MemberId.None);
            }

            to = member.Id;
        }

        var decision = FailoverPlanner.Decide(FailoverInputNow(Views(), new ForcedFailover(to)));
        return decision is FailoverDecision.Healthy healthy
            ? (false, $"{healthy.Why}: a primary that holds its lease is not failed over; `switchover` is the verb", MemberId.None)
            : (true, $"forced failover at epoch {control.Epoch}{(to.IsNone ? string.Empty : $" to {target}")}: {decision.Why}", to);
    }

    /// <summary>A forced failover the API took (after <see cref="CheckFailover"/>); checked again now.</summary>
    private void OnFailoverRequested(FailoverRequested r)
    {
        var (accepted, message, to) = CheckFailover(r.To);
        if (accepted)
        {
            _forced = (_control.Epoch, _leaderTerm, to, _now + ForcedFailoverTtlMs);
            _forcedRefusal = null;
        }

        // Checked again under the step: leadership or the epoch may have moved since the API answered.
        Log(LogLevel.Warning, accepted ? message : "forced failover dropped: " + message);
    }

    /// <summary>
    /// A Raft leader that is also the primary hands leadership to a streaming replica: when the primary's host
    /// fails, the member that must replace it already leads, and no election comes first. The transfer costs the
    /// primary its renewals until the new leader holds its Raft lease, so it is done only when that can be afforded:
    /// every other member streams from this primary, and this primary's lease was just renewed (nearly all of the
    /// fence window is left for the new leader to take over).
    /// </summary>
    private void HandOverLeadership(IReadOnlyDictionary<MemberId, PeerView> views)
    {
        if (_control.Primary != _config.Self || !_control.PendingSwitchover.IsNone || _now - _leaderSince < HandOverAfterMs || _now - _lastHandOver < HandOverEveryMs)
        {
            return;
        }

        var others = views.Values.Where(v => v.Id != _config.Self).ToList();
        if (!others.All(v => v.IsStreamingReplica) || LeaseUntil is not { } until
            || until - _now < (long)(_config.Lease.FenceAfter - _config.Lease.RenewInterval).TotalMilliseconds)
        {
            return;
        }

        var target = others.OrderByDescending(v => v.FlushLsn.Value).ThenBy(v => v.Id.Value).First();
        _lastHandOver = _now;
        _out.Add(new TransferLeadership(target.Id, $"this Raft leader is the primary: handing Raft leadership to {_config.NameOf(target.Id)}"));
    }

    /// <summary>
    /// Whom a stopping leader hands Raft leadership to: a member that reported lately, a replica streaming from the
    /// primary before the primary (a leader that is the primary hands leadership away anyway), the most WAL first.
    /// </summary>
    private MemberId? LeaderOnStop(IReadOnlyDictionary<MemberId, PeerView> views) =>
        views.Values
            .Where(v => v.Id != _config.Self && v.Reachable)
            .OrderByDescending(v => v.IsStreamingReplica && v.Id != _control.Primary)
            .ThenByDescending(v => v.Id != _control.Primary)
            .ThenByDescending(v => v.FlushLsn.Value)
            .ThenBy(v => v.Id.Value)
            .Select(v => (MemberId?)v.Id)
            .FirstOrDefault();

    /// <summary>Every member's last report, this one's included.</summary>
    private Dictionary<MemberId, PeerView> Views()
    {
        var views = new Dictionary<MemberId, PeerView>(_peers) { [_config.Self] = SelfView() };
        return views;
    }
}
