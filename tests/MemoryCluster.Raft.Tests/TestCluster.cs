using System.Globalization;
using System.Text;
using MemoryCluster.Raft.Sim;

namespace MemoryCluster.Raft.Tests;

/// <summary>
/// Raft nodes over an in-memory network that can partition, cut single links and crash nodes. Messages
/// are only delivered by <see cref="Deliver"/>, so a test controls every interleaving.
/// </summary>
internal sealed class TestCluster
{
    private readonly Dictionary<NodeId, Node> _nodes = [];
    private readonly HashSet<(NodeId, NodeId)> _blocked = [];
    private readonly List<Message> _inFlight = [];
    private readonly StringBuilder _out = new();

    public int ElectionTicks { get; set; } = 10;

    public int HeartbeatTicks { get; set; } = 1;

    public int MaxEntriesPerAppend { get; set; } = 64;

    /// <summary>Varies every node's election randomness (0: each node's seed is its id).</summary>
    public int Seed { get; set; }

    public RawNode this[ulong id] => _nodes[new NodeId(id)].Raft!;

    public RegisterStateMachine StateOf(ulong id) => _nodes[new NodeId(id)].StateMachine;

    public IEnumerable<RawNode> Up => _nodes.Values.Where(n => n.Raft is not null).Select(n => n.Raft!);

    public void Create(IEnumerable<ulong> ids)
    {
        var members = ids.Select(i => new Member(new NodeId(i), $"n{i}", true)).ToList();
        foreach (var m in members)
        {
            _nodes[m.Id] = new Node(m.Id, members);
            Start(_nodes[m.Id]);
        }
    }

    public void Join(ulong id)
    {
        var node = new Node(new NodeId(id), []);
        _nodes[node.Id] = node;
        Start(node);
    }

    private void Start(Node node)
    {
        var state = node.Storage.Load();
        node.Raft = new RawNode(
            new RaftOptions
            {
                Id = node.Id,
                ElectionTicks = ElectionTicks,
                HeartbeatTicks = HeartbeatTicks,
                RandomSeed = (Seed * 1_000) + (int)node.Id.Value,
                InitialMembers = node.InitialMembers,
                MaxEntriesPerAppend = MaxEntriesPerAppend,
            },
            state);
        node.StateMachine = new RegisterStateMachine();
        if (state.Snapshot is not null)
        {
            node.StateMachine.Restore(state.Snapshot);
        }
    }

    public void Tick(int times, IEnumerable<ulong>? only = null)
    {
        var ids = only?.Select(i => new NodeId(i)).ToList() ?? _nodes.Keys.ToList();
        for (var t = 0; t < times; t++)
        {
            foreach (var id in ids.Where(id => _nodes[id].Raft is not null))
            {
                _nodes[id].Raft!.Tick();
                Process(_nodes[id]);
            }
        }
    }

    /// <summary>Delivers messages (printing each) until none are left or <paramref name="maxRounds"/> rounds pass.</summary>
    public void Deliver(int maxRounds = 100, bool print = true)
    {
        for (var round = 0; round < maxRounds && _inFlight.Count > 0; round++)
        {
            var batch = _inFlight.ToList();
            _inFlight.Clear();
            foreach (var m in batch)
            {
                var target = _nodes.GetValueOrDefault(m.To);
                if (_blocked.Contains((m.From, m.To)) || target?.Raft is null)
                {
                    if (print)
                    {
                        _out.Append("dropped ").Append(m).Append('\n');
                    }

                    continue;
                }

                if (print)
                {
                    _out.Append(m).Append('\n');
                }

                target.Raft.Step(m);
                Process(target);
            }
        }
    }

    /// <summary>Ticks everyone and delivers, round after round, without printing.</summary>
    public void Settle(int ticks)
    {
        for (var i = 0; i < ticks; i++)
        {
            Tick(1);
            Deliver(print: false);
        }
    }

    public void Process(Node node)
    {
        ReadyProcessor.Drain(
            node.Raft!,
            node.Storage,
            node.StateMachine,
            _inFlight.Add,
            read: rs => _out.Append(CultureInfo.InvariantCulture, $"{node.Id}: read ctx={rs.RequestContext} index={rs.Index}\n"));
    }

    public void Process(ulong id) => Process(_nodes[new NodeId(id)]);

    public void Partition(IEnumerable<ulong> left, IEnumerable<ulong> right)
    {
        foreach (var a in left)
        {
            foreach (var b in right)
            {
                Cut(a, b);
                Cut(b, a);
            }
        }
    }

    public void Cut(ulong from, ulong to) => _blocked.Add((new NodeId(from), new NodeId(to)));

    public void Heal() => _blocked.Clear();

    public void Crash(ulong id) => _nodes[new NodeId(id)].Raft = null;

    public void Restart(ulong id) => Start(_nodes[new NodeId(id)]);

    public RawNode? Leader() => Up.Where(n => n.Role == RaftRole.Leader).MaxBy(n => n.Term.Value);

    public string Status(IEnumerable<ulong>? ids = null)
    {
        var sb = new StringBuilder();
        foreach (var id in ids?.Select(i => new NodeId(i)) ?? _nodes.Keys.Order())
        {
            var raft = _nodes[id].Raft;
            if (raft is null)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{id}: down\n");
                continue;
            }

            sb.Append(CultureInfo.InvariantCulture,
                $"{id}: {raft.Role} term={raft.Term} leader={raft.Leader} commit={raft.Commit} last={raft.LastIndex} applied={raft.Applied} config={raft.Config}");
            if (raft.Role == RaftRole.Leader)
            {
                sb.Append(raft.HoldsLease ? " lease=held" : " lease=none");
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    public string Log(ulong id)
    {
        var raft = this[id];
        return string.Join(" ", raft.LogEntries.Select(e => e.Type == EntryType.Command
            ? $"{e.Index}@{e.Term}:{Describe(e.Data)}"
            : e.ToString())) + "\n";
    }

    private static string Describe(byte[] data)
    {
        try
        {
            return RegisterCommand.Decode(data).ToString();
        }
        catch (FormatException)
        {
            return Encoding.UTF8.GetString(data);
        }
    }

    public string TakeOutput()
    {
        var s = _out.ToString();
        _out.Clear();
        return s;
    }

    public void Write(string text) => _out.Append(text);

    internal sealed class Node(NodeId id, IReadOnlyList<Member> initialMembers)
    {
        public NodeId Id { get; } = id;

        public IReadOnlyList<Member> InitialMembers { get; } = initialMembers;

        public MemoryRaftStorage Storage { get; } = new();

        public RawNode? Raft { get; set; }

        public RegisterStateMachine StateMachine { get; set; } = new();
    }
}
