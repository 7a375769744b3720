using System.Globalization;
using System.Text;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Raft;

namespace MemoryCluster.Failover.Sim;

/// <summary>
/// A deterministic simulation of a MemoryCluster: N <see cref="InstanceNode"/>s and N Raft <see cref="RawNode"/>s, driven
/// as the real host drives them, over a seeded network that loses and delays messages and partitions (also
/// asymmetrically, also PostgreSQL's traffic alone), with simulated PostgreSQL servers (<see cref="SimPostgres"/>),
/// per-host clocks that drift within the bound, crashes, pauses and slow replay. Writers commit on every member that
/// accepts writes. Invariants are checked after every event: at most one member accepts writes; a member that accepts
/// writes has its watchdog armed; in quorum mode every acknowledged commit is on every later primary; a member's
/// reported position never goes back on the same data; after the faults heal, a primary takes writes and every
/// replica streams from it within a bound.
/// </summary>
internal sealed partial class FailoverSimulator
{
    private const int MaxEvents = 4_000_000;
    private const long NodeTickMs = 50;
    private const long RaftTickMs = 50;
    private const long StreamEvery = 5_000;
    private const long WriteEvery = 20_000;
    private const long HttpTimeoutMs = 800;
    private const long ProposeTimeoutMs = 5_000;

    private readonly SimOptions _options;
    private readonly Random _random;
    private readonly PriorityQueue<Event, (long, long)> _queue = new();
    private readonly List<SimMember> _members = [];
    private readonly NodeConfig[] _configs;
    private readonly List<string> _violations = [];
    private readonly StringBuilder _trace = new();
    private readonly HashSet<(MemberId, MemberId)> _blocked = [];
    private readonly HashSet<(MemberId, MemberId)> _pgBlocked = [];
    private readonly HashSet<(MemberId, MemberId)> _httpBlocked = [];
    private readonly List<Commit> _acked = [];
    private readonly Dictionary<MemberId, bool> _wasWritable = [];
    private long _now;
    private long _seq;
    private long _events;
    private double _loss;
    private bool _healed;
    private long _healedAt;
    private long _healthySince = -1;
    private long _healthyAt = -1;
    private int _origins;
    private long _nextCommit;
    private int _faults;
    private int _failovers;
    private int _switchovers;
    private Epoch _lastEpochSeen;

    public FailoverSimulator(SimOptions options)
    {
        _options = options;
        _random = new Random(options.Seed);
        var members = Enumerable.Range(1, options.Members).Select(i => new NodeMember(new MemberId((ulong)i), $"mc-{i}")).ToList();
        _configs = new NodeConfig[options.Members];
        for (var i = 0; i < options.Members; i++)
        {
            _configs[i] = new NodeConfig(members[i].Id, members, options.Mode, LeaseTimings.Default, 16 * 1024 * 1024, 30_000, options.Watchdog);
            _members.Add(new SimMember(members[i].Id, members[i].Name, DrawRate()));
        }
    }

    private double DrawRate() => 1.0 + (_random.NextDouble() * (_options.ActualDrift - 1.0));

    private SimMember M(MemberId id) => _members[(int)id.Value - 1];

    public SimResult Run()
    {
        foreach (var m in _members)
        {
            StartManager(m);
        }

        Schedule(StreamEvery, new Event(EventKind.Stream));
        Schedule(WriteEvery, new Event(EventKind.Write));
        if (_options.Scenario is { } scenario)
        {
            ScheduleScenario(scenario);
        }
        else
        {
            // Faults start once the cluster has had time to bootstrap.
            for (var t = 12_000_000L; t < _options.FaultPhase; t += 1_000_000 + _random.Next(5_000_000))
            {
                Schedule(t, new Event(EventKind.Fault));
            }
        }

        Schedule(_options.FaultPhase, new Event(EventKind.Heal));
        var end = _options.FaultPhase + _options.HealedPhase;
        while (_queue.TryDequeue(out var ev, out var at) && at.Item1 <= end && _events < MaxEvents && _violations.Count < 3)
        {
            _now = at.Item1;
            _events++;
            Handle(ev);
            CheckInvariants();
        }

        if (_violations.Count == 0 && _healthyAt < 0)
        {
            Violation($"liveness: {_options.LivenessBound / 1_000_000} s after the faults healed there was still no primary taking writes with every replica streaming from it: {Describe()}");
        }

        var lost = _options.Mode == ReplicationMode.Async ? CountLost() : 0;
        return new SimResult(_options.Seed, _options, _violations, _failovers, _switchovers, _acked.Count, lost, _events, _faults,
            _healthyAt < 0 ? -1 : _healthyAt - _healedAt, _trace.ToString());
    }

    // ---------------------------------------------------------------- events

    private enum EventKind
    {
        Unknown = 0,
        NodeTick,
        RaftTick,
        Persist,
        Deliver,
        ActionStep,
        Stream,
        Write,
        Watchdog,
        Timeout,
        Fault,
        Heal,
        Restart,
        Resume,
        Thaw,
        Later,
    }

    /// <summary>One event; <see cref="Run"/> is a closure for the kinds that carry one. Manager events are tied to an incarnation.</summary>
    private sealed record Event(EventKind Kind, MemberId Member = default, int Incarnation = 0, Action? Run = null, bool ManagerWork = false);

    private void Schedule(long at, Event ev) => _queue.Enqueue(ev, (Math.Max(at, _now), _seq++));

    /// <summary>Runs <paramref name="work"/> on <paramref name="m"/>'s manager at <paramref name="at"/>, deferred while it is paused, dropped if it died meanwhile.</summary>
    private void OnManager(SimMember m, long at, Action work) =>
        Schedule(at, new Event(EventKind.Later, m.Id, m.Incarnation, work, ManagerWork: true));

    private void Handle(Event ev)
    {
        if (ev.ManagerWork || ev.Kind is EventKind.NodeTick or EventKind.RaftTick or EventKind.Persist)
        {
            var m = M(ev.Member);
            if (!m.ManagerUp || m.Incarnation != ev.Incarnation)
            {
                return;
            }

            if (m.Paused(_now))
            {
                Schedule(m.PausedUntil, ev);
                return;
            }
        }

        switch (ev.Kind)
        {
            case EventKind.NodeTick:
                {
                    var m = M(ev.Member);
                    Step(m, now => new Tick(now));
                    Schedule(m.TrueAt(m.Node!.NextTickAt(m.LocalMs(_now)), _now), ev);
                    break;
                }

            case EventKind.RaftTick:
                {
                    var m = M(ev.Member);
                    m.Raft!.Tick();
                    AfterRaft(m);
                    Schedule(m.TrueAt(m.LocalMs(_now) + RaftTickMs, _now), ev);
                    break;
                }

            case EventKind.Persist:
                {
                    var m = M(ev.Member);
                    m.PersistScheduled = false;
                    ProcessReady(m);
                    break;
                }

            case EventKind.Watchdog:
                WatchdogCheck(M(ev.Member), ev);
                break;
            case EventKind.Stream:
                Stream();
                Schedule(_now + StreamEvery, ev);
                break;
            case EventKind.Write:
                Write();
                Schedule(_now + WriteEvery, ev);
                break;
            case EventKind.Fault:
                _faults++;
                InjectFault();
                break;
            case EventKind.Heal:
                Heal();
                break;
            case EventKind.Restart:
                {
                    var m = M(ev.Member);
                    if (!m.ManagerUp)
                    {
                        StartManager(m);
                    }

                    break;
                }

            case EventKind.Deliver:
            case EventKind.Later:
            case EventKind.Timeout:
            case EventKind.ActionStep:
            case EventKind.Resume:
            case EventKind.Thaw:
                ev.Run!();
                break;
            default:
                break;
        }
    }

    private void TraceLine(string line)
    {
        if (_options.Trace)
        {
            _trace.Append(CultureInfo.InvariantCulture, $"{_now / 1000.0,10:0.0} {line}\n");
        }
    }

    private void Violation(string text)
    {
        var line = string.Create(CultureInfo.InvariantCulture, $"t={_now / 1000.0:0.0}ms: {text}");
        _violations.Add(line);
        TraceLine("VIOLATION " + line);
    }
}
