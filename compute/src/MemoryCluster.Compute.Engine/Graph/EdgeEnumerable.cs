namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>The edges of one node; enumerate with foreach (no allocation).</summary>
public readonly struct EdgeEnumerable
{
    private readonly KnowledgeGraph _graph;
    private readonly int _node;
    private readonly Direction _direction;
    private readonly EdgeFilter _filter;

    internal EdgeEnumerable(KnowledgeGraph graph, int node, Direction direction, EdgeFilter filter)
    {
        _graph = graph;
        _node = node;
        _direction = direction;
        _filter = filter;
    }

    /// <summary>Starts the enumeration.</summary>
    public EdgeEnumerator GetEnumerator() => new(_graph, _node, _direction, _filter);
}

/// <summary>Walks CSR out-edges, delta out-edges, CSR in-edges, delta in-edges, skipping filtered ones.</summary>
public struct EdgeEnumerator
{
    private const int OutCsr = 0;
    private const int OutDelta = 1;
    private const int InCsr = 2;
    private const int InDelta = 3;
    private const int Done = 4;

    private readonly KnowledgeGraph _graph;
    private readonly int _node;
    private readonly Direction _direction;
    private readonly EdgeFilter _filter;
    private int _phase;
    private int _position;
    private int _end;

    internal EdgeEnumerator(KnowledgeGraph graph, int node, Direction direction, EdgeFilter filter)
    {
        _graph = graph;
        _node = node;
        _direction = direction;
        _filter = filter;
        Current = default;
        _phase = direction == Direction.In ? InCsr : OutCsr;
        _position = -1;
        _end = -1;
    }

    /// <summary>The current neighbour.</summary>
    public Neighbour Current { get; private set; }

    /// <summary>Advances to the next visible edge.</summary>
    public bool MoveNext()
    {
        var g = _graph;
        while (true)
        {
            switch (_phase)
            {
                case OutCsr:
                    if (_position < 0)
                    {
                        (_position, _end) = _node < g.CsrNodes ? (g.OutOffsets[_node], g.OutOffsets[_node + 1]) : (0, 0);
                    }

                    if (_position < _end)
                    {
                        var edge = g.OutEdgeIds[_position];
                        var target = g.OutTargets[_position++];
                        if (g.IsVisible(edge, _filter))
                        {
                            Current = new Neighbour(target, edge, Direction.Out);
                            return true;
                        }

                        continue;
                    }

                    _phase = OutDelta;
                    _position = g.DeltaOutHead(_node);
                    continue;
                case OutDelta:
                    if (_position != 0)
                    {
                        var d = _position - 1;
                        _position = g.DeltaOutNext[d];
                        var edge = g.DeltaEdge[d];
                        if (g.IsVisible(edge, _filter))
                        {
                            Current = new Neighbour(g.DeltaTarget[d], edge, Direction.Out);
                            return true;
                        }

                        continue;
                    }

                    _phase = _direction == Direction.Both ? InCsr : Done;
                    _position = -1;
                    continue;
                case InCsr:
                    if (_position < 0)
                    {
                        (_position, _end) = _node < g.CsrNodes ? (g.InOffsets[_node], g.InOffsets[_node + 1]) : (0, 0);
                    }

                    if (_position < _end)
                    {
                        var edge = g.InEdgeIds[_position];
                        var source = g.InSources[_position++];
                        if (g.IsVisible(edge, _filter))
                        {
                            Current = new Neighbour(source, edge, Direction.In);
                            return true;
                        }

                        continue;
                    }

                    _phase = InDelta;
                    _position = g.DeltaInHead(_node);
                    continue;
                case InDelta:
                    if (_position != 0)
                    {
                        var d = _position - 1;
                        _position = g.DeltaInNext[d];
                        var edge = g.DeltaEdge[d];
                        if (g.IsVisible(edge, _filter))
                        {
                            Current = new Neighbour(g.DeltaSource[d], edge, Direction.In);
                            return true;
                        }

                        continue;
                    }

                    _phase = Done;
                    continue;
                default:
                    return false;
            }
        }
    }
}
