using MemoryCluster.Instance.Control;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Node;

/// <summary>
/// The instance manager's decisions, as <c>RawNode</c> is Raft's: no clock reads, no I/O, no threads. The host
/// feeds it <see cref="NodeInput"/>s (time, the Raft view, PostgreSQL observations, peer reports, answers) through
/// <see cref="Step"/> and carries out the <see cref="NodeAction"/>s it returns, in order. It owns every rule about
/// the primary lease, fencing, the watchdog, failover, Raft hand-over and switchover; the host only acts.
/// Not thread-safe: the host calls it from one place at a time.
/// </summary>
public sealed partial class InstanceNode
{
    private readonly NodeConfig _configured;

    // The settings with the committed membership (the configured members until Raft holds any).
    private NodeConfig _config;
    private readonly List<NodeAction> _out = [];
    private long _nextId = 1;
    private long _now;
    private bool _started;
    private long _startedAt;

    // Raft and the control state.
    private RaftView _raft = RaftView.Unknown;
    private ControlState _control = ControlState.Initial;

    /// <summary>When (node clock) a rewrite of the configuration by this manager (a re-point) last completed.</summary>
    private long _configWrittenAt = long.MinValue;

    /// <summary>An operator asked this replica to be cloned afresh from the primary; cleared once done or when it is named primary.</summary>
    private bool _reinitRequested;

    /// <summary>Quorum mode, as the writing primary: the proof under way that k standbys hold its commits.</summary>
    private QuorumProof? _quorumProof;

    /// <summary>When (node clock) this node first saw the pending switchover of the control state; -1 when none is pending.</summary>
    private long _switchoverSeenAt = -1;

    // PostgreSQL, as far as this node knows.
    private DataKind _data = DataKind.Unknown;
    private bool _running;
    private PgObservation? _pg;
    private long _pgAt;
    private long _pgQueryMs;
    private PostgresAction? _inFlight;
    private bool _slotsReady;
    private bool _primaryObjectsReady;
    private long _membershipVersion;
    private long _slotsForMembership;

    // A replica: the replay position its last slot step advanced the slots it keeps to (at most).
    private Postgres.Lsn _slotsAdvancedTo;
    private long _objectsForMembership;
    private MemberId _upstream;
    private bool _rewindFailed;
    private int _failures;
    private long _retryAt;
    private string? _lastError;
    private long _lastErrorAt;
    private string _activity = "starting";
    private long? _plannerProposal;
    private SwitchoverProgress? _switchover;

    // Other members' last reports.
    private readonly Dictionary<MemberId, PeerView> _peers = [];

    public InstanceNode(NodeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = config.Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid node configuration: " + string.Join("; ", problems), nameof(config));
        }

        _configured = config;
        _config = config;
        foreach (var member in config.Members.Where(m => m.Id != config.Self))
        {
            _peers[member.Id] = PeerView.Unreachable(member.Id);
        }
    }

    /// <summary>The settings, with the committed Raft membership as <see cref="NodeConfig.Members"/>.</summary>
    public NodeConfig Config => _config;

    /// <summary>The control state this node last saw applied.</summary>
    public ControlState Control => _control;

    /// <summary>Handles one input and returns what the host must do now, in order.</summary>
    public IReadOnlyList<NodeAction> Step(NodeInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _out.Clear();
        _now = Math.Max(_now, input.Now);
        switch (input)
        {
            case Started s:
                OnStarted(s);
                break;
            case Tick:
                break;
            case RaftObserved r:
                OnRaftObserved(r);
                break;
            case PostgresObserved p:
                OnPostgresObserved(p);
                break;
            case ReinitRequested:
                if (CheckReinit().Accepted)
                {
                    _reinitRequested = true;
                    Log(LogLevel.Warning, "reinit requested: this replica's data is set aside and cloned afresh from the primary");
                }

                break;
            case FailoverRequested f:
                OnFailoverRequested(f);
                break;
            case PostgresExited e:
                OnPostgresExited(e);
                break;
            case ProbeDone p:
                OnProbeDone(p);
                break;
            case ActionDone a:
                OnActionDone(a);
                break;
            case FenceDone f:
                OnFenceDone(f);
                break;
            case PeerObserved p:
                OnPeerObserved(p);
                break;
            case LeaseAnswered l:
                OnLeaseAnswered(l);
                break;
            case ProposalDone p:
                OnProposalDone(p);
                break;
            case RenewalRequested r:
                OnRenewalRequested(r);
                break;
            case TimelineRefused t:
                OnTimelineRefused(t);
                break;
            case StopRequested:
                OnStopRequested();
                break;
            default:
                throw new ArgumentException($"no handler for {input.GetType().Name}", nameof(input));
        }

        if (_started)
        {
            Evaluate();
        }

        return [.. _out];
    }

    /// <summary>The rules, in order of precedence: safety first, then the lease, the leader's duties, then the next PostgreSQL step.</summary>
    private void Evaluate()
    {
        EnforceFence();
        SyncWatchdog();
        WatchStopSwitchover();
        KeepLease();
        SyncCampaignFirst();
        WatchAsLeader();
        PlanPostgres();
        SyncWatchdog();
        if (_lastError is not null && _failures == 0 && Steady)
        {
            // A member back in its role shows no stale error.
            _lastError = null;
        }
    }

    private void OnStarted(Started s)
    {
        _started = true;
        _startedAt = s.Now;
        _data = s.Data;
        _fencedEpoch = s.FencedEpoch;
        _fenceReason = s.FenceReason;

        // The host killed whatever an earlier life left running: nothing runs, nothing may write.
        _out.Add(new DisarmWatchdog());
        _watchdogDeadline = null;
        _watchdogWritten = true;
    }

    private void OnRaftObserved(RaftObserved r)
    {
        var wasLeader = _raft.IsLeader;
        var oldTerm = _raft.Term;
        var oldLeader = _raft.Leader;
        _raft = r.Raft;
        if (_raft.Leader != oldLeader)
        {
            // Elections are rare and every one costs the primary renewals: each member says whom it follows now.
            Log(LogLevel.Information, _raft.Leader.IsNone ? $"no Raft leader known (term {_raft.Term})" : $"Raft leader: {_config.NameOf(_raft.Leader)} (term {_raft.Term})");
        }

        if (r.Raft.Failed)
        {
            Log(LogLevel.Critical, "the Raft host has stopped: this member takes no further part until its manager restarts");
        }

        if (_raft.IsLeader && (!wasLeader || _raft.Term != oldTerm))
        {
            // Grants of earlier leaders all happened before this one was elected (they held Raft leases), and before
            // those leases ended, which its voters' silence may date earlier (RaftOptions.PriorLeasesEndedTicksBefore).
            _leaderSince = _now;
            _priorGrantsEndedAt = _now - Math.Max(0, r.Raft.PriorLeasesEndedMs);
            if (r.Raft.PriorLeasesEndedMs > 0)
            {
                Log(LogLevel.Information, $"elected Raft leader (term {_raft.Term}): its voters' silence shows every earlier leader's lease ended {r.Raft.PriorLeasesEndedMs} ms before");
            }
            _leaderTerm = _raft.Term;
        }
        else if (!_raft.IsLeader)
        {
            _leaderSince = -1;
            _priorGrantsEndedAt = -1;
            _failoverNote = null;
            // IMPORTANT: an ask to stop streaming is this leader's, for as long as it leads. Kept after it lost
            // leadership (paused, say, and deposed while the new leader renews the primary), it held the replicas
            // detached and the quorum primary's commits blocked until it stepped down (adversarial review). A new
            // leader asks again by its own clock; replicas already detached stay so until the primary takes writes.
            _detachEpoch = Epoch.Zero;
        }

        var control = r.Control;
        if (control.Epoch != _control.Epoch)
        {
            OnEpochChanged(control);
        }

        if (control.Maintenance != _control.Maintenance)
        {
            Log(LogLevel.Warning, control.Maintenance
                ? "maintenance mode on: automatic failover is paused (a failed primary is not replaced until it is resumed; switchovers still work)"
                : "maintenance mode off: automatic failover resumed");
        }

        if (control.PendingSwitchover != _control.PendingSwitchover)
        {
            _switchoverSeenAt = control.PendingSwitchover.IsNone ? -1 : _now;
        }

        _control = control;
        OnMembership(control.Members);
        if (_raft.Leader != oldLeader && !_raft.Leader.IsNone && _control.Primary == _config.Self)
        {
            // A new Raft leader is asked at once, not at the next renewal slot: after an election the primary's lease
            // has the least time left it will ever have (the renewals sent to the old leader went unanswered).
            _nextRenewalAt = Math.Min(_nextRenewalAt, _now);
        }
    }

    /// <summary>
    /// Takes the committed membership: reports are read from the members it names, and a primary writes its slots
    /// and synchronous standbys (k from the voters) again.
    /// </summary>
    private void OnMembership(IReadOnlyList<Raft.Member> members)
    {
        var next = _configured.WithMembership(members);
        if (next.Members.SequenceEqual(_config.Members))
        {
            return;
        }

        _config = next;
        _membershipVersion++;
        foreach (var gone in _peers.Keys.Where(id => next.Members.All(m => m.Id != id)).ToList())
        {
            _peers.Remove(gone);
        }

        foreach (var member in next.Members.Where(m => m.Id != _config.Self && !_peers.ContainsKey(m.Id)))
        {
            _peers[member.Id] = PeerView.Unreachable(member.Id);
        }

        // IMPORTANT (quorum mode): the primary's synchronous_standby_names must follow the membership: k grows with
        // the voters, and a new member needs its slot before it can stream.
        _slotsReady = false;
        _primaryObjectsReady = false;
        Log(LogLevel.Information, $"membership: {string.Join(", ", next.Members.Select(m => m.IsVoter ? m.Name : m.Name + " (learner)"))}; quorum k = {next.SyncStandbys}");
    }

    private void OnEpochChanged(ControlState next)
    {
        _epochSeen = next.Epoch;
        _epochSeenAt = _now;
        _slotsReady = false;
        _primaryObjectsReady = false;
        _switchover = null;
        _steppingDown = false;
        _starvedSince = -1;
        _quorumHeard = false;
        _primaryLine = null;
        if (next.Primary == _config.Self)
        {
            // A first lease at the new epoch is wanted at once: the planner waits for it to start or promote.
            _nextRenewalAt = _now;
            _reinitRequested = false;
        }

        Log(LogLevel.Information, $"epoch {next.Epoch}: primary {_config.NameOf(next.Primary)}");
    }

    private void OnPeerObserved(PeerObserved p)
    {
        var askedAt = p.AskedAt ?? p.Now;
        if (p.Report.Id != _config.Self && _peers.TryGetValue(p.Report.Id, out var current)
            && !(_heardAt.TryGetValue(p.Report.Id, out var newest) && askedAt < newest)
            && !(p.Report.Reachable && current.Reachable && p.Report.StateAt < current.StateAt))
        {
            // Older news is dropped: a read asked earlier than the one already taken (two reads of one member overlapped),
            // or an answer showing a PostgreSQL state older than the one already seen (a cached answer after a fresh one).
            _peers[p.Report.Id] = p.Report;
            _heardAt[p.Report.Id] = askedAt;
        }
    }

    private void OnProposalDone(ProposalDone p)
    {
        if (OnStopProposalDone(p))
        {
            return;
        }

        if (p.ProposalId == _formatProposal)
        {
            _formatProposal = null;
            Log(p.Applied ? LogLevel.Information : LogLevel.Warning, p.Applied ? $"control format {_control.Format}: every member reads it" : $"raising the control format was not applied: {p.Why}");
        }
        else if (p.ProposalId == _failoverProposal)
        {
            _failoverProposal = null;
            if (!p.Applied)
            {
                Log(LogLevel.Warning, $"failover blocked: the failover proposal was not applied: {p.Why}");
            }
        }
        else if (p.ProposalId == _plannerProposal)
        {
            _plannerProposal = null;
            if (!p.Applied)
            {
                Failed("propose", p.Why);
            }
        }
    }

    private long NextId() => _nextId++;

    private void Log(LogLevel level, string message) => _out.Add(new Note(level, message));

    /// <summary>Records a failed step and backs off (0.4 s doubling to 10 s) before the planner tries again.</summary>
    private void Failed(string what, string? error)
    {
        _failures++;
        _lastError = $"{what}: {error}";
        _lastErrorAt = _now;
        _retryAt = _now + Math.Min(10_000, 200L << Math.Min(_failures, 6));
        Log(LogLevel.Warning, $"{what} failed: {error}");
    }
}
