using System.Runtime.CompilerServices;

namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>
/// An in-memory triple graph: subject -predicate-> object, with confidence and temporal validity.
/// </summary>
/// <remarks>
/// <para>Storage: node and predicate strings are interned to dense ids. Edges have dense ids;
/// per edge we keep a predicate id, a confidence and a validity index (12 bytes). Adjacency is
/// CSR in both directions (neighbour id + edge id per entry, 16 bytes per edge) plus a delta of
/// recent edges chained per node; the delta is merged into the CSR when it exceeds a quarter of
/// the CSR (or 4,096 edges), or when <see cref="Compact"/> is called. Merging is O(V + E).</para>
/// <para>Threading: reads (enumeration and every algorithm) may run concurrently with each other;
/// writes need exclusive access (the service wraps the graph in a reader/writer lock).</para>
/// </remarks>
public sealed class KnowledgeGraph
{
    private const int MinMergeThreshold = 4096;

    private readonly StringInterner _nodes = new();
    private readonly StringInterner _predicates = new();
    private readonly ValidityTable _validity = new();
    private readonly IncrementalComponents _identity = new();
    private PredicateSet? _identityPredicates;
    private bool _identityDirty;

    private int[] _edgePredicate = new int[16];
    private float[] _edgeConfidence = new float[16];
    private int[] _edgeValidity = new int[16];
    private int _edgeCount;

    // Edges whose validity is not "always": while there are none, queries skip the validity lookup.
    private int _timedEdges;

    private int _csrNodes;
    private int[] _outOffsets = [0];
    private int[] _outTargets = [];
    private int[] _outEdges = [];
    private int[] _inOffsets = [0];
    private int[] _inSources = [];
    private int[] _inEdges = [];

    // Delta: entries chained per node, newest first; heads and links hold index + 1 (0 = end).
    private int[] _deltaOutHead = [];
    private int[] _deltaInHead = [];
    private int[] _deltaOutNext = new int[16];
    private int[] _deltaInNext = new int[16];
    private int[] _deltaSource = new int[16];
    private int[] _deltaTarget = new int[16];
    private int[] _deltaEdge = new int[16];
    private int _deltaCount;

    /// <summary>Number of interned nodes.</summary>
    public int NodeCount => _nodes.Count;

    /// <summary>Number of edges ever added (superseded ones included).</summary>
    public int EdgeCount => _edgeCount;

    /// <summary>Number of interned predicates.</summary>
    public int PredicateCount => _predicates.Count;

    /// <summary>Edges waiting in the delta (not yet merged into the CSR).</summary>
    public int DeltaEdgeCount => _deltaCount;

    /// <summary>Bytes held by ids, adjacency and edge attributes; interned strings are not counted.</summary>
    public long MemoryBytes =>
        (4L * (_edgePredicate.Length + _edgeValidity.Length + _outOffsets.Length + _outTargets.Length + _outEdges.Length
            + _inOffsets.Length + _inSources.Length + _inEdges.Length + _deltaOutHead.Length + _deltaInHead.Length
            + _deltaOutNext.Length + _deltaInNext.Length + _deltaSource.Length + _deltaTarget.Length + _deltaEdge.Length))
        + (4L * _edgeConfidence.Length) + _identity.MemoryBytes;

    /// <summary>Predicates whose edges link identities (e.g. same_as); they feed <see cref="IdentityComponentOf"/>.</summary>
    public void SetIdentityPredicates(PredicateSet predicates)
    {
        _identityPredicates = predicates;
        _identityDirty = true;
    }

    /// <summary>Interns a node name, returning its id.</summary>
    public int InternNode(string name) => _nodes.Intern(name);

    /// <summary>Interns a predicate name, returning its id.</summary>
    public int InternPredicate(string name) => _predicates.Intern(name);

    /// <summary>Looks a node up by name.</summary>
    public bool TryGetNode(string name, out int id) => _nodes.TryGet(name, out id);

    /// <summary>Looks a predicate up by name.</summary>
    public bool TryGetPredicate(string name, out int id) => _predicates.TryGet(name, out id);

    /// <summary>The name of a node.</summary>
    public string NodeName(int node) => _nodes.NameOf(node);

    /// <summary>The name of a predicate.</summary>
    public string PredicateName(int predicate) => _predicates.NameOf(predicate);

    /// <summary>Adds a triple by names; returns the edge id.</summary>
    public int AddEdge(string subject, string predicate, string obj, float confidence = 1f, long validFrom = long.MinValue, long validTo = long.MaxValue)
        => AddEdge(InternNode(subject), InternPredicate(predicate), InternNode(obj), confidence, validFrom, validTo);

    /// <summary>Adds a triple by interned ids; returns the edge id.</summary>
    public int AddEdge(int subject, int predicate, int obj, float confidence = 1f, long validFrom = long.MinValue, long validTo = long.MaxValue)
    {
        if ((uint)subject >= (uint)NodeCount || (uint)obj >= (uint)NodeCount)
        {
            throw new ArgumentOutOfRangeException(nameof(subject), "Subject and object must be interned node ids.");
        }

        if ((uint)predicate >= (uint)PredicateCount)
        {
            throw new ArgumentOutOfRangeException(nameof(predicate), predicate, "Predicate must be an interned predicate id.");
        }

        if (!(confidence is >= 0f and <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "Confidence must be in [0, 1].");
        }

        if (validFrom >= validTo)
        {
            throw new ArgumentException("valid_from must be before valid_to.", nameof(validFrom));
        }

        var edge = _edgeCount;
        if (edge == _edgePredicate.Length)
        {
            var size = edge * 2;
            Array.Resize(ref _edgePredicate, size);
            Array.Resize(ref _edgeConfidence, size);
            Array.Resize(ref _edgeValidity, size);
        }

        _edgePredicate[edge] = predicate;
        _edgeConfidence[edge] = confidence;
        _edgeValidity[edge] = _validity.IndexOf(validFrom, validTo);
        _edgeCount++;
        if (_edgeValidity[edge] != 0)
        {
            _timedEdges++;
        }

        AppendDelta(subject, obj, edge);
        if (_identityPredicates?.Contains(predicate) == true && !_identityDirty && validTo == long.MaxValue)
        {
            _identity.Union(subject, obj);
        }

        if (_deltaCount > Math.Max(MinMergeThreshold, _outTargets.Length / 4))
        {
            Compact();
        }

        return edge;
    }

    /// <summary>Closes an edge's validity at <paramref name="at"/> (it stays visible to queries as of earlier times).</summary>
    public void Supersede(int edge, long at)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)edge, (uint)_edgeCount, nameof(edge));
        var current = _edgeValidity[edge];
        var from = _validity.From(current);
        if (at <= from || at >= _validity.To(current))
        {
            throw new ArgumentOutOfRangeException(nameof(at), at, "Supersession time must fall inside the edge's validity.");
        }

        _edgeValidity[edge] = _validity.IndexOf(from, at);
        if (current == 0)
        {
            _timedEdges++;
        }

        if (_identityPredicates?.Contains(_edgePredicate[edge]) == true)
        {
            _identityDirty = true;
        }
    }

    /// <summary>Removes an edge from every view, current and as-of (its id stays allocated until the graph is rebuilt).</summary>
    public void Delete(int edge)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)edge, (uint)_edgeCount, nameof(edge));
        var current = _edgeValidity[edge];
        // An empty interval: no time falls in it, and it is closed, so no query sees the edge.
        _edgeValidity[edge] = _validity.IndexOf(0, 0);
        if (current == 0)
        {
            _timedEdges++;
        }

        if (_identityPredicates?.Contains(_edgePredicate[edge]) == true)
        {
            _identityDirty = true;
        }
    }

    /// <summary>Replaces an edge: closes <paramref name="oldEdge"/> at <paramref name="at"/> and adds the new triple valid from then.</summary>
    public int Replace(int oldEdge, int subject, int predicate, int obj, long at, float confidence = 1f)
    {
        Supersede(oldEdge, at);
        return AddEdge(subject, predicate, obj, confidence, at);
    }

    /// <summary>The predicate of an edge.</summary>
    public int PredicateOf(int edge) => _edgePredicate[edge];

    /// <summary>The confidence of an edge.</summary>
    public float ConfidenceOf(int edge) => _edgeConfidence[edge];

    /// <summary>The validity interval of an edge.</summary>
    public (long From, long To) ValidityOf(int edge)
    {
        var v = _edgeValidity[edge];
        return (_validity.From(v), _validity.To(v));
    }

    /// <summary>True when the filter lets the query see this edge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsVisible(int edge, in EdgeFilter filter)
        => (filter.Predicates is null || filter.Predicates.Contains(_edgePredicate[edge]))
            && (_timedEdges == 0 || _validity.IsVisible(_edgeValidity[edge], filter.AsOf));

    /// <summary>Edges of a node, allocation-free: <c>foreach (var n in graph.Edges(node, Direction.Out, filter))</c>.</summary>
    public EdgeEnumerable Edges(int node, Direction direction, EdgeFilter filter = default)
    {
        if (direction is not (Direction.Out or Direction.In or Direction.Both))
        {
            throw new ArgumentOutOfRangeException(nameof(direction), direction, "Direction must be Out, In or Both.");
        }

        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)node, (uint)NodeCount, nameof(node));
        return new EdgeEnumerable(this, node, direction, filter);
    }

    /// <summary>Neighbours of a node, at most <paramref name="limit"/> (0 = no limit).</summary>
    public IReadOnlyList<Neighbour> Neighbours(int node, Direction direction, EdgeFilter filter = default, int limit = 0)
    {
        var result = new List<Neighbour>();
        foreach (var n in Edges(node, direction, filter))
        {
            result.Add(n);
            if (result.Count == limit)
            {
                break;
            }
        }

        return result;
    }

    /// <summary>The identity component (union–find root) of a node over identity predicates; rebuilt after a supersession.</summary>
    public int IdentityComponentOf(int node)
    {
        if (_identityDirty)
        {
            RebuildIdentity();
        }

        return _identity.Find(node);
    }

    /// <summary>Adds the members of a node's identity component to <paramref name="into"/> (time proportional to its size).</summary>
    public void AddIdentityMembers(int node, List<int> into)
    {
        if (_identityDirty)
        {
            RebuildIdentity();
        }

        _identity.AddMembers(node, into);
    }

    /// <summary>Number of identity components over all nodes.</summary>
    public int IdentityComponentCount
    {
        get
        {
            if (_identityDirty)
            {
                RebuildIdentity();
            }

            _identity.EnsureSize(NodeCount);
            return _identity.ComponentCount;
        }
    }

    /// <summary>Merges the delta into the CSR and trims edge arrays to size.</summary>
    public void Compact()
    {
        var n = NodeCount;
        (_outOffsets, _outTargets, _outEdges) = Merge(_outOffsets, _outTargets, _outEdges, _deltaOutHead, _deltaOutNext, _deltaTarget, n);
        (_inOffsets, _inSources, _inEdges) = Merge(_inOffsets, _inSources, _inEdges, _deltaInHead, _deltaInNext, _deltaSource, n);
        _csrNodes = n;
        _deltaCount = 0;
        _deltaOutHead = [];
        _deltaInHead = [];
        _deltaOutNext = [];
        _deltaInNext = [];
        _deltaSource = [];
        _deltaTarget = [];
        _deltaEdge = [];
        Array.Resize(ref _edgePredicate, Math.Max(16, _edgeCount));
        Array.Resize(ref _edgeConfidence, Math.Max(16, _edgeCount));
        Array.Resize(ref _edgeValidity, Math.Max(16, _edgeCount));
    }

    /// <summary>True when some edge has a bounded validity, so queries must check time.</summary>
    internal bool HasTimedEdges => _timedEdges > 0;

    internal int CsrNodes => _csrNodes;

    internal int[] OutOffsets => _outOffsets;

    internal int[] OutTargets => _outTargets;

    internal int[] OutEdgeIds => _outEdges;

    internal int[] InOffsets => _inOffsets;

    internal int[] InSources => _inSources;

    internal int[] InEdgeIds => _inEdges;

    internal int DeltaOutHead(int node) => node < _deltaOutHead.Length ? _deltaOutHead[node] : 0;

    internal int DeltaInHead(int node) => node < _deltaInHead.Length ? _deltaInHead[node] : 0;

    internal int[] DeltaOutNext => _deltaOutNext;

    internal int[] DeltaInNext => _deltaInNext;

    internal int[] DeltaSource => _deltaSource;

    internal int[] DeltaTarget => _deltaTarget;

    internal int[] DeltaEdge => _deltaEdge;

    private (int[] Offsets, int[] Neighbours, int[] Edges) Merge(int[] offsets, int[] neighbours, int[] edges, int[] deltaHead, int[] deltaNext, int[] deltaOther, int n)
    {
        var counts = new int[n + 1];
        for (var node = 0; node < n; node++)
        {
            var degree = node < _csrNodes ? offsets[node + 1] - offsets[node] : 0;
            for (var d = node < deltaHead.Length ? deltaHead[node] : 0; d != 0; d = deltaNext[d - 1])
            {
                degree++;
            }

            counts[node + 1] = counts[node] + degree;
        }

        var mergedNeighbours = new int[counts[n]];
        var mergedEdges = new int[counts[n]];
        for (var node = 0; node < n; node++)
        {
            var at = counts[node];
            if (node < _csrNodes)
            {
                var length = offsets[node + 1] - offsets[node];
                Array.Copy(neighbours, offsets[node], mergedNeighbours, at, length);
                Array.Copy(edges, offsets[node], mergedEdges, at, length);
                at += length;
            }

            // The delta chain is newest first; write it backwards so edges keep insertion order.
            var end = counts[node + 1];
            for (var d = node < deltaHead.Length ? deltaHead[node] : 0; d != 0; d = deltaNext[d - 1])
            {
                end--;
                mergedNeighbours[end] = deltaOther[d - 1];
                mergedEdges[end] = _deltaEdge[d - 1];
            }
        }

        return (counts, mergedNeighbours, mergedEdges);
    }

    private void AppendDelta(int subject, int obj, int edge)
    {
        var d = _deltaCount;
        if (d == _deltaEdge.Length)
        {
            var size = Math.Max(16, d * 2);
            Array.Resize(ref _deltaOutNext, size);
            Array.Resize(ref _deltaInNext, size);
            Array.Resize(ref _deltaSource, size);
            Array.Resize(ref _deltaTarget, size);
            Array.Resize(ref _deltaEdge, size);
        }

        if (_deltaOutHead.Length < NodeCount)
        {
            var size = Math.Max(NodeCount, _deltaOutHead.Length * 2);
            Array.Resize(ref _deltaOutHead, size);
            Array.Resize(ref _deltaInHead, size);
        }

        _deltaSource[d] = subject;
        _deltaTarget[d] = obj;
        _deltaEdge[d] = edge;
        _deltaOutNext[d] = _deltaOutHead[subject];
        _deltaOutHead[subject] = d + 1;
        _deltaInNext[d] = _deltaInHead[obj];
        _deltaInHead[obj] = d + 1;
        _deltaCount = d + 1;
    }

    private void RebuildIdentity()
    {
        _identity.Clear();
        _identity.EnsureSize(NodeCount);
        if (_identityPredicates is { } predicates)
        {
            var filter = new EdgeFilter(predicates);
            for (var node = 0; node < NodeCount; node++)
            {
                foreach (var n in Edges(node, Direction.Out, filter))
                {
                    _identity.Union(node, n.Node);
                }
            }
        }

        _identityDirty = false;
    }
}
