namespace MemoryCluster.Raft;

/// <summary>Why a request to the core was refused.</summary>
public enum RaftRefusal
{
    Unknown = 0,
    None = 1,
    NotLeader = 2,
    TransferInProgress = 3,
    NoCommitInCurrentTerm = 4,
    ChangeInProgress = 5,
    InvalidChange = 6,
    LearnerNotCaughtUp = 7,
}

/// <summary>
/// The consensus core, after etcd's raft: no I/O, no clock, no threads. The host calls
/// <see cref="Tick"/>, <see cref="Step"/> and the request methods, then drains
/// <see cref="GetReady"/> and calls <see cref="Advance"/>.
/// </summary>
internal sealed partial class RawNode
{
    private readonly RaftOptions _options;
    private readonly Random _random;
    private readonly List<Entry> _log = [];
    private readonly Dictionary<NodeId, Progress> _progress = [];
    private readonly Dictionary<NodeId, bool> _votes = [];
    // Granted votes of the current campaign: the ticks each voter had counted since it last heard from a leader.
    private readonly Dictionary<NodeId, int> _voteQuiet = [];
    private readonly Dictionary<ulong, long> _roundSentAtTick = [];
    private readonly List<PendingRead> _pendingReads = [];
    private readonly List<ReadState> _readStates = [];
    private readonly List<Message> _messages = [];
    private readonly ClusterConfig _baseConfig;

    private Snapshot? _snapshot;
    private Snapshot? _unpersistedSnapshot;
    private LogIndex _stable;
    private LogIndex _applied;
    private HardState _persistedHardState;
    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _randomizedElectionTimeout;
    private int _ticksSinceLeaderContact;
    private int _transferElapsed;
    private ulong _heartbeatRound;
    private bool _leaseDropped;

    public RawNode(RaftOptions options, PersistentState state)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(state);
        options.Validate();
        _options = options;
        _random = new Random(options.RandomSeed);
        _snapshot = state.Snapshot;
        _baseConfig = ClusterConfig.FromVoters(options.InitialMembers);
        var expected = FirstIndex;
        foreach (var entry in state.Entries)
        {
            if (entry.Index != expected)
            {
                throw new ArgumentException($"Stored entries are not contiguous: expected index {expected}, found {entry.Index}.");
            }

            _log.Add(entry);
            expected = expected.Next();
        }

        Term = state.HardState.Term;
        Vote = state.HardState.Vote;
        Commit = LogIndex.Max(SnapshotIndex, LogIndex.Min(state.HardState.Commit, LastIndex));
        _persistedHardState = state.HardState;
        _stable = LastIndex;
        _applied = SnapshotIndex;
        RecomputeConfig();
        Role = RaftRole.Follower;
        Leader = NodeId.None;

        // IMPORTANT: a node that just started treats itself as having just heard from a leader, so it
        // refuses votes for one minimum election timeout. Without this a restarted voter could vote
        // at once and let a new leader overlap the old leader's lease.
        _ticksSinceLeaderContact = 0;
        ResetRandomizedElectionTimeout();
    }

    public NodeId Id => _options.Id;

    public RaftOptions Options => _options;

    public Term Term { get; private set; }

    public NodeId Vote { get; private set; }

    public LogIndex Commit { get; private set; }

    public LogIndex Applied => _applied;

    public RaftRole Role { get; private set; }

    public NodeId Leader { get; private set; }

    public ClusterConfig Config { get; private set; } = ClusterConfig.Empty;

    public LogIndex ConfigIndex { get; private set; }

    /// <summary>The transfer target while a leadership transfer is in progress.</summary>
    public NodeId TransferTarget { get; private set; }

    /// <summary>Ticks counted since this node started (the core's monotonic clock).</summary>
    public long TickCount { get; private set; }

    public LogIndex SnapshotIndex => _snapshot?.Index ?? LogIndex.Zero;

    public Term SnapshotTerm => _snapshot?.Term ?? Term.Zero;

    public Snapshot? LatestSnapshot => _snapshot;

    public LogIndex FirstIndex => SnapshotIndex.Next();

    public LogIndex LastIndex => _log.Count == 0 ? SnapshotIndex : _log[^1].Index;

    public Term LastTerm => _log.Count == 0 ? SnapshotTerm : _log[^1].Term;

    public IReadOnlyList<Entry> LogEntries => _log;

    public HardState HardState => new(Term, Vote, Commit);

    /// <summary>The heartbeat round most recently acknowledged by a quorum (0 when none in this term).</summary>
    public ulong LeaseRound { get; private set; }

    /// <summary>
    /// While leader: the tick count before which this node holds the lease, counted from the tick at
    /// which the quorum-acknowledged heartbeat round was sent. Null when there is no lease.
    /// </summary>
    public long? LeaseValidUntilTick =>
        Role == RaftRole.Leader && !_leaseDropped && LeaseRound > 0 && _roundSentAtTick.TryGetValue(LeaseRound, out var sent)
            ? sent + _options.LeaseTicks
            : null;

    public bool HoldsLease => LeaseValidUntilTick is { } until && TickCount < until;

    /// <summary>
    /// While leader: the fewest ticks any voter of its election (itself included) had counted since it last heard
    /// from a leader (or started) when it gave its vote; 0 when not leader. A voter of an older release reports 0.
    /// <see cref="RaftOptions.PriorLeasesEndedTicksBefore"/> turns it into how long before this election every
    /// earlier leader's lease had ended.
    /// </summary>
    public int ElectionQuietTicks { get; private set; }

    public bool Promotable => Config.IsVoter(Id);

    public LogIndex MatchOf(NodeId id) => _progress.TryGetValue(id, out var p) ? p.Match : LogIndex.Zero;

    public Term TermAt(LogIndex index)
    {
        if (index == SnapshotIndex)
        {
            return SnapshotTerm;
        }

        if (index < SnapshotIndex || index > LastIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"Index {index} is outside [{SnapshotIndex}, {LastIndex}].");
        }

        return _log[(int)(index.Value - FirstIndex.Value)].Term;
    }

    public Entry EntryAt(LogIndex index) => _log[(int)(index.Value - FirstIndex.Value)];

    // ---------------------------------------------------------------- time

    public void Tick()
    {
        TickCount++;
        if (Role == RaftRole.Leader)
        {
            // A leader is its own recent contact: it ignores vote requests while it leads.
            _ticksSinceLeaderContact = 0;
        }
        else if (_ticksSinceLeaderContact < int.MaxValue)
        {
            _ticksSinceLeaderContact++;
        }

        if (Role == RaftRole.Leader)
        {
            TickLeader();
        }
        else
        {
            _electionElapsed++;
            if (Promotable && _electionElapsed >= _randomizedElectionTimeout)
            {
                _electionElapsed = 0;
                if (CampaignsFirst)
                {
                    // Only the first timeout after leader contact is the short fixed one: two nodes campaigning first
                    // (an old primary that has not applied the new epoch yet, and the new one) that split a vote
                    // must not retry in lockstep for ever.
                    _campaignedSinceContact = true;
                    ResetRandomizedElectionTimeout();
                }

                Campaign(preVote: true, transfer: false);
            }
        }
    }

    /// <summary>Starts a pre-vote now, as if the election timeout had elapsed (tests and operators' "hup").</summary>
    public void Campaign()
    {
        if (Role != RaftRole.Leader)
        {
            _electionElapsed = 0;
            Campaign(preVote: true, transfer: false);
        }
    }

    private void TickLeader()
    {
        _heartbeatElapsed++;
        _electionElapsed++;
        if (TransferTarget != NodeId.None && ++_transferElapsed >= _options.ElectionTicks)
        {
            // An abandoned transfer ends this leadership: the lease was dropped for the rest of the term (a late
            // TimeoutNow may still arrive), and a leader that can never hold a lease again would leave every
            // lease-based read refused. Stepping down lets an election give the cluster a leader with a lease.
            BecomeFollower(Term, NodeId.None);
            return;
        }

        if (_electionElapsed >= _options.ElectionTicks)
        {
            _electionElapsed = 0;

            // CheckQuorum: a leader that has not heard from a quorum within an election timeout steps down.
            var active = Config.Voters.Count(v => v == Id || (_progress.TryGetValue(v, out var p) && p.RecentActive));
            if (active < Quorum)
            {
                BecomeFollower(Term, NodeId.None);
                return;
            }

            foreach (var p in _progress.Values)
            {
                p.RecentActive = false;
            }
        }

        if (_heartbeatElapsed >= _options.HeartbeatTicks)
        {
            _heartbeatElapsed = 0;
            BroadcastHeartbeat();
        }
    }

    // ---------------------------------------------------------------- requests

    /// <summary>Appends a command on the leader. Returns the index it was given, or the refusal.</summary>
    public (LogIndex Index, RaftRefusal Refusal) Propose(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (Role != RaftRole.Leader)
        {
            return (LogIndex.Zero, RaftRefusal.NotLeader);
        }

        if (TransferTarget != NodeId.None)
        {
            return (LogIndex.Zero, RaftRefusal.TransferInProgress);
        }

        var index = AppendLocal(EntryType.Command, data);
        BroadcastAppend();
        return (index, RaftRefusal.None);
    }

    /// <summary>Hands leadership to <paramref name="target"/>; the leader drops its lease for the rest of its term.</summary>
    public RaftRefusal TransferLeadership(NodeId target)
    {
        if (Role != RaftRole.Leader)
        {
            return RaftRefusal.NotLeader;
        }

        if (target == Id || !Config.IsVoter(target))
        {
            return RaftRefusal.InvalidChange;
        }

        TransferTarget = target;
        _transferElapsed = 0;

        // IMPORTANT: the target will campaign without waiting for an election timeout and voters will
        // ignore their stickiness, so this leader's lease must end now, and for the rest of its term
        // (a delayed TimeoutNow may still arrive after the transfer was abandoned).
        _leaseDropped = true;
        if (MatchOf(target) == LastIndex)
        {
            Send(new Message(MessageType.TimeoutNow, Id, target, Term));
        }
        else
        {
            SendAppend(target);
        }

        return RaftRefusal.None;
    }

    /// <summary>Forgets the log up to <paramref name="index"/> (which must be applied), keeping a snapshot.</summary>
    public Snapshot Compact(LogIndex index, byte[] stateMachineData)
    {
        ArgumentNullException.ThrowIfNull(stateMachineData);
        if (index > _applied || index <= SnapshotIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"Can only compact within ({SnapshotIndex}, {_applied}].");
        }

        var snapshot = new Snapshot(index, TermAt(index), ConfigAt(index), stateMachineData);
        _log.RemoveRange(0, (int)(index.Value - FirstIndex.Value + 1));
        _snapshot = snapshot;
        return snapshot;
    }

    // ---------------------------------------------------------------- ready / advance

    public bool HasReady =>
        _messages.Count > 0 || _readStates.Count > 0 || _unpersistedSnapshot is not null ||
        _stable < LastIndex || !HardState.Equals(_persistedHardState) || NextCommitted().Count > 0;

    public Ready GetReady()
    {
        var hardState = HardState;
        var entries = _stable < LastIndex ? _log.GetRange((int)(_stable.Value + 1 - FirstIndex.Value), (int)(LastIndex.Value - _stable.Value)) : [];
        var ready = new Ready(
            hardState.Equals(_persistedHardState) ? null : hardState,
            entries,
            _unpersistedSnapshot,
            _messages.ToArray(),
            NextCommitted(),
            _readStates.ToArray());
        _messages.Clear();
        _readStates.Clear();
        return ready;
    }

    private List<Entry> NextCommitted()
    {
        var upTo = LogIndex.Min(Commit, _stable);
        var from = LogIndex.Max(_applied.Next(), FirstIndex);
        if (from > upTo)
        {
            return [];
        }

        return _log.GetRange((int)(from.Value - FirstIndex.Value), (int)(upTo.Value - from.Value + 1));
    }

    public void Advance(Ready ready)
    {
        ArgumentNullException.ThrowIfNull(ready);
        if (ready.HardState is { } hs)
        {
            _persistedHardState = hs;
        }

        if (ready.Snapshot is not null)
        {
            _applied = LogIndex.Max(_applied, ready.Snapshot.Index);
            _unpersistedSnapshot = null;
        }

        if (ready.Entries.Count > 0)
        {
            _stable = LogIndex.Max(_stable, ready.Entries[^1].Index);
        }

        if (ready.CommittedEntries.Count > 0)
        {
            _applied = LogIndex.Max(_applied, ready.CommittedEntries[^1].Index);
        }

        if (Role == RaftRole.Leader)
        {
            if (_progress.TryGetValue(Id, out var self))
            {
                self.Match = _stable;
                self.Next = _stable.Next();
            }

            if (MaybeCommit())
            {
                BroadcastAppend();
            }
        }
    }

    // ---------------------------------------------------------------- messages

    public void Step(Message m)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (m.To != Id || m.From == Id)
        {
            return;
        }

        var isVoteRequest = m.Type is MessageType.PreVote or MessageType.Vote;
        if (isVoteRequest && m.Context != Message.TransferContext && m.Term >= Term &&
            (Role == RaftRole.Leader || _ticksSinceLeaderContact < _options.ElectionTicks))
        {
            // Leader stickiness (and the basis of the lease): a node that heard from a leader within the
            // minimum election timeout ignores vote requests, whatever their term.
            return;
        }

        if (m.Term > Term)
        {
            if (m.Type == MessageType.PreVote || (m.Type == MessageType.PreVoteResponse && !m.Reject))
            {
                // Pre-votes never change the term.
            }
            else if (m.Type is MessageType.Append or MessageType.Heartbeat or MessageType.InstallSnapshot)
            {
                BecomeFollower(m.Term, m.From);
            }
            else
            {
                BecomeFollower(m.Term, NodeId.None);
            }
        }
        else if (m.Term < Term)
        {
            if (m.Type is MessageType.Append or MessageType.Heartbeat)
            {
                // Tell a stale leader about the newer term, so that it steps down (CheckQuorum makes
                // nodes ignore its votes, so it would otherwise never learn).
                Send(new Message(MessageType.AppendResponse, Id, m.From, Term));
            }
            else if (m.Type == MessageType.PreVote)
            {
                Send(new Message(MessageType.PreVoteResponse, Id, m.From, Term, Reject: true));
            }

            return;
        }

        if (isVoteRequest)
        {
            HandleVoteRequest(m);
            return;
        }

        switch (Role)
        {
            case RaftRole.Leader:
                StepLeader(m);
                break;
            case RaftRole.Candidate or RaftRole.PreCandidate:
                StepCandidate(m);
                break;
            default:
                StepFollower(m);
                break;
        }
    }

    private void StepFollower(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append:
                HeardFromLeader(m.From);
                HandleAppend(m);
                break;
            case MessageType.Heartbeat:
                HeardFromLeader(m.From);
                CommitTo(LogIndex.Min(m.Commit, LastIndex));
                Send(new Message(MessageType.HeartbeatResponse, Id, m.From, Term, Context: m.Context));
                break;
            case MessageType.InstallSnapshot:
                HeardFromLeader(m.From);
                HandleSnapshot(m);
                break;
            case MessageType.ReadIndexResponse:
                _readStates.Add(new ReadState(m.Index, m.Context));
                break;
            case MessageType.TimeoutNow:
                if (Promotable)
                {
                    Campaign(preVote: false, transfer: true);
                }

                break;
            default:
                break;
        }
    }

    private void HeardFromLeader(NodeId leader)
    {
        _electionElapsed = 0;
        _ticksSinceLeaderContact = 0;
        Leader = leader;
        if (_campaignedSinceContact)
        {
            _campaignedSinceContact = false;
            ResetRandomizedElectionTimeout();
        }
    }

    private void StepLeader(Message m)
    {
        if (!_progress.TryGetValue(m.From, out var pr))
        {
            return;
        }

        switch (m.Type)
        {
            case MessageType.AppendResponse:
                pr.RecentActive = true;
                if (m.Reject)
                {
                    if (m.Index <= pr.Match)
                    {
                        return;
                    }

                    pr.Next = LogIndex.Max(pr.Match.Next(), LogIndex.Min(m.RejectHint.Next(), m.Index));
                    pr.State = ProgressState.Probe;
                    pr.Paused = false;
                    SendAppend(m.From);
                    return;
                }

                pr.Paused = false;
                pr.Next = LogIndex.Max(pr.Next, m.Index.Next());
                if (m.Index > pr.Match)
                {
                    pr.Match = m.Index;
                    pr.State = ProgressState.Replicate;
                    if (MaybeCommit())
                    {
                        BroadcastAppend();
                    }
                    else if (pr.Next <= LastIndex)
                    {
                        SendAppend(m.From);
                    }
                }
                else if (pr.Next <= LastIndex)
                {
                    SendAppend(m.From);
                }

                if (m.From == TransferTarget && pr.Match == LastIndex)
                {
                    Send(new Message(MessageType.TimeoutNow, Id, m.From, Term));
                }

                break;
            case MessageType.ReadIndex:
                StartRead(m.From, m.Context);
                break;
            case MessageType.HeartbeatResponse:
                pr.RecentActive = true;
                pr.Paused = false;
                if (m.Context > pr.AckedRound)
                {
                    pr.AckedRound = m.Context;
                    UpdateLeaseRound();
                }

                if (pr.Match < LastIndex)
                {
                    SendAppend(m.From);
                }

                break;
            default:
                break;
        }
    }

    // ---------------------------------------------------------------- roles

    private int Quorum => (Config.Voters.Count() / 2) + 1;

    private void Reset(Term term)
    {
        if (term != Term)
        {
            Term = term;
            Vote = NodeId.None;
        }

        Leader = NodeId.None;
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        ResetRandomizedElectionTimeout();
        TransferTarget = NodeId.None;
        _votes.Clear();
        _voteQuiet.Clear();
        ElectionQuietTicks = 0;
        _progress.Clear();
        _roundSentAtTick.Clear();
        _pendingReads.Clear();
        _heartbeatRound = 0;
        LeaseRound = 0;
        _leaseDropped = false;
    }

    private void BecomeFollower(Term term, NodeId leader)
    {
        Reset(term);
        Role = RaftRole.Follower;
        if (!leader.IsNone)
        {
            HeardFromLeader(leader);
        }
    }

    private void BecomeLeader()
    {
        // IMPORTANT: taken over the voters whose votes elected this node, itself included (its count runs on from
        // its own last leader contact): a quorum that gave an earlier leader its lease shares one of them.
        var quiet = _ticksSinceLeaderContact;
        foreach (var voter in Config.Voters.Where(v => v != Id && _votes.TryGetValue(v, out var g) && g))
        {
            quiet = Math.Min(quiet, _voteQuiet.GetValueOrDefault(voter));
        }

        Reset(Term);
        ElectionQuietTicks = quiet;
        Role = RaftRole.Leader;
        Leader = Id;
        foreach (var member in Config.Members)
        {
            _progress[member.Id] = new Progress { Next = LastIndex.Next(), RecentActive = true };
        }

        if (_progress.TryGetValue(Id, out var self))
        {
            self.Match = _stable;
        }

        // A new leader appends a no-op of its term: earlier entries commit only through it (Figure 8).
        AppendLocal(EntryType.NoOp, []);
        BroadcastAppend();
    }

    private LogIndex AppendLocal(EntryType type, byte[] data)
    {
        var entry = new Entry(Term, LastIndex.Next(), type, data);
        _log.Add(entry);
        if (type == EntryType.Config)
        {
            // A configuration takes effect as soon as it is in the log, committed or not.
            RecomputeConfig();
        }

        return entry.Index;
    }

    private void Send(Message m) => _messages.Add(m);

    private enum ProgressState
    {
        Unknown = 0,
        Probe = 1,
        Replicate = 2,
    }

    private sealed class Progress
    {
        public LogIndex Match { get; set; }

        public LogIndex Next { get; set; }

        public ProgressState State { get; set; } = ProgressState.Probe;

        public bool Paused { get; set; }

        public bool RecentActive { get; set; }

        public ulong AckedRound { get; set; }
    }

    private readonly record struct PendingRead(ulong Context, LogIndex Index, ulong Round, NodeId Requester);
}
