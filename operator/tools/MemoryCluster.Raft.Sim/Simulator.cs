using System.Globalization;
using System.Text;

namespace MemoryCluster.Raft.Sim;

/// <summary>One simulation run's settings. Times are simulated microseconds.</summary>
internal sealed record SimOptions(int Seed)
{
    public int Nodes { get; init; } = 3;

    /// <summary>Start with 3 voters, grow to 5 (nodes 4 and 5 join), then shrink to 3 (1 and 2 leave).</summary>
    public bool Membership { get; init; }

    public long TickMicros { get; init; } = 10_000;

    public int ElectionTicks { get; init; } = 10;

    public int HeartbeatTicks { get; init; } = 1;

    public double DriftBound { get; init; } = 1.1;

    /// <summary>How far clock rates really spread (equal to <see cref="DriftBound"/> unless a test breaks the assumption).</summary>
    public double? ActualDrift { get; init; }

    public long FaultPhaseMicros { get; init; } = 3_000_000;

    public long HealedPhaseMicros { get; init; } = 2_000_000;

    /// <summary>After the network heals, a leader must be recognised by a quorum within this time.</summary>
    public long LivenessBoundMicros { get; init; } = 1_500_000;

    public bool Trace { get; init; }

    public static SimOptions ForSeed(int seed) => new(seed)
    {
        Nodes = seed % 2 == 0 ? 3 : 5,
        Membership = seed % 4 == 2,
    };
}

/// <summary>What one run found.</summary>
internal sealed record SimResult(
    int Seed,
    IReadOnlyList<string> Violations,
    int Elections,
    int CommittedEntries,
    long Events,
    long MessagesDelivered,
    int Crashes,
    long HealToLeaderMicros,
    long LeaseEvents,
    long ReadsAnswered,
    long PriorLeaseFloors,
    string Trace);

/// <summary>
/// A deterministic simulation of a Raft cluster: a seeded network that drops, duplicates, reorders and
/// delays; symmetric, asymmetric and bridge partitions; crashes that lose whatever was not yet fsynced;
/// clocks that drift within the configured bound. Invariants are checked after every event.
/// </summary>
internal sealed class Simulator
{
    private const int MaxEvents = 2_000_000;

    private readonly SimOptions _options;
    private readonly Random _random;
    private readonly PriorityQueue<SimEvent, (long, long)> _queue = new();
    private readonly Dictionary<NodeId, SimNode> _nodes = [];
    private readonly HashSet<(NodeId, NodeId)> _blocked = [];
    private readonly Dictionary<Term, NodeId> _leaderOfTerm = [];
    private readonly Dictionary<LogIndex, (Term Term, string Hash)> _committed = [];
    private readonly Dictionary<LogIndex, (Term Term, string Hash)> _appliedAt = [];
    private readonly List<string> _violations = [];
    private readonly Dictionary<ulong, LogIndex> _readsIssued = [];
    private readonly StringBuilder _trace = new();
    private readonly List<Member> _initialMembers;
    private long _now;
    private long _seq;
    private long _events;
    private long _delivered;
    private int _elections;
    private int _crashes;
    private long _leaseEvents;
    private long _priorLeaseFloors;
    private long _readsAnswered;
    private double _loss;
    private double _duplicate;
    private bool _healed;
    private long _healedAt;
    private long _leaderAfterHeal = -1;
    private int _membershipPhase;
    private ulong _proposalCounter;

    public Simulator(SimOptions options)
    {
        _options = options;
        _random = new Random(options.Seed);
        var total = options.Membership ? 5 : options.Nodes;
        var initial = options.Membership ? 3 : options.Nodes;
        _initialMembers = Enumerable.Range(1, initial)
            .Select(i => new Member(new NodeId((ulong)i), $"n{i}", true)).ToList();
        for (var i = 1; i <= total; i++)
        {
            var id = new NodeId((ulong)i);

            _nodes[id] = new SimNode(id, DrawRate(), i <= initial ? _initialMembers : []);
        }
    }

    /// <summary>
    /// Clock rates within [1, DriftBound], so the ratio between any two clocks stays within the bound. They
    /// are drawn again at every fault, so that a leader elected with a fast clock can later run slow.
    /// </summary>
    private double DrawRate() => 1.0 + (_random.NextDouble() * ((_options.ActualDrift ?? _options.DriftBound) - 1.0));

    public SimResult Run()
    {
        _loss = _random.NextDouble() * 0.2;
        _duplicate = _random.NextDouble() * 0.05;
        foreach (var node in _nodes.Values)
        {
            Start(node);
        }

        for (var t = 100_000L; t < _options.FaultPhaseMicros; t += 50_000 + _random.Next(400_000))
        {
            Schedule(t, new SimEvent(SimEventKind.Fault));
        }

        // Bursts of proposals with quiet gaps: quiet periods leave logs equal, which is when stale
        // candidates can win elections and leases are at risk.
        for (var t = 50_000L; t < _options.FaultPhaseMicros + _options.HealedPhaseMicros; t += 20_000 + _random.Next(60_000))
        {
            if ((t / 400_000) % 2 == 0 || _random.Next(8) == 0)
            {
                Schedule(t, new SimEvent(SimEventKind.Propose));
            }
        }

        Schedule(_options.FaultPhaseMicros, new SimEvent(SimEventKind.Heal));
        var end = _options.FaultPhaseMicros + _options.HealedPhaseMicros;
        while (_queue.TryDequeue(out var ev, out var at) && at.Item1 <= end && _events < MaxEvents && _violations.Count < 5)
        {
            _now = at.Item1;
            _events++;
            Handle(ev);
            CheckInvariants(ev);
        }

        if (_leaderAfterHeal < 0 && _violations.Count == 0)
        {
            Violation($"no leader recognised by a quorum within {_options.LivenessBoundMicros / 1000} ms after healing");
        }

        CheckLogMatching();
        return new SimResult(_options.Seed, _violations, _elections, _committed.Count, _events, _delivered, _crashes,
            _leaderAfterHeal < 0 ? -1 : _leaderAfterHeal - _healedAt, _leaseEvents, _readsAnswered, _priorLeaseFloors, _trace.ToString());
    }

    private void Start(SimNode node)
    {
        var state = node.Storage.Load();
        node.Raft = new RawNode(
            new RaftOptions
            {
                Id = node.Id,
                ElectionTicks = _options.ElectionTicks,
                HeartbeatTicks = _options.HeartbeatTicks,
                ClockDriftBound = _options.DriftBound,
                RandomSeed = unchecked((_options.Seed * 7919) + ((int)node.Id.Value * 104_729) + node.Incarnation),
                InitialMembers = node.InitialMembers,
                MaxEntriesPerAppend = 8,
            },
            state);
        node.StateMachine = new RegisterStateMachine();
        if (state.Snapshot is not null)
        {
            node.StateMachine.Restore(state.Snapshot);
        }

        node.Up = true;
        node.PersistScheduled = false;
        node.Incarnation++;
        node.WasLeaderInTerm = Term.Zero;
        Schedule(_now + NextTickDelay(node), new SimEvent(SimEventKind.Tick, node.Id, Incarnation: node.Incarnation));
    }

    private long NextTickDelay(SimNode node) => (long)(_options.TickMicros / node.Rate);

    private void Schedule(long at, SimEvent ev) => _queue.Enqueue(ev, (at, _seq++));

    private void Handle(SimEvent ev)
    {
        switch (ev.Kind)
        {
            case SimEventKind.Tick:
                {
                    var node = _nodes[ev.Node];
                    if (!node.Up || node.Incarnation != ev.Incarnation)
                    {
                        return;
                    }

                    node.Raft!.Tick();
                    AfterStep(node);
                    Schedule(_now + NextTickDelay(node), ev);
                    break;
                }

            case SimEventKind.Deliver:
                {
                    var node = _nodes[ev.Message!.To];
                    if (!node.Up)
                    {
                        return;
                    }

                    _delivered++;
                    TraceLine($"deliver {ev.Message}");
                    node.Raft!.Step(ev.Message);
                    AfterStep(node);
                    break;
                }

            case SimEventKind.Persist:
                {
                    var node = _nodes[ev.Node];
                    if (!node.Up || node.Incarnation != ev.Incarnation)
                    {
                        return;
                    }

                    node.PersistScheduled = false;
                    ProcessReady(node);
                    break;
                }

            case SimEventKind.Restart:
                {
                    var node = _nodes[ev.Node];
                    if (!node.Up)
                    {
                        TraceLine($"restart {node.Id}");
                        Start(node);
                    }

                    break;
                }

            case SimEventKind.Fault:
                InjectFault();
                break;
            case SimEventKind.Heal:
                _blocked.Clear();
                _loss = 0;
                _healed = true;
                _healedAt = _now;
                TraceLine("heal");
                foreach (var node in _nodes.Values.Where(n => !n.Up))
                {
                    Start(node);
                }

                break;
            case SimEventKind.Propose:
                Propose();
                break;
            default:
                break;
        }
    }

    private void AfterStep(SimNode node)
    {
        if (node.Raft!.HasReady && !node.PersistScheduled)
        {
            // The fsync takes time; a crash before it completes loses the Ready, messages included.
            node.PersistScheduled = true;
            Schedule(_now + 100 + _random.Next(1_500), new SimEvent(SimEventKind.Persist, node.Id, Incarnation: node.Incarnation));
        }
    }

    private void ProcessReady(SimNode node)
    {
        var raft = node.Raft!;
        ReadyProcessor.Drain(raft, node.Storage, node.StateMachine!, Send, (entry, _) => OnApplied(node, entry), read => OnRead(node, read));
        var applied = raft.Applied;
        if (applied.Value - raft.SnapshotIndex.Value > 30 && _random.Next(4) == 0)
        {
            var snapshot = raft.Compact(applied, node.StateMachine!.TakeSnapshot());
            node.Storage.Compact(snapshot);
        }
    }

    private void Send(Message m)
    {
        if (_blocked.Contains((m.From, m.To)) || _random.NextDouble() < _loss)
        {
            return;
        }

        var copies = _random.NextDouble() < _duplicate ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            var delay = 200 + _random.Next(_random.Next(50) == 0 ? 80_000 : 8_000);
            Schedule(_now + delay, new SimEvent(SimEventKind.Deliver, Message: m));
        }
    }

    private void OnApplied(SimNode node, Entry entry)
    {
        var hash = Hash(entry);
        if (_appliedAt.TryGetValue(entry.Index, out var seen))
        {
            if (seen.Term != entry.Term || seen.Hash != hash)
            {
                Violation($"state machine safety: node {node.Id} applied {entry} but another node applied term {seen.Term} at that index");
            }
        }
        else
        {
            _appliedAt[entry.Index] = (entry.Term, hash);
        }
    }

    private void OnRead(SimNode node, ReadState read)
    {
        // Linearizable reads: the read index covers everything committed before the read was issued.
        if (_readsIssued.Remove(read.RequestContext, out var committedAtIssue) && read.Index < committedAtIssue)
        {
            Violation($"stale read on node {node.Id}: read index {read.Index} but {committedAtIssue} was committed when the read was issued");
        }

        _readsAnswered++;
    }

    private LogIndex MaxCommitted() => _committed.Count == 0 ? LogIndex.Zero : _committed.Keys.Max();

    private static string Hash(Entry e) => e.Type + ":" + Convert.ToHexString(e.Data);

    private void InjectFault()
    {
        var ids = _nodes.Keys.ToList();
        foreach (var node in _nodes.Values)
        {
            node.Rate = DrawRate();
        }

        var kind = _random.Next(6);
        if (kind < 4)
        {
            // A new network fault replaces the old one; crashes (4, 5) come on top of it.
            _blocked.Clear();
        }

        switch (kind)
        {
            case 0:
                TraceLine("fault: none");
                break;
            case 1:
                {
                    // Symmetric partition into two random sides.
                    var side = ids.ToDictionary(id => id, _ => _random.Next(2));
                    foreach (var a in ids)
                    {
                        foreach (var b in ids.Where(b => side[a] != side[b]))
                        {
                            _blocked.Add((a, b));
                        }
                    }

                    TraceLine("fault: partition " + string.Join(",", ids.Select(id => $"{id}:{side[id]}")));
                    break;
                }

            case 2:
                {
                    // Asymmetric: some directed links fail.
                    foreach (var a in ids)
                    {
                        foreach (var b in ids.Where(b => b != a && _random.Next(4) == 0))
                        {
                            _blocked.Add((a, b));
                        }
                    }

                    TraceLine("fault: asymmetric " + string.Join(",", _blocked.Select(l => $"{l.Item1}>{l.Item2}")));
                    break;
                }

            case 3:
                {
                    // Bridge: two sides that cannot talk, one node that talks to both.
                    var bridge = ids[_random.Next(ids.Count)];
                    var rest = ids.Where(id => id != bridge).ToList();
                    var left = rest.Take(rest.Count / 2).ToHashSet();
                    foreach (var a in rest)
                    {
                        foreach (var b in rest.Where(b => left.Contains(a) != left.Contains(b)))
                        {
                            _blocked.Add((a, b));
                        }
                    }

                    TraceLine($"fault: bridge via {bridge}");
                    break;
                }

            case 4:
                {
                    var victim = _nodes[ids[_random.Next(ids.Count)]];
                    if (victim.Up)
                    {
                        Crash(victim);
                    }

                    break;
                }

            default:
                {
                    // Crash whoever leads.
                    var leader = _nodes.Values.FirstOrDefault(n => n.Up && n.Raft!.Role == RaftRole.Leader);
                    if (leader is not null)
                    {
                        Crash(leader);
                    }

                    break;
                }
        }
    }

    private void Crash(SimNode node)
    {
        TraceLine($"crash {node.Id}");
        _crashes++;
        node.Up = false;
        node.Raft = null;
        // Some restarts are quick (a process restart within the lease), some long (a machine reboot).
        var downtime = _random.Next(3) == 0 ? 2_000 + _random.Next(60_000) : 50_000 + _random.Next(800_000);
        Schedule(_now + downtime, new SimEvent(SimEventKind.Restart, node.Id));
    }

    private void Propose()
    {
        var leaders = _nodes.Values.Where(n => n.Up && n.Raft!.Role == RaftRole.Leader).ToList();
        if (leaders.Count == 0)
        {
            return;
        }

        var leader = leaders[_random.Next(leaders.Count)];
        if (_options.Membership && _random.Next(3) == 0 && TryMembershipStep(leader))
        {
            AfterStep(leader);
            return;
        }

        var state = leader.StateMachine!.Current;
        _proposalCounter++;
        var command = _random.Next(3) == 0
            ? RegisterCommand.SetFlag(state.Version, _proposalCounter % 2 == 0)
            : RegisterCommand.Set(state.Version, 1 + (_proposalCounter % (ulong)_nodes.Count));
        leader.Raft!.Propose(command.Encode());
        if (_random.Next(4) == 0)
        {
            // A read on a random node (followers ask their leader); half of them lease-based (a leader holding its
            // lease answers at once: the sim's ticks are its real clock, so the lease in ticks is the real one).
            var reader = _nodes.Values.Where(n => n.Up).ElementAt(_random.Next(_nodes.Values.Count(n => n.Up)));
            if (reader.Raft!.ReadIndex(_proposalCounter, leaseConfirmed: _random.Next(2) == 0) == RaftRefusal.None)
            {
                _readsIssued[_proposalCounter] = MaxCommitted();
                AfterStep(reader);
            }
        }

        if (_random.Next(40) == 0)
        {
            var others = leader.Raft.Config.Voters.Where(v => v != leader.Id).ToList();
            if (others.Count > 0)
            {
                leader.Raft.TransferLeadership(others[_random.Next(others.Count)]);
            }
        }

        AfterStep(leader);
    }

    private bool TryMembershipStep(SimNode leader)
    {
        var raft = leader.Raft!;
        var grown = new ulong[] { 1, 2, 3, 4, 5 }.Select(v => new NodeId(v)).ToHashSet();
        var shrunk = new ulong[] { 3, 4, 5 }.Select(v => new NodeId(v)).ToHashSet();
        var target = _membershipPhase == 0 ? grown : shrunk;
        var config = raft.Config;
        if (target.SetEquals(config.Voters) && config.Learners.Any() is false && raft.ConfigIndex <= raft.Commit)
        {
            _membershipPhase = Math.Min(_membershipPhase + 1, 1);
            return false;
        }

        MembershipChange? change = null;
        var missing = target.FirstOrDefault(id => !config.Contains(id));
        var learner = config.Learners.FirstOrDefault(target.Contains);
        var extra = config.Members.FirstOrDefault(m => !target.Contains(m.Id));
        if (!missing.IsNone && !config.RetiredIds.Contains(missing))
        {
            change = new MembershipChange(MembershipChangeType.AddLearner, missing, $"n{missing}");
        }
        else if (!learner.IsNone)
        {
            change = new MembershipChange(MembershipChangeType.PromoteLearner, learner);
        }
        else if (extra is not null)
        {
            change = new MembershipChange(MembershipChangeType.RemoveNode, extra.Id);
        }

        if (change is null)
        {
            return false;
        }

        var (_, refusal) = raft.ProposeMembershipChange(change);
        TraceLine($"membership {change.Type} {change.Node} on {leader.Id}: {refusal}");
        return refusal == RaftRefusal.None;
    }

    // ---------------------------------------------------------------- invariants

    private void CheckInvariants(SimEvent ev)
    {
        var leasesHeld = new List<NodeId>();
        var elected = new List<SimNode>();
        foreach (var node in _nodes.Values)
        {
            if (!node.Up)
            {
                continue;
            }

            var raft = node.Raft!;
            if (raft.Role == RaftRole.Leader)
            {
                if (_leaderOfTerm.TryGetValue(raft.Term, out var other) && other != node.Id)
                {
                    Violation($"two leaders in term {raft.Term}: {other} and {node.Id}");
                }

                _leaderOfTerm[raft.Term] = node.Id;
                if (node.WasLeaderInTerm != raft.Term)
                {
                    node.WasLeaderInTerm = raft.Term;
                    _elections++;
                    var others = _nodes.Values.Where(n => n.Up && n != node && n.Raft!.Role == RaftRole.Leader)
                        .Select(n => $"{n.Id}(term {n.Raft!.Term}, lease {(n.Raft.HoldsLease ? "held" : "none")}, ticks {n.Raft.TickCount}/{n.Raft.LeaseValidUntilTick})");
                    TraceLine($"leader {node.Id} term {raft.Term}; other leaders: {string.Join(" ", others)}");
                    CheckLeaderCompleteness(node);
                    elected.Add(node);
                }

                if (raft.HoldsLease)
                {
                    leasesHeld.Add(node.Id);
                    _leaseEvents++;
                    node.LeaseHeldAt = _now;
                }
            }

            RecordCommitted(node);
        }

        foreach (var node in elected)
        {
            CheckPriorLeasesEnded(node);
        }

        if (leasesHeld.Count > 1)
        {
            Violation($"leases overlap: {string.Join(",", leasesHeld)} all believe they hold a valid lease at t={_now}us");
        }

        if (_healed && _leaderAfterHeal < 0)
        {
            if (_now - _healedAt > _options.LivenessBoundMicros)
            {
                return;
            }

            if (HasRecognisedLeader())
            {
                _leaderAfterHeal = _now;
            }
        }

        if (_events % 500 == 0 || ev.Kind == SimEventKind.Heal)
        {
            CheckLogMatching();
        }
    }

    /// <summary>
    /// A new leader's lease floor (RaftOptions.PriorLeasesEndedTicksBefore, from its voters' silence) holds: every
    /// other node last held a lease (the only time it could grant anything under it) before that many of the new
    /// leader's ticks, turned into real time at its current clock rate, before now. Leases are held only at events,
    /// and checked after every one, so the last event a node held one at is its last chance to use it.
    /// </summary>
    private void CheckPriorLeasesEnded(SimNode leader)
    {
        var raft = leader.Raft!;
        var before = (long)(raft.Options.PriorLeasesEndedTicksBefore(raft.ElectionQuietTicks) * _options.TickMicros / leader.Rate);
        if (before == 0)
        {
            return;
        }

        _priorLeaseFloors++;
        foreach (var other in _nodes.Values.Where(n => n != leader && n.LeaseHeldAt > _now - before))
        {
            Violation($"{leader.Id}, elected at t={_now}us with its voters quiet for {raft.ElectionQuietTicks} ticks, dates every earlier lease to before t={_now - before}us, but {other.Id} held one at t={other.LeaseHeldAt}us");
        }
    }

    private bool HasRecognisedLeader()
    {
        foreach (var node in _nodes.Values.Where(n => n.Up && n.Raft!.Role == RaftRole.Leader))
        {
            var raft = node.Raft!;
            var voters = raft.Config.Voters.ToList();
            var recognising = voters.Count(v => _nodes[v].Up && _nodes[v].Raft!.Term == raft.Term && _nodes[v].Raft!.Leader == node.Id);
            if (recognising > voters.Count / 2)
            {
                return true;
            }
        }

        return false;
    }

    private void RecordCommitted(SimNode node)
    {
        var raft = node.Raft!;
        var from = LogIndex.Max(raft.FirstIndex, node.CommitRecorded.Next());
        for (var i = from; i <= raft.Commit && i <= raft.LastIndex; i = i.Next())
        {
            var e = raft.EntryAt(i);
            var hash = Hash(e);
            if (_committed.TryGetValue(i, out var seen))
            {
                if (seen.Term != e.Term || seen.Hash != hash)
                {
                    Violation($"committed entry changed: node {node.Id} has {e} committed, but {i}@{seen.Term} was committed before");
                }
            }
            else
            {
                _committed[i] = (e.Term, hash);
            }
        }

        node.CommitRecorded = LogIndex.Max(node.CommitRecorded, raft.Commit);
    }

    private void CheckLeaderCompleteness(SimNode node)
    {
        var raft = node.Raft!;
        foreach (var (index, seen) in _committed)
        {
            if (index <= raft.SnapshotIndex)
            {
                continue;
            }

            if (index > raft.LastIndex || raft.TermAt(index) != seen.Term || Hash(raft.EntryAt(index)) != seen.Hash)
            {
                Violation($"leader completeness: new leader {node.Id} (term {raft.Term}) lacks committed entry {index}@{seen.Term}");
                return;
            }
        }
    }

    private void CheckLogMatching()
    {
        var up = _nodes.Values.Where(n => n.Up).ToList();
        for (var a = 0; a < up.Count; a++)
        {
            for (var b = a + 1; b < up.Count; b++)
            {
                var x = up[a].Raft!;
                var y = up[b].Raft!;
                var lo = LogIndex.Max(x.FirstIndex, y.FirstIndex);
                var hi = LogIndex.Min(x.LastIndex, y.LastIndex);
                var matched = false;
                for (var i = hi; i >= lo && i.Value > 0; i = i.Previous())
                {
                    var ex = x.EntryAt(i);
                    var ey = y.EntryAt(i);
                    if (!matched && ex.Term == ey.Term)
                    {
                        matched = true;
                    }

                    if (matched && (ex.Term != ey.Term || Hash(ex) != Hash(ey)))
                    {
                        Violation($"log matching: nodes {up[a].Id} and {up[b].Id} agree at a later index but differ at {i}");
                        return;
                    }
                }
            }
        }
    }

    private void Violation(string text)
    {
        var line = $"t={_now}us: {text}";
        _violations.Add(line);
        TraceLine("VIOLATION " + line);
    }

    private void TraceLine(string line)
    {
        if (_options.Trace)
        {
            _trace.Append(CultureInfo.InvariantCulture, $"{_now,10} {line}\n");
        }
    }

    private enum SimEventKind
    {
        Unknown = 0,
        Tick = 1,
        Deliver = 2,
        Persist = 3,
        Restart = 4,
        Fault = 5,
        Heal = 6,
        Propose = 7,
    }

    private sealed record SimEvent(SimEventKind Kind, NodeId Node = default, Message? Message = null, int Incarnation = 0);

    private sealed class SimNode(NodeId id, double rate, IReadOnlyList<Member> initialMembers)
    {
        public NodeId Id { get; } = id;

        public double Rate { get; set; } = rate;

        public IReadOnlyList<Member> InitialMembers { get; } = initialMembers;

        public MemoryRaftStorage Storage { get; } = new();

        public RawNode? Raft { get; set; }

        public RegisterStateMachine? StateMachine { get; set; }

        public bool Up { get; set; }

        public bool PersistScheduled { get; set; }

        public int Incarnation { get; set; }

        public Term WasLeaderInTerm { get; set; }

        public LogIndex CommitRecorded { get; set; }

        /// <summary>The last time (µs) this node held a leader lease; never reset, a restart included.</summary>
        public long LeaseHeldAt { get; set; } = long.MinValue;
    }
}
