using MemoryCluster.Instance.Control;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Node;

/// <summary>
/// The primary's side of the lease (docs/failover.md): the latch that says PostgreSQL may accept writes, the
/// fence, the watchdog, health probes and renewals.
/// </summary>
public sealed partial class InstanceNode
{
    // IMPORTANT: true from the moment the node asks to start PostgreSQL as primary or to promote it, until it is
    // verified stopped (a clean shutdown, or a fence that found no process left). While it is true the watchdog
    // is armed and the lease rules fence; nothing else clears it.
    private bool _mayWrite;

    // The lease: the send time (this node's clock) of the last renewal the Raft leader granted, and its epoch.
    private Epoch _leaseEpoch;
    private long _leaseSentAt;
    // Renewals asked and not answered yet: the Raft leader known when each was asked (the host sends it there), and when.
    private readonly Dictionary<long, (MemberId Leader, long At)> _renewals = [];
    private long _nextRenewalAt;
    private bool _probeInFlight;
    private long _probeAskedAt;
    private ProbeDone? _lastProbe;
    private string? _renewalNote = string.Empty;

    // Quorum mode: since when fewer than k standbys stream from this primary, whether that was dated from their
    // last replies, whether k did at this epoch (and membership) before, and whether it gave up its epoch.
    private long _starvedSince = -1;
    private bool _starvedDated;
    private bool _quorumHeard;
    private bool _steppingDown;

    // The fence: one at a time; the epoch recorded by the last one that completed.
    private Fence? _fencing;
    private Epoch _fencedEpoch;
    private string? _fenceReason;

    /// <summary>A promotion whose replay has not moved for this long is given up (the member fences itself).</summary>
    public const long PromoteStallMs = 6000;

    // When the promotion in flight was asked for or last made progress (replay moved on).
    private long _promoteProgressAt;

    // The watchdog deadline last written (null: disarmed).
    private long? _watchdogDeadline;
    private bool _watchdogWritten;

    // The last CampaignFirst sent; the Raft voter starts without it.
    private bool _campaignsFirst;

    /// <summary>Until when (node clock) the lease held for the current epoch lets PostgreSQL write; null when none is held for it.</summary>
    private long? LeaseUntil =>
        _leaseEpoch == _control.Epoch && _control.Epoch != Epoch.Zero && _control.Primary == _config.Self
            ? _leaseSentAt + (long)_config.Lease.FenceAfter.TotalMilliseconds
            : null;

    /// <summary>
    /// How long a quorum-mode primary with fewer than k standbys replying keeps its epoch while healthy replicas exist
    /// elsewhere, from when it noticed: two leases, for standbys that restart, reconnect and catch up, or re-point to
    /// a new primary (a restart, a rewind), to stream again.
    /// </summary>
    private long StarvationGrace => (long)(_config.Lease.Lease.TotalMilliseconds * 2);

    /// <summary>
    /// The same when k standbys replied at this epoch and their rows still show them streaming, silent (a cut, a
    /// frozen walreceiver): counted from when the k-th went stale (<see cref="ReplicationLiveness.StarvedSince"/>),
    /// so with the 3 s a reply takes to go stale, 4 s in which no commit could be acknowledged, about what a primary
    /// that died is replaced in. The ages are the primary's clock less the standby's: wall-clock skew between the
    /// hosts shortens it by as much (docs/failover.md).
    /// </summary>
    public const long SilenceGraceMs = 1000;

    /// <summary>Fences whenever PostgreSQL may write and must not.</summary>
    private void EnforceFence()
    {
        if (!_mayWrite || _fencing is not null)
        {
            return;
        }

        var epoch = _control.Epoch;
        if (_control.Primary != _config.Self)
        {
            // IMPORTANT: a committed epoch names another primary: this one stops at once.
            StartFence(Epoch.Zero, $"epoch {epoch} names {_config.NameOf(_control.Primary)} primary");
        }
        else if (_fencedEpoch == epoch)
        {
            StartFence(epoch, $"already fenced at epoch {epoch}");
        }
        else if (_inFlight is PostgresAction.Promote && _now - _promoteProgressAt > PromoteStallMs)
        {
            // IMPORTANT: a promotion that makes no progress (its startup process frozen, say) keeps the lease and so
            // keeps every other member from being promoted: give the epoch up (fence and say so), and the leader
            // promotes another member at once. The fence records the epoch, so this member never writes at it.
            StartFence(epoch, $"the promotion made no progress for {PromoteStallMs / 1000} s (replay stuck at {_replayed})");
        }
        else if (_steppingDown)
        {
            // Quorum mode: no commit can be acknowledged here while healthy replicas wait elsewhere. Fence at once,
            // rather than when the lease runs out: the fence records the epoch and tells the others, and the leader
            // replaces a primary that reported itself fenced without waiting out its lease.
            StartFence(epoch, "stepped down: no synchronous standby streams from this primary while healthy replicas exist");
        }
        else if (LeaseUntil is not { } until || _now >= until)
        {
            // IMPORTANT: the lease counts from the send of the last granted renewal, so this deadline comes before
            // anything the leader counts from; the leader promotes a replacement only ρ·L + S + M after its grant.
            StartFence(epoch, _lastProbe is { Healthy: false } probe
                    ? $"postgres failed its health probe until the lease ran out ({probe.Why})"
                    : $"no lease renewal from the Raft leader in time ({_renewalNote ?? "none asked"})");
        }
    }

    private void StartFence(Epoch record, string why)
    {
        if (_fencing is not null)
        {
            return;
        }

        _fencing = new Fence(NextId(), record, why);
        _activity = "fencing: " + why;
        Log(LogLevel.Warning, "fencing: " + why);
        _out.Add(_fencing);
    }

    private void OnFenceDone(FenceDone f)
    {
        if (_fencing is not { } fence || fence.Id != f.ActionId)
        {
            return;
        }

        _fencing = null;
        _data = f.Data;
        if (f.Outcome != Outcome.Done)
        {
            // Processes survived SIGKILL: the rules fence again at once.
            _lastError = "fence: " + f.Error;
            _lastErrorAt = _now;
            Log(LogLevel.Error, "fence incomplete: " + f.Error);
            return;
        }

        _mayWrite = false;
        _running = false;
        _pg = null;
        if (fence.Record != Epoch.Zero)
        {
            _fencedEpoch = fence.Record;
            _fenceReason = fence.Why;
            Log(LogLevel.Warning, $"fenced at epoch {fence.Record}: postgres stopped ({fence.Why})");

            // The leader may replace a primary that reports itself fenced at once: tell the others now rather
            // than wait for their next read of this member's report (up to a second on an idle cluster).
            _out.Add(new AnnounceFenced(fence.Record));
        }
    }

    /// <summary>Armed at the lease's watchdog deadline whenever PostgreSQL may write, disarmed otherwise; written only on change.</summary>
    private void SyncWatchdog()
    {
        long? desired = null;
        if (_mayWrite)
        {
            desired = LeaseUntil is not null ? _leaseSentAt + (long)_config.Lease.WatchdogAfter.TotalMilliseconds : _now;
        }

        if (_watchdogWritten && desired == _watchdogDeadline)
        {
            return;
        }

        _watchdogDeadline = desired;
        _watchdogWritten = true;
        _out.Add(desired is { } d ? new ArmWatchdog(d) : new DisarmWatchdog());
    }

    /// <summary>
    /// The primary that holds its lease campaigns first when the Raft leader goes silent: its lease has at most
    /// 1.8 s left from its last renewal's send, and a Raft election with the random timeout of [0.5, 1) s after the
    /// last heartbeat, then the renewal, did not always fit in it under load (the primary fenced itself for a dead
    /// leader that was not even the primary). With the shortest legitimate timeout the election takes 0.55 s at most
    /// after the last heartbeat, whoever wins it.
    /// </summary>
    private void SyncCampaignFirst()
    {
        // Only while it holds a lease: a primary that seeks its first one (a cluster starting) would win the first
        // election and, leading Raft, hand leadership away 5 s later, on a host still busy starting everything; that
        // hand-over cost the primary its lease in 2 of 5 full restarts (e2e). Not while it hands over in a switchover
        // (it renews no more) or steps down.
        var first = _control.Primary == _config.Self && _control.Epoch != Epoch.Zero && _fencedEpoch != _control.Epoch && !_steppingDown
            && _switchover is not { FinalLsn: not null } && LeaseUntil is { } until && _now < until;
        if (first == _campaignsFirst)
        {
            return;
        }

        _campaignsFirst = first;
        _out.Add(new CampaignFirst(first));
    }

    /// <summary>While the control state names this member primary: probe, then ask the Raft leader for a renewal, every renewal interval.</summary>
    private void KeepLease()
    {
        var epoch = _control.Epoch;
        if (_control.Primary != _config.Self || epoch == Epoch.Zero)
        {
            return;
        }

        CheckStarvation();
        if (_fencedEpoch == epoch || _steppingDown || _switchover is { FinalLsn: not null } || _now < _nextRenewalAt)
        {
            return;
        }

        // The host answers every renewal by its timeout; one it never answered does not hold a place for ever.
        // IMPORTANT: renewals overlap. A slow answer (a starved leader, a busy host) still extends the lease from its
        // send time if it comes before the lease runs out, while the next renewals are already on their way; only so
        // many wait on one leader at a time, and a new leader is asked at once.
        var forgetBefore = _now - (long)(_config.Lease.RenewalTimeout + _config.Lease.RenewInterval).TotalMilliseconds;
        var atLeader = 0;
        foreach (var (id, asked) in _renewals)
        {
            if (asked.At < forgetBefore)
            {
                // The host answers every renewal by its timeout; one it never answered does not hold a place for ever.
                _renewals.Remove(id);
            }
            else if (asked.Leader == _raft.Leader)
            {
                atLeader++;
            }
        }

        if (atLeader >= LeaseTimings.RenewalsInFlight)
        {
            return;
        }

        // A running PostgreSQL is probed first; one being started or promoted cannot answer yet, and a stopped one
        // needs the lease in order to start.
        var probeable = _running && _inFlight is not (PostgresAction.StartPrimary or PostgresAction.StartStandby or PostgresAction.Promote);
        if (probeable)
        {
            if (_lastProbe is null || _lastProbe.Now < _nextRenewalAt)
            {
                if (!_probeInFlight)
                {
                    _probeInFlight = true;
                    _probeAskedAt = _now;
                    _out.Add(new Probe());
                }

                return;
            }

            if (!_lastProbe.Healthy)
            {
                _nextRenewalAt = _now + (long)_config.Lease.RetryInterval.TotalMilliseconds;
                return;
            }
        }

        var request = NextId();
        _renewals[request] = (_raft.Leader, _now);
        _nextRenewalAt = _now + (long)_config.Lease.RenewInterval.TotalMilliseconds;
        _out.Add(new RequestRenewal(request, epoch));
    }

    private void OnProbeDone(ProbeDone p)
    {
        _probeInFlight = false;
        if (p.Healthy != _lastProbe?.Healthy && !p.Healthy)
        {
            Log(LogLevel.Warning, $"health probe failed: {p.Why}");
        }

        _lastProbe = p;
    }

    private void OnLeaseAnswered(LeaseAnswered l)
    {
        if (_renewals.Remove(l.RequestId))
        {
            if (!l.Granted)
            {
                // Not granted (the leader changed, is busy, or refused): ask again sooner than the steady interval.
                _nextRenewalAt = Math.Min(_nextRenewalAt, l.SentAt + (long)_config.Lease.RetryInterval.TotalMilliseconds);
            }
        }

        var note = l.Granted ? null : l.Why;
        if (note != _renewalNote)
        {
            Log(l.Granted ? LogLevel.Information : LogLevel.Warning, l.Granted ? $"primary lease renewed at epoch {l.Epoch}" : $"primary lease renewal at epoch {l.Epoch} not granted: {l.Why}");
            _renewalNote = note;
        }

        if (!l.Granted || l.Epoch != _control.Epoch || _control.Primary != _config.Self)
        {
            return;
        }

        if (l.Epoch != _leaseEpoch || l.SentAt > _leaseSentAt)
        {
            _leaseEpoch = l.Epoch;
            _leaseSentAt = l.SentAt;
        }
    }

    /// <summary>
    /// Quorum mode: a primary from which fewer than k standbys stream blocks every commit. When that lasts and k
    /// healthy replicas report elsewhere (they run, they can follow, they just do not reach this primary), it stops
    /// renewing its lease so that the leader fails over to one of them.
    /// </summary>
    private void CheckStarvation()
    {
        // In maintenance mode the leader fails over from nothing, so stepping down would leave no primary at all.
        if (_config.Mode != ReplicationMode.Quorum || _steppingDown || !_running || _pg is not { InRecovery: false } pg || !_primaryObjectsReady || _control.Maintenance)
        {
            // The standbys' slots and synchronous_standby_names are made again after a start or a change of
            // membership: whether k replied counts from then.
            _starvedSince = -1;
            _quorumHeard = _quorumHeard && _primaryObjectsReady;
            return;
        }

        // Distinct members streaming and replying: a walsender stays "streaming" while its standby's walreceiver is
        // frozen (until wal_sender_timeout), and such a standby acknowledges nothing (ReplicationLiveness).
        var streaming = ReplicationLiveness.ReplyingMembers(pg.Standbys, _config);
        if (streaming >= _config.SyncStandbys)
        {
            _starvedSince = -1;
            _quorumHeard = true;
            return;
        }

        if (_starvedSince < 0)
        {
            var dated = ReplicationLiveness.StarvedSince(pg.Standbys, _config, _now);
            _starvedSince = dated ?? _now;
            _starvedDated = dated is not null;
        }

        var grace = _quorumHeard && _starvedDated ? SilenceGraceMs : StarvationGrace;
        var healthyElsewhere = _peers.Values.Count(p => p is { Reachable: true, Running: true, Role: InstanceRole.Replica } && p.Follow != FollowState.Diverged);
        if (_now - _starvedSince >= grace && healthyElsewhere >= _config.SyncStandbys)
        {
            _steppingDown = true;
            Log(LogLevel.Warning, $"stepping down: {streaming} of the {_config.SyncStandbys} synchronous standbys needed stream to this primary and reply for {(_now - _starvedSince) / 1000.0:0.0} s{(grace == SilenceGraceMs ? " (dated from their last replies)" : string.Empty)}, every commit waits, and {healthyElsewhere} healthy replicas report elsewhere; fencing");
        }
    }
}
