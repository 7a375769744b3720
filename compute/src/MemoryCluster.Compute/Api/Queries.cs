using MemoryCluster.Compute.Engine.Fusion;
using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;

namespace MemoryCluster.Compute.Api;

public sealed record NeighborDto(long TripleId, string Predicate, string Direction, string Entity, float Confidence);

public sealed record LiteralDto(long TripleId, string Predicate, string Value, float Confidence);

public sealed record NeighborsResponse(string Entity, IReadOnlyList<NeighborDto> Neighbors, IReadOnlyList<LiteralDto> Literals, long Seq);

public sealed record ReachedDto(string Entity, int Depth);

public sealed record TraverseResponse(string Start, IReadOnlyList<ReachedDto> Reached, bool Truncated, long Seq);

public sealed record PathEdgeDto(long TripleId, string Predicate);

public sealed record PathResponse(bool Found, double? Cost, IReadOnlyList<string> Nodes, IReadOnlyList<PathEdgeDto> Edges, long Seq);

public sealed record ComponentResponse(string Entity, string Component, int Size, IReadOnlyList<string> Members, bool Truncated, long Seq);

public sealed record VectorHitDto(string Entity, float Distance);

public sealed record VectorSearchResponse(string Model, IReadOnlyList<VectorHitDto> Hits, long Seq);

public sealed record FusionHitDto(string Entity, double Score, double Similarity, double Proximity, double Confidence, string Seed, int Hops, IReadOnlyList<PathEdgeDto> Path, string Explanation);

public sealed record FusionResponse(string Model, IReadOnlyList<FusionHitDto> Hits, long Seq);

/// <summary>A query the model cannot answer as asked: an unknown entity or model (404).</summary>
public sealed class NotFoundException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>The read queries over the model (each runs under its read lock).</summary>
public sealed class Queries(MemoryModel model, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _confidenceGate = new();
    private (long Seq, long At, float[] Values) _confidence = (-1, 0, []);

    /// <summary>How stale the PageRank confidence may be before a fusion query recomputes it.</summary>
    public TimeSpan ConfidenceMaxAge { get; init; } = TimeSpan.FromSeconds(30);

    public NeighborsResponse Neighbors(string entity, Direction direction, IReadOnlyList<string>? predicates, long? asOf, int limit) => model.Read(view =>
    {
        var node = Node(view, "id", entity);
        var filter = Filter(view, predicates, asOf);
        var neighbors = new List<NeighborDto>();
        foreach (var n in view.Graph.Edges(node, direction, filter))
        {
            neighbors.Add(new NeighborDto(view.TripleOfEdge(n.EdgeId), view.Graph.PredicateName(view.Graph.PredicateOf(n.EdgeId)), n.Direction == Direction.Out ? "out" : "in", view.Graph.NodeName(n.Node), view.Graph.ConfidenceOf(n.EdgeId)));
            if (neighbors.Count == limit)
            {
                break;
            }
        }

        var literals = view.Literals(node)
            .Where(r => (predicates is not { Count: > 0 } || predicates.Contains(r.Predicate)) && Visible(r, asOf))
            .OrderBy(r => r.Id)
            .Take(limit)
            .Select(r => new LiteralDto(r.Id, r.Predicate, r.Object, r.Confidence))
            .ToList();
        return new NeighborsResponse(entity, neighbors, literals, view.Position.Seq);
    });

    public TraverseResponse Traverse(string start, int hops, Direction direction, IReadOnlyList<string>? predicates, long? asOf, int maxNodes) => model.Read(view =>
    {
        var node = Node(view, "start", start);
        var reached = GraphAlgorithms.KHop(view.Graph, node, hops, direction, Filter(view, predicates, asOf), maxNodes);
        return new TraverseResponse(start, reached.Select(r => new ReachedDto(view.Graph.NodeName(r.Node), r.Depth)).ToList(), reached.Count >= maxNodes, view.Position.Seq);
    });

    public PathResponse Path(string from, string to, bool cheapest, Direction direction, IReadOnlyList<string>? predicates, long? asOf, int maxDepth) => model.Read(view =>
    {
        var a = Node(view, "from", from);
        var b = Node(view, "to", to);
        var filter = Filter(view, predicates, asOf);
        var path = cheapest ? GraphAlgorithms.CheapestPath(view.Graph, a, b, direction, filter) : GraphAlgorithms.ShortestPath(view.Graph, a, b, direction, filter, maxDepth);
        if (path is null)
        {
            return new PathResponse(false, null, [], [], view.Position.Seq);
        }

        var graph = view.Graph;
        var v = view;
        return new PathResponse(true, path.Cost, path.Nodes.Select(graph.NodeName).ToList(),
            path.Edges.Select(e => new PathEdgeDto(v.TripleOfEdge(e), graph.PredicateName(graph.PredicateOf(e)))).ToList(), view.Position.Seq);
    });

    public ComponentResponse Component(string entity, int limit) => model.Read(view =>
    {
        var node = Node(view, "id", entity);
        var graph = view.Graph;
        var members = new List<int>();
        graph.AddIdentityMembers(node, members);
        var size = members.Count;
        var names = members.Select(graph.NodeName).Order(StringComparer.Ordinal).Take(limit).ToList();
        // The component is named by its smallest member name, stable across processes and restarts.
        return new ComponentResponse(entity, names[0], size, names, size > names.Count, view.Position.Seq);
    });

    public VectorSearchResponse Search(string modelName, float[] vector, int k, int ef) => model.Read(view =>
    {
        var space = Space(view, modelName);
        var hits = space.Index.Search(vector, k, ef);
        var graph = view.Graph;
        return new VectorSearchResponse(modelName, hits.Select(h => new VectorHitDto(graph.NodeName(h.Id), h.Distance)).ToList(), view.Position.Seq);
    });

    public FusionResponse Fusion(string modelName, float[] vector, FusionOptions options) => model.Read(view =>
    {
        var space = Space(view, modelName);
        var query = new FusionQuery(space.Index, view.Graph, Confidence(view));
        var hits = query.Run(vector, options);
        var graph = view.Graph;
        var v = view;
        return new FusionResponse(modelName, hits.Select(h => new FusionHitDto(
            graph.NodeName(h.Node), h.Score, h.Similarity, h.Proximity, h.Confidence, graph.NodeName(h.Seed), h.Hops,
            h.Path.Select(s => new PathEdgeDto(v.TripleOfEdge(s.EdgeId), graph.PredicateName(s.Predicate))).ToList(),
            query.Explain(h, options))).ToList(), view.Position.Seq);
    });

    /// <summary>When set, the dimensions every model's vectors must have.</summary>
    public int? FixedDimensions { get; init; }

    /// <summary>The dimensions a model's vectors must have: the configured ones, else those of its vectors here.</summary>
    public int? DimensionsOf(string? modelName) =>
        FixedDimensions ?? (modelName is null ? null : model.Read(view => view.Spaces.TryGetValue(modelName, out var s) ? s.Dimensions : (int?)null));

    private static int Node(MemoryModel.MemoryView view, string field, string entity) =>
        view.Graph.TryGetNode(entity, out var node) ? node : throw new NotFoundException(field, $"no entity '{entity}'");

    private static VectorSpace Space(MemoryModel.MemoryView view, string name) =>
        view.Spaces.TryGetValue(name, out var space) ? space : throw new NotFoundException("model", $"no embeddings of model '{name}'");

    private static EdgeFilter Filter(MemoryModel.MemoryView view, IReadOnlyList<string>? predicates, long? asOf)
    {
        if (predicates is null || predicates.Count == 0)
        {
            return new EdgeFilter(null, asOf);
        }

        var ids = new List<int>();
        foreach (var p in predicates)
        {
            if (view.Graph.TryGetPredicate(p, out var id))
            {
                ids.Add(id);
            }
        }

        // A predicate nobody used matches no edge: an empty set, not "every predicate".
        return new EdgeFilter(PredicateSet.Of([.. ids]), asOf);
    }

    private static bool Visible(TripleRow row, long? asOf) =>
        asOf is { } t ? row.ValidFrom <= t && t < (row.ValidTo ?? long.MaxValue) : row.ValidTo is null;

    // PageRank confidence, recomputed when the graph moved on and the last one is older than ConfidenceMaxAge;
    // nodes added since get the mean.
    private float[] Confidence(MemoryModel.MemoryView view)
    {
        lock (_confidenceGate)
        {
            var now = _time.GetTimestamp();
            var (seq, at, values) = _confidence;
            if (seq < 0 || (seq != view.Position.Seq && _time.GetElapsedTime(at, now) > ConfidenceMaxAge))
            {
                values = GraphAlgorithms.ConfidenceFromPageRank(GraphAlgorithms.PageRank(view.Graph));
                _confidence = (view.Position.Seq, now, values);
            }

            if (values.Length < view.Graph.NodeCount)
            {
                var mean = values.Length == 0 ? 0.5f : values.Average();
                var grown = new float[view.Graph.NodeCount];
                values.CopyTo(grown, 0);
                Array.Fill(grown, mean, values.Length, grown.Length - values.Length);
                values = grown;
                _confidence = (_confidence.Seq, _confidence.At, values);
            }

            return values;
        }
    }
}
