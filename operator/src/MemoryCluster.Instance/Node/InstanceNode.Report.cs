using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Node;

/// <summary>What this member is, as its node knows it: the source of /status, /readyz, /healthz and the metrics.</summary>
/// <param name="Role">What PostgreSQL is now.</param>
/// <param name="Ready">Ready for its role: a primary taking writes at the current epoch under a lease (in quorum mode, with k standbys replying), or a replica streaming from the primary (a message from it heard recently).</param>
/// <param name="Running">A postmaster runs.</param>
/// <param name="Control">The control state this member has applied.</param>
/// <param name="Raft">The Raft view.</param>
/// <param name="Line">The line of history its WAL is on.</param>
/// <param name="WriteLsn">Primary: the WAL insert position.</param>
/// <param name="FlushLsn">Primary: WAL flushed. Replica: WAL received and flushed (never goes back on the same data).</param>
/// <param name="ReplayLsn">Replica: WAL replayed.</param>
/// <param name="PositionSettled">Replica: the position is exact (local WAL replay done since the start).</param>
/// <param name="Follow">Replica: whether and how it follows the primary.</param>
/// <param name="FollowWhy">Why it cannot, when it cannot.</param>
/// <param name="Upstream">Whom it is configured to stream from.</param>
/// <param name="LagBytes">Replica: WAL it still has to replay, against the primary's last reported position; null when unknown or when it cannot follow.</param>
/// <param name="Standbys">Primary: its standbys.</param>
/// <param name="Activity">What the node does or waits for.</param>
/// <param name="LastError">The last failure, cleared once things work again.</param>
/// <param name="LastErrorAt">When (node clock).</param>
/// <param name="StateAt">When the query of the PostgreSQL state shown began (node clock; null: no state). The age of the
/// state is counted from it by whoever answers, at the time it answers: the node's own time is that of its last step,
/// which on an idle replica lags by a tick or more, and an age counted from it would make a stale state look fresh.</param>
/// <param name="StateQueryMs">How long that query took: the state was read between its age and its age less this ago.</param>
/// <param name="FencedEpoch">The last epoch at which it fenced itself as primary.</param>
/// <param name="FenceReason">Why, when fenced at the current epoch.</param>
/// <param name="LeaseRemainingMs">Primary: until it fences unless the lease is renewed.</param>
/// <param name="WatchdogArmed">The watchdog deadline is armed.</param>
/// <param name="MayWrite">PostgreSQL may accept writes (started or promoted as primary, not verified stopped).</param>
/// <param name="Failover">On the Raft leader, while the primary has failed: what it did or why it cannot.</param>
/// <param name="ForcedFailoverRefused">On the Raft leader: why it refused the forced failover asked at this epoch (for good), else null.</param>
/// <param name="SteppingDown">Quorum mode: this primary gave up its lease because no synchronous standby reaches it.</param>
/// <param name="NotReadyWhy">Why it is not ready, when it is not.</param>
/// <param name="DetachFrom">On the Raft leader failing over in quorum mode from a primary that stopped renewing: that epoch (replicas stop streaming from its primary first).</param>
/// <param name="DetachedFrom">Replica: the epoch whose primary it has stopped streaming from, proven by the state shown.</param>
/// <param name="WaitingForStandbys">Quorum mode: a primary that takes writes, whose commits wait because fewer than k standbys reply (not ready, but still where writes go).</param>
/// <param name="AcceptsStandbys">Primary: named at the current epoch, out of recovery under a lease, not fenced, its line known (a state query since the promotion), with a slot for every other member: replicas may stream from it (ready or not).</param>
public sealed record NodeStatus(
    InstanceRole Role,
    bool Ready,
    bool Running,
    ControlState Control,
    RaftView Raft,
    WalLine? Line,
    Lsn WriteLsn,
    Lsn FlushLsn,
    Lsn ReplayLsn,
    bool PositionSettled,
    FollowState Follow,
    string? FollowWhy,
    MemberId Upstream,
    long? LagBytes,
    IReadOnlyList<StandbyObservation> Standbys,
    string Activity,
    string? LastError,
    long? LastErrorAt,
    long? StateAt,
    long StateQueryMs,
    Epoch FencedEpoch,
    string? FenceReason,
    long? LeaseRemainingMs,
    bool WatchdogArmed,
    bool MayWrite,
    string? Failover,
    string? ForcedFailoverRefused,
    bool SteppingDown,
    string? NotReadyWhy = null,
    bool WaitingForStandbys = false,
    Epoch DetachFrom = default,
    Epoch DetachedFrom = default,
    bool AcceptsStandbys = false);

public sealed partial class InstanceNode
{
    /// <summary>How often the host should read the other members' reports, now.</summary>
    public long PeerPollIntervalMs =>
        _switchover is not null ? 20
        : Attentive ? 100
        : 1000;

    /// <summary>How often the host should query PostgreSQL's state, now (the leader asks for a fresh one when it matters).</summary>
    public long ObserveIntervalMs => Attentive || !_settled ? 100 : 1000;

    /// <summary>
    /// How often the host should tick the node, now: every 50 ms while anything is happening (a failover may fall
    /// due), every 100 ms for an idle primary (renewals) or Raft leader (grants come as requests, not ticks), every
    /// 250 ms for a replica sitting in its role. The lease's fence has a tick of its own (<see cref="NextTickAt"/>).
    /// </summary>
    public long TickIntervalMs => Attentive || !_started ? 50 : _mayWrite || _control.Primary == _config.Self || _raft.IsLeader ? 100 : 250;

    /// <summary>
    /// When the host should tick the node next, its last tick given: a tick interval later, or when the lease runs
    /// out if PostgreSQL may write and that comes first, so that the fence starts at its deadline, not up to a tick
    /// later.
    /// </summary>
    public long NextTickAt(long lastTick)
    {
        var next = lastTick + TickIntervalMs;
        return _mayWrite && LeaseUntil is { } until && until > lastTick && until < next ? until : next;
    }

    /// <summary>
    /// Whether reports should be read fresh (the other member queries its PostgreSQL before it answers): the leader,
    /// while the primary is late; the old primary of a switchover, waiting for its target to have its final WAL.
    /// </summary>
    public bool WantsFreshReports => _switchover is not null || !_control.PendingSwitchover.IsNone || (_raft.IsLeader && (_failoverNote is not null || LeaderSeesPrimaryLate));

    private bool LeaderSeesPrimaryLate
    {
        get
        {
            var lastRenewal = Math.Max(_priorGrantsEndedAt, _grantEpoch == _control.Epoch ? _grantAt : long.MinValue);
            return _control.Epoch != Epoch.Zero && _now - lastRenewal > (long)_config.Lease.LateAfter.TotalMilliseconds;
        }
    }

    /// <summary>
    /// Something is (or may soon be) happening: then reports and observations are read often; an idle member in
    /// its role reads them rarely, which keeps an idle cluster cheap without slowing detection (the lease rules do
    /// not depend on polling, and the leader reads often as soon as the primary misses a renewal).
    /// </summary>
    private bool Attentive
    {
        get
        {
            // A quorum primary whose commits all wait reads its standbys often: the step-down falls due on their ages.
            if (!Steady || !_control.PendingSwitchover.IsNone || _fencing is not null || _mayWrite != (_control.Primary == _config.Self) || _starvedSince >= 0)
            {
                return true;
            }

            if (_raft.IsLeader && (LeaderSeesPrimaryLate || _failoverNote is not null))
            {
                return true;
            }

            return _peers.Values.Any(p => !p.Reachable || !p.Ready);
        }
    }

    /// <summary>The other members' last reports, as this node holds them.</summary>
    public IReadOnlyDictionary<MemberId, PeerView> PeerReports() => new Dictionary<MemberId, PeerView>(_peers);

    /// <summary>This member's report, as another member's node would read it.</summary>
    public PeerView SelfView()
    {
        var status = Status();
        return new PeerView(
            _config.Self,
            true,
            _control.Epoch,
            status.Role,
            status.Ready || status.WaitingForStandbys,
            status.Running,
            status.Line,
            status.FlushLsn,
            status.ReplayLsn,
            status.PositionSettled,
            status.Follow,
            _pg is { } pg && ReplicationLiveness.ReceiverNotStreaming(pg) is null,
            _fencedEpoch,
            _pgAt,
            status.DetachFrom,
            status.DetachedFrom,
            ControlCommand.HighestFormat,
            status.AcceptsStandbys);
    }

    /// <summary>What this member is now.</summary>
    public NodeStatus Status()
    {
        var primary = _control.Primary;
        var isNamed = primary == _config.Self && _control.Epoch != Epoch.Zero;
        var role = !_running ? InstanceRole.Stopped
            : _mayWrite || _pg is { InRecovery: false } ? InstanceRole.Primary
            : _pg is { InRecovery: true } ? InstanceRole.Replica
            : InstanceRole.Unknown;
        var (follow, followWhy) = FollowStateNow(role);
        var leaseRemaining = isNamed ? (LeaseUntil is { } until ? Math.Max(0, until - _now) : 0) : (long?)null;
        var writablePrimary = role == InstanceRole.Primary && isNamed && _pg is { InRecovery: false } && leaseRemaining > 0 && _fencedEpoch != _control.Epoch && _fencing is null;
        var takesWrites = writablePrimary && _primaryObjectsReady;

        // Only once its own line is known (a state query since the promotion, which resets it): a replica judges
        // from that line whether it can follow, and without it would repoint even where it must rewind first.
        var acceptsStandbys = writablePrimary && _slotsReady && _line is not null;

        // Quorum mode: a primary that takes writes but hears from fewer than k standbys blocks every commit; it is not
        // ready, and says why (it keeps its role: nowhere else can the writes go).
        var blocked = takesWrites ? ReplicationLiveness.SynchronousCommitsBlocked(_pg!, _config) : null;
        var ready = role switch
        {
            InstanceRole.Primary => takesWrites && blocked is null,
            InstanceRole.Replica => follow == FollowState.Streaming,
            _ => false,
        };
        var notReadyWhy = ready ? null
            : blocked ?? (role switch
            {
                InstanceRole.Primary => !isNamed ? "another member is named primary"
                    : _pg is not { InRecovery: false } ? "not out of recovery yet"
                    : !_slotsReady ? "creating the replication slots"
                    : !_primaryObjectsReady ? "setting up the primary's roles and grants"
                    : _fencedEpoch == _control.Epoch || _fencing is not null ? "fenced"
                    : "no primary lease",
                InstanceRole.Replica => $"not streaming from the primary ({follow.ToString().ToLowerInvariant()}{(followWhy is null ? string.Empty : ": " + followWhy)})",
                InstanceRole.Stopped => "postgres is not running",
                _ => "postgres state unknown",
            });
        long? lag = null;
        if (role == InstanceRole.Replica && follow is FollowState.Streaming or FollowState.Connecting
            && _peers.TryGetValue(primary, out var p) && p is { Reachable: true, Role: InstanceRole.Primary })
        {
            lag = p.FlushLsn.BytesAfter(_replayed);
        }
        else if (role == InstanceRole.Primary)
        {
            lag = 0;
        }

        return new NodeStatus(
            role,
            ready,
            _running,
            _control,
            _raft,
            _line,
            _pg?.WriteLsn ?? Lsn.Zero,
            _flushed,
            _replayed,
            _settled,
            follow,
            followWhy,
            _upstream,
            lag,
            _pg?.Standbys ?? [],
            _activity,
            _lastError,
            _lastError is null ? null : _lastErrorAt,
            _pg is null ? null : _pgAt,
            _pg is null ? 0 : _pgQueryMs,
            _fencedEpoch,
            _fencedEpoch == _control.Epoch && _fencedEpoch != Epoch.Zero ? _fenceReason : null,
            leaseRemaining,
            _watchdogDeadline is not null,
            _mayWrite,
            !_raft.IsLeader ? null
                : _forcedRefusal is { } refusal && refusal.Epoch == _control.Epoch ? refusal.Why + (_failoverNote is { } note && note != refusal.Why ? $" (since: {note})" : string.Empty)
                : _failoverNote,
            _raft.IsLeader && _forcedRefusal is { } refused && refused.Epoch == _control.Epoch ? refused.Why : null,
            _steppingDown,
            notReadyWhy,
            blocked is not null,
            _raft.IsLeader && _detachEpoch == _control.Epoch ? _detachEpoch : Epoch.Zero,
            DetachedFromNow,
            acceptsStandbys);
    }

    private (FollowState State, string? Why) FollowStateNow(InstanceRole role)
    {
        switch (_inFlight)
        {
            case PostgresAction.Rewind:
                return (FollowState.Rewinding, _inFlight.Why);
            case PostgresAction.CloneFrom or PostgresAction.Reclone:
                return (FollowState.Cloning, _inFlight.Why);
        }

        if (role != InstanceRole.Replica)
        {
            return (FollowState.None, null);
        }

        var (check, why) = CheckFollow();
        if (check is FollowCheck.Diverged or FollowCheck.NeedsClone)
        {
            return (FollowState.Diverged, why);
        }

        if (_upstream.IsNone || _upstream != _control.Primary)
        {
            return (FollowState.WaitingForPrimary, !_upstream.IsNone ? $"still configured to follow {_config.NameOf(_upstream)}"
                : _pg is { Receiver: not (WalReceiverStatus.None or WalReceiverStatus.Stopped) } pgNow ? $"configured to follow no one, but the WAL receiver still runs ({pgNow.Receiver.ToString().ToLowerInvariant()}) until the startup process applies the reload"
                : "not following anyone yet");
        }

        if (_pg is not { } pg)
        {
            return (FollowState.Connecting, null);
        }

        // IMPORTANT for the truth of /status: PostgreSQL says "streaming" as long as the walreceiver process exists,
        // also while it is frozen; only a message from the primary heard recently shows it streams.
        var silent = ReplicationLiveness.ReceiverNotStreaming(pg);
        return silent is null ? (FollowState.Streaming, null) : (FollowState.Connecting, pg.Receiver == WalReceiverStatus.Streaming ? silent : null);
    }

    /// <summary>Whether this member may be rebuilt from the primary now (<c>POST /reinit</c>), and what it will say.</summary>
    public (bool Accepted, string Message) CheckReinit()
    {
        var control = _control;
        if (control.Primary.IsNone || control.Epoch == Epoch.Zero)
        {
            return (false, "the cluster has no primary yet to clone from");
        }

        if (control.Primary == _config.Self)
        {
            return (false, $"{_config.NameOf(_config.Self)} is the primary (epoch {control.Epoch}); switch over first, then reinit it as a replica");
        }

        return _reinitRequested
            ? (true, $"a reinit of {_config.NameOf(_config.Self)} is already under way")
            : (true, $"reinit of {_config.NameOf(_config.Self)}: its data is set aside and cloned afresh from {_config.NameOf(control.Primary)}");
    }

    /// <summary>
    /// The command that turns maintenance mode <paramref name="on"/> or off, with what it will say; no command when it
    /// already is so (a client's retry, or a second operator), with that said.
    /// </summary>
    public (ControlCommand? Command, string Message) CheckMaintenance(bool on)
    {
        var control = _control;
        return control.Maintenance == on
            ? (null, on ? "maintenance mode is already on: automatic failover is paused" : "maintenance mode is already off")
            : (ControlCommand.SetMaintenance(control.Epoch, on), on
                ? "maintenance mode on: automatic failover is paused (switchovers still work)"
                : "maintenance mode off: automatic failover resumed");
    }

    /// <summary>
    /// Why a switchover to <paramref name="target"/> (none: the most caught-up replica) is refused now, or the command to
    /// propose; or, when that same switchover is already requested (a client's retry), the epoch it was requested at.
    /// </summary>
    public (ControlCommand? Command, string Message, Epoch? InProgressAt) CheckSwitchover(string? target)
    {
        var control = _control;
        if (control.Primary.IsNone || control.Epoch == Epoch.Zero)
        {
            return (null, "the cluster has no primary yet", null);
        }

        if (!control.PendingSwitchover.IsNone)
        {
            var pending = _config.NameOf(control.PendingSwitchover);
            return target is null || target == pending
                ? (null, $"a switchover to {pending} is already in progress at epoch {control.Epoch}", control.Epoch)
                : (null, $"a switchover to {pending} is already in progress", null);
        }

        var views = Views();
        MemberId to;
        if (target is null)
        {
            var best = views.Values.Where(v => v.Id != control.Primary && v.IsStreamingReplica).OrderByDescending(v => v.FlushLsn.Value).ThenBy(v => v.Id.Value).FirstOrDefault();
            if (best is null)
            {
                return (null, "no replica is streaming from the primary; nothing to switch over to", null);
            }

            to = best.Id;
        }
        else
        {
            var member = _config.Members.FirstOrDefault(m => m.Name == target);
            if (member is null)
            {
                return (null, $"no member is named '{target}' (members: {string.Join(", ", _config.Members.Select(m => m.Name))})", null);
            }

            if (!member.IsVoter)
            {
                return (null, $"{target} is a learner still joining the cluster; a switchover goes to a voter", null);
            }

            to = member.Id;
        }

        if (to == control.Primary)
        {
            return (null, $"{_config.NameOf(to)} is already the primary (epoch {control.Epoch})", null);
        }

        if (!views.TryGetValue(control.Primary, out var primary) || primary is not { Reachable: true, Ready: true })
        {
            return (null, "the primary is not ready; a switchover needs a healthy primary to hand over from", null);
        }

        var refusal = PostgresPlanner.SwitchoverRefusal(_config, views.GetValueOrDefault(to), primary.FlushLsn, primary.Line, _config.SwitchoverMaxLagBytes);
        return refusal is not null
            ? (null, refusal + "; refusing to switch over", null)
            : (ControlCommand.RequestSwitchover(control.Epoch, to), $"switchover to {_config.NameOf(to)} requested at epoch {control.Epoch}", null);
    }
}
