using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Node;

/// <summary>The PostgreSQL side: observations, the replica's exact position, and carrying out the planner's next step.</summary>
public sealed partial class InstanceNode
{
    // The WAL position this member reports. On a replica it never goes backwards on the same data: after a
    // restart of the postmaster, pg_last_wal_receive_lsn() is null and replay starts below what was flushed.
    private WalLine? _line;
    private Lsn _flushed;
    private Lsn _replayed;
    private bool _settled;
    private string? _refused;

    // Where the data's WAL ends when this manager stopped PostgreSQL cleanly for a switchover (null otherwise).
    private Lsn? _stoppedCleanlyAt;

    // Quorum-mode failover: the epoch whose primary this replica stopped streaming from, and when (node clock).
    private Epoch _detachedEpoch;
    private long _detachedAt;

    // When PostgreSQL last exited (node clock): a state read before then describes a life that is over.
    private long _pgExitedAt = long.MinValue;

    private void OnPostgresObserved(PostgresObserved p)
    {
        if (!_running)
        {
            return;
        }

        if (p.Observation is not null && Math.Min(p.QueryStarted ?? p.Now, p.Now) <= _pgExitedAt)
        {
            // IMPORTANT: read before PostgreSQL last exited and answered since: its positions are from the life before
            // (they would settle a position the restarted startup process has not replayed back to yet).
            return;
        }

        if (p.Observation is not { } pg)
        {
            if ("state query: " + p.Error != _lastError)
            {
                Log(LogLevel.Warning, $"state query: {p.Error}");
            }

            _lastError = "state query: " + p.Error;
            _lastErrorAt = _now;
            return;
        }

        _pg = pg;

        // IMPORTANT: the state is dated when its query began, not when it ended: a failover counts a replica's
        // position only when read after the old primary stopped writing (PeerView.StateAt), and a slow query on a
        // loaded host may have read it well before it answered.
        _pgAt = Math.Min(p.QueryStarted ?? p.Now, p.Now);
        _pgQueryMs = p.Now - _pgAt;
        if (_lastError?.StartsWith("state query", StringComparison.Ordinal) == true)
        {
            _lastError = null;
        }

        var line = pg.Line;
        if (!pg.InRecovery)
        {
            _line = line;
            _flushed = pg.FlushLsn;
            _replayed = pg.FlushLsn;
            _settled = true;
            _quorumProof = QuorumProofs.Observe(_quorumProof, _control, _config, _mayWrite, pg, _pgAt);
            return;
        }

        if (_line is not null && !line.Equals(_line) && line.Timeline < _line.Timeline)
        {
            // The data's timeline never goes back on the same data (only a rewind or a clone, which reset this).
            Log(LogLevel.Warning, $"the data's timeline went from {_line} to {line}");
        }

        _line = line;
        var current = Lsn.Max(pg.ReceiveLsn ?? Lsn.Zero, pg.ReplayLsn);
        _flushed = Lsn.Max(_flushed, current);
        if (pg.ReplayLsn > _replayed)
        {
            _promoteProgressAt = _now;
        }

        _replayed = Lsn.Max(_replayed, pg.ReplayLsn);

        // IMPORTANT: exact only once the startup process has asked for streaming since this postmaster started (it
        // has replayed all local WAL then); a postmaster's exit makes it inexact again (OnPostgresExited).
        _settled |= pg.ReceiveLsn is not null;
    }

    private void ResetPosition()
    {
        _line = null;
        _flushed = Lsn.Zero;
        _replayed = Lsn.Zero;
        _settled = false;
        _refused = null;
    }

    private void OnTimelineRefused(TimelineRefused t)
    {
        if (_control.Primary == _config.Self && _control.Epoch != Epoch.Zero)
        {
            // The member named primary follows no one: its startup process refusing a timeline is about the
            // placeholders written before its promotion (TimelinePlaceholders), which it must refuse, not about an
            // upstream; a rewind now would throw away the data it is promoting.
            return;
        }

        if (_refused is null)
        {
            Log(LogLevel.Warning, $"postgres refuses the primary's timeline: {t.Line}");
        }

        _refused = t.Line;
        if (_inFlight is PostgresAction.StartStandby start)
        {
            // A standby that refuses the primary's timeline never reaches a consistent state, so it never accepts the
            // connections the start waits for: stop waiting, so the node can stop it and rewind.
            _out.Add(new AbandonAction(start.Id, "postgres refuses the primary's timeline"));
        }
    }

    private void OnPostgresExited(PostgresExited e)
    {
        var expected = _inFlight is PostgresAction.Stop || _fencing is not null;
        _running = false;
        _pg = null;
        _pgExitedAt = e.Now;

        // IMPORTANT: the WAL this data holds may reach past the last position read (a standby flushes between two
        // state queries, and a crash comes between them too): once started again, the position is exact only when
        // the startup process has replayed all local WAL anew. The position read so far stays, as a lower bound.
        _settled = false;
        if (expected)
        {
            if (_inFlight is PostgresAction.Stop && _fencing is null)
            {
                // A clean shutdown: the postmaster exits only after every backend has.
                _mayWrite = false;
            }

            return;
        }

        Log(LogLevel.Warning, $"postgres exited with code {e.Code}");
        if (_mayWrite)
        {
            // IMPORTANT: backends can outlive a killed postmaster and still commit on their sessions: kill them all and
            // record the fence before anything could start PostgreSQL again as primary at this epoch.
            StartFence(_control.Primary == _config.Self ? _control.Epoch : Epoch.Zero, "postgres exited unexpectedly");
        }
    }

    private void OnActionDone(ActionDone done)
    {
        if (_inFlight is not { } action || action.Id != done.ActionId)
        {
            return;
        }

        _inFlight = null;
        _data = done.Data;
        if (done.Outcome != Outcome.Done)
        {
            if (action is PostgresAction.Rewind)
            {
                _rewindFailed = true;
            }

            if (action is PostgresAction.Stop { ForSwitchover: true })
            {
                _switchover = null;
            }

            Failed(KindName(action), done.Error);
            return;
        }

        _failures = 0;
        _retryAt = 0;
        _lastError = null;
        switch (action)
        {
            case PostgresAction.CloneFrom clone:
                ResetPosition();
                _upstream = clone.From;
                _rewindFailed = false;
                break;
            case PostgresAction.Reclone reclone:
                ResetPosition();
                _upstream = reclone.From;
                _rewindFailed = false;
                _reinitRequested = false;
                break;
            case PostgresAction.Rewind rewind:
                ResetPosition();
                _upstream = rewind.From;
                _rewindFailed = false;
                break;
            case PostgresAction.InitDb:
                ResetPosition();
                break;
            case PostgresAction.StartStandby start:
                _upstream = start.Upstream;
                break;
            case PostgresAction.StartPrimary:
                _upstream = MemberId.None;
                break;
            case PostgresAction.Repoint repoint:
                _upstream = repoint.Upstream;
                _configWrittenAt = _now;
                break;
            case PostgresAction.Promote:
                // Out of recovery now: say so at once rather than at the next state query.
                _upstream = MemberId.None;
                ResetPosition();
                if (_pg is not null)
                {
                    _pg = _pg with { InRecovery = false };
                }

                Log(LogLevel.Information, $"promoted at epoch {_control.Epoch}");
                break;
            case PostgresAction.Stop stop:
                _running = false;
                _pg = null;
                _mayWrite = false;
                if (stop.ForSwitchover && _switchover is { } s)
                {
                    _switchover = s with { FinalLsn = done.FinalLsn ?? Lsn.Zero };
                    _stoppedCleanlyAt = done.FinalLsn;
                }

                break;
            case PostgresAction.EnsureSlots:
                // Done for the membership it was asked for: a change meanwhile asks for them again.
                _slotsReady = _slotsForMembership == _membershipVersion;
                break;
            case PostgresAction.EnsurePrimaryObjects:
                _primaryObjectsReady = _objectsForMembership == _membershipVersion;
                break;
        }

        if (action is PostgresAction.Repoint or PostgresAction.StartStandby)
        {
            if (!_upstream.IsNone)
            {
                // Following a primary again: a detachment (if any) is over.
                _detachedEpoch = Epoch.Zero;
            }
            else if (_detachedEpoch != _control.Epoch && !_control.Primary.IsNone && _control.Primary != _config.Self)
            {
                // IMPORTANT: recorded whether or not the leader's ask is in sight at this moment (it planned the
                // emptying; a report lost meanwhile must not leave the stop unrecorded, and uncounted, for ever). Once
                // recorded it holds the replica detached until the primary is seen taking writes again.
                _detachedEpoch = _control.Epoch;
                _detachedAt = _now;
                Log(LogLevel.Information, $"primary_conninfo emptied to stop streaming from {_config.NameOf(_control.Primary)}: the Raft leader fails over from epoch {_control.Epoch}");
            }
        }
    }

    /// <summary>
    /// Whether this replica must not stream from the primary: the Raft leader (this member, or as another member's
    /// report shows) fails over from the current epoch in quorum mode; or it did, and this replica stopped, and the
    /// primary has not been seen taking writes since (a later grant). Never resumed merely because the ask is not seen
    /// (a leader out of reach may still count this replica's position as final).
    /// </summary>
    private bool Detaching
    {
        get
        {
            var epoch = _control.Epoch;
            if (epoch == Epoch.Zero || _control.Primary.IsNone || _control.Primary == _config.Self)
            {
                return false;
            }

            if (_detachEpoch == epoch || _peers.Values.Any(p => p.Reachable && p.DetachFrom == epoch))
            {
                return true;
            }

            return _detachedEpoch == epoch
                && !(_peers.TryGetValue(_control.Primary, out var primary)
                    && primary is { Reachable: true, Ready: true, Role: InstanceRole.Primary } && primary.Epoch == epoch && primary.StateAt > _detachedAt);
        }
    }

    /// <summary>
    /// The epoch whose primary this replica has stopped streaming from, as far as the state shown proves it: its
    /// WAL receiver seen gone by a state query begun after the stop; zero otherwise.
    /// </summary>
    private Epoch DetachedFromNow =>
        _detachedEpoch == _control.Epoch && _detachedEpoch != Epoch.Zero && _upstream.IsNone && _running && _settled
        && _pg is { InRecovery: true, Receiver: WalReceiverStatus.None or WalReceiverStatus.Stopped } && _pgAt > _detachedAt
            ? _detachedEpoch
            : Epoch.Zero;

    private static string KindName(PostgresAction action) => action.GetType().Name switch
    {
        "InitDb" => "initdb",
        "CloneFrom" => "clone",
        "StartPrimary" => "start as primary",
        "StartStandby" => "start as standby",
        "Promote" => "promote",
        "Stop" => "stop",
        "Rewind" => "rewind",
        "Reclone" => "re-clone",
        "Repoint" => "repoint",
        "EnsurePrimaryObjects" => "primary objects",
        "EnsureSlots" => "replication slots",
        var other => other,
    };

    /// <summary>Whether this replica's WAL can follow the named primary's line, judged from the primary's last report.</summary>
    private (FollowCheck Check, string? Why) CheckFollow()
    {
        if (_refused is not null)
        {
            return (FollowCheck.Diverged, "postgres refuses the new timeline");
        }

        var primary = _control.Primary;
        if (primary.IsNone || primary == _config.Self || !_peers.TryGetValue(primary, out var view)
            || view is not { Reachable: true, Role: InstanceRole.Primary, Line: not null } || view.Epoch != _control.Epoch || _line is null
            || !view.Line.HistoryKnown)
        {
            return (FollowCheck.Unknown, null);
        }

        var (relation, _) = view.Line.Relate(_line, _flushed, _replayed);
        return relation switch
        {
            LineRelation.OnLine => (FollowCheck.Ok, null),
            LineRelation.BeyondFork => (FollowCheck.Diverged, $"replayed {_replayed} on timeline {_line.Timeline}, past where {_config.NameOf(primary)}'s line {view.Line} left it"),
            _ when _line.Timeline == view.Line.Timeline => (FollowCheck.NeedsClone, $"its line {_line} is another branch than {_config.NameOf(primary)}'s {view.Line} with the same timeline id, which pg_rewind cannot tell apart"),
            _ => (FollowCheck.Diverged, $"its line {_line} is another branch than {_config.NameOf(primary)}'s {view.Line}"),
        };
    }

    private void PlanPostgres()
    {
        if (_inFlight is not null || _fencing is not null || _plannerProposal is not null || _now < _retryAt)
        {
            return;
        }

        var (follow, followWhy) = CheckFollow();
        var step = PostgresPlanner.Next(new PlanInput
        {
            Config = _config,
            Control = _control,
            IsRaftLeader = _raft.IsLeader,
            BootstrapMayProceed = _control.Epoch != Epoch.Zero || !_raft.IsLeader || _leaderSince < 0 || FormatPlanner.BootstrapMayProceed(_control, Views(), _now - _leaderSince),
            Data = _data,
            Running = _running,
            Pg = _pg,
            MayWrite = _mayWrite,
            Upstream = _upstream,
            SlotsReady = _slotsReady,
            StandbySlotsDue = !_slotsReady || _replayed.Value - Math.Min(_replayed.Value, _slotsAdvancedTo.Value) >= PostgresPlanner.StandbySlotAdvanceBytes,
            PrimaryObjectsReady = _primaryObjectsReady,
            RewindFailed = _rewindFailed,
            Switchover = _switchover,
            Peers = _peers,
            Now = _now,
            LeaseUntil = LeaseUntil,
            FencedEpoch = _fencedEpoch,
            FenceReason = _fenceReason,
            StartupWait = Math.Max(0, _startedAt + (long)_config.Lease.Lease.TotalMilliseconds - _now),
            Follow = follow,
            FollowWhy = followWhy,
            Flushed = _flushed,
            Line = _line,
            StoppedCleanlyAt = _stoppedCleanlyAt,
            Detach = Detaching,
            DetachRecorded = _detachedEpoch == _control.Epoch && _detachedEpoch != Epoch.Zero,
            PositionSettled = _settled,
            QuorumProven = QuorumProofs.Proven(_quorumProof, _pg, _control, _config),
            ReinitRequested = _reinitRequested,
            QuorumConfigInForce = _config.Mode == ReplicationMode.Quorum && _pg is { } seen && _pgAt >= _configWrittenAt ? QuorumProofs.InForce(_config, seen.Sync) : null,
            SwitchoverTargetHeard = _switchoverSeenAt >= 0 && _heardAt.TryGetValue(_control.PendingSwitchover, out var heard) && heard >= _switchoverSeenAt,
        });
        if (HeldByStop(step))
        {
            step = new PlanStep.Wait($"this manager is stopping: not starting {StepName(step)} ({step.Why})");
        }

        if (step.Why != _activity)
        {
            Log(LogLevel.Information, $"{StepName(step)}: {step.Why}");
        }

        _activity = step.Why;
        switch (step)
        {
            case PlanStep.Wait:
                return;
            case PlanStep.Fence fence:
                StartFence(_control.Primary == _config.Self ? _control.Epoch : Epoch.Zero, fence.Why);
                return;
            case PlanStep.Propose propose:
                _plannerProposal = NextId();
                _out.Add(new Propose(_plannerProposal.Value, propose.Command, propose.Why));
                return;
            case PlanStep.Act act:
                Issue(act);
                return;
        }
    }

    private static string StepName(PlanStep step) => step switch
    {
        PlanStep.Act act => act.Kind.ToString(),
        _ => step.GetType().Name,
    };

    private void Issue(PlanStep.Act act)
    {
        var id = NextId();
        PostgresAction action;
        switch (act.Kind)
        {
            case StepKind.InitDb:
                action = new PostgresAction.InitDb(id, act.Why);
                break;
            case StepKind.Clone:
                action = new PostgresAction.CloneFrom(id, act.Member, act.Why);
                break;
            case StepKind.StartPrimary:
            case StepKind.Promote:
                // IMPORTANT: PostgreSQL may accept writes from here on: latch it and arm the watchdog at the lease's
                // deadline before the host starts or promotes, and forbid the host to begin once the lease is over.
                _mayWrite = true;
                _promoteProgressAt = _now;
                SyncWatchdog();
                action = act.Kind == StepKind.StartPrimary
                    ? new PostgresAction.StartPrimary(id, LeaseUntil!.Value, act.Why)
                    : new PostgresAction.Promote(id, LeaseUntil!.Value, _control.Epoch, act.Why);
                break;
            case StepKind.StartStandby:
                action = new PostgresAction.StartStandby(id, act.Member, act.Why);
                break;
            case StepKind.Stop:
                action = new PostgresAction.Stop(id, false, act.Why);
                break;
            case StepKind.StopForSwitchover:
                _switchover = new SwitchoverProgress(act.Member, _now, null);
                action = new PostgresAction.Stop(id, true, act.Why);
                break;
            case StepKind.Rewind:
                action = new PostgresAction.Rewind(id, act.Member, act.Why);
                break;
            case StepKind.Reclone:
                action = new PostgresAction.Reclone(id, act.Member, act.Why, _reinitRequested);
                break;
            case StepKind.Repoint:
                action = new PostgresAction.Repoint(id, act.Member, act.Why);
                break;
            case StepKind.EnsureSlots:
                action = new PostgresAction.EnsureSlots(id, act.Why);
                _slotsForMembership = _membershipVersion;
                _slotsAdvancedTo = _replayed;
                break;
            case StepKind.EnsurePrimaryObjects:
                action = new PostgresAction.EnsurePrimaryObjects(id, act.Why);
                _objectsForMembership = _membershipVersion;
                break;
            default:
                throw new InvalidOperationException($"no action for {act.Kind}");
        }

        // Any other action starts, changes or replaces the data: its end is no longer the clean shutdown's.
        _stoppedCleanlyAt = null;
        if (action is PostgresAction.StartPrimary or PostgresAction.StartStandby)
        {
            _running = true;
            _pg = null;
            _slotsReady = false;
            _primaryObjectsReady = false;
        }

        _inFlight = action;
        _out.Add(action);
    }

    /// <summary>Nothing in flight and the member sits in its role: a primary taking writes, or a replica streaming from it.</summary>
    private bool Steady =>
        _inFlight is null && _fencing is null && _running && _switchover is null
        && (_control.Primary == _config.Self
            ? _pg is { InRecovery: false } && _primaryObjectsReady
            : _pg is { InRecovery: true } pg && ReplicationLiveness.ReceiverNotStreaming(pg) is null && _upstream == _control.Primary);
}
