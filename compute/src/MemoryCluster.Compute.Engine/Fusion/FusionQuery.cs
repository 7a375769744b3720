using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Fusion;

/// <summary>
/// Vector + graph + confidence in one pass: ANN top-k seeds, a multi-source BFS of a few hops
/// around them, then score = w_s·similarity + w_p·proximity + w_c·confidence for every node reached,
/// top-n returned with the path from its seed. Vector ids are graph node ids.
/// </summary>
/// <remarks>
/// Similarity: for cosine and inner product 1 - distance, clamped to [0, 1]; for L2 the ratio
/// nearest-seed distance / distance, so the best match scores 1 whatever the data's scale.
/// Nodes reached through the graph get their similarity from their own vector when they have one
/// (0 otherwise). Proximity is 1 / (1 + hops). Confidence comes from the caller (for instance
/// <see cref="GraphAlgorithms.ConfidenceFromPageRank"/>). Reads only; safe from many threads.
/// </remarks>
public sealed class FusionQuery(HnswIndex index, KnowledgeGraph graph, float[] confidence)
{
    private readonly HnswIndex _index = index ?? throw new ArgumentNullException(nameof(index));
    private readonly KnowledgeGraph _graph = graph ?? throw new ArgumentNullException(nameof(graph));
    private readonly float[] _confidence = confidence ?? throw new ArgumentNullException(nameof(confidence));

    [ThreadStatic]
    private static VectorHit[]? _hits;

    /// <summary>Runs a query; returns up to TopN hits, best first.</summary>
    public IReadOnlyList<FusionHit> Run(ReadOnlySpan<float> query, FusionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var hits = _hits is { } cached && cached.Length >= options.Candidates ? cached : _hits = new VectorHit[options.Candidates];
        var found = _index.Search(query, options.Candidates, hits, options.Ef);
        if (found == 0)
        {
            return [];
        }

        var l2 = _index.Options.Metric == DistanceMetric.L2;
        var nearest = Math.Max(hits[0].Distance, 1e-12f);
        var nodeCount = _graph.NodeCount;
        var scratch = GraphScratch.For(Math.Max(nodeCount, 1));
        var visited = scratch.Visited;
        var queue = scratch.Queue;
        var depth = scratch.Depth;
        var parent = scratch.Parent;

        // Edge followed to reach a node: edge + 1 when followed forwards, -(edge + 1) when backwards.
        var via = scratch.ParentEdge;
        var top = new PriorityQueue<Candidate, double>(options.TopN + 1);
        int head = 0, tail = 0;

        // Seeds outside the graph still score (proximity 1), they just do not expand.
        for (var i = 0; i < found; i++)
        {
            var id = hits[i].Id;
            if (id >= nodeCount)
            {
                Offer(top, options, new Candidate(id, Similarity(l2, nearest, hits[i].Distance), ConfidenceOf(id), 0));
            }
            else if (visited.TryVisit(id))
            {
                depth[id] = 0;
                parent[id] = -1;
                queue[tail++] = id;
            }
        }

        var seedCount = tail;
        while (head < tail)
        {
            var position = head++;
            var node = queue[position];
            var d = depth[node];
            double similarity;
            if (position < seedCount)
            {
                similarity = Similarity(l2, nearest, DistanceOfHit(hits, found, node));
            }
            else
            {
                similarity = _index.TryGetDistance(query, node, out var distance) ? Similarity(l2, nearest, distance) : 0;
            }

            Offer(top, options, new Candidate(node, similarity, ConfidenceOf(node), d));
            if (d == options.Hops)
            {
                continue;
            }

            foreach (var n in _graph.Edges(node, options.Direction, options.Filter))
            {
                if (tail < options.MaxExpandedNodes && visited.TryVisit(n.Node))
                {
                    depth[n.Node] = d + 1;
                    parent[n.Node] = node;
                    via[n.Node] = n.Direction == Direction.Out ? n.EdgeId + 1 : -(n.EdgeId + 1);
                    queue[tail++] = n.Node;
                }
            }
        }

        var result = new FusionHit[top.Count];
        for (var i = result.Length - 1; i >= 0; i--)
        {
            var c = top.Dequeue();
            var path = new List<PathStep>(c.Hops);
            var seed = c.Node;
            if (c.Node < nodeCount)
            {
                for (var v = c.Node; parent[v] != -1; v = parent[v])
                {
                    var edge = Math.Abs(via[v]) - 1;
                    path.Add(new PathStep(edge, _graph.PredicateOf(edge), via[v] > 0 ? Direction.Out : Direction.In, v));
                    seed = parent[v];
                }

                path.Reverse();
            }

            var score = Score(options, c.Similarity, c.Hops, c.Confidence);
            result[i] = new FusionHit(c.Node, score, c.Similarity, 1.0 / (1 + c.Hops), c.Confidence, seed, c.Hops, path);
        }

        return result;
    }

    /// <summary>A one-line account of a hit: the score's parts and the path from its seed.</summary>
    public string Explain(FusionHit hit, FusionOptions options)
    {
        ArgumentNullException.ThrowIfNull(hit);
        ArgumentNullException.ThrowIfNull(options);
        var text = new System.Text.StringBuilder();
        text.Append(System.Globalization.CultureInfo.InvariantCulture,
            $"{Name(hit.Node)}: score {hit.Score:F3} = similarity {hit.Similarity:F3}×{options.SimilarityWeight} + proximity {hit.Proximity:F3}×{options.ProximityWeight} + confidence {hit.Confidence:F3}×{options.ConfidenceWeight}");
        text.Append("; path ").Append(Name(hit.Seed));
        foreach (var step in hit.Path)
        {
            var predicate = _graph.PredicateName(step.Predicate);
            text.Append(step.Direction == Direction.Out ? $" -[{predicate}]-> " : $" <-[{predicate}]- ").Append(Name(step.Node));
        }

        return text.ToString();
    }

    private static double Similarity(bool l2, float nearest, float distance)
        => l2 ? (distance <= nearest ? 1.0 : nearest / (double)distance) : Math.Clamp(1.0 - distance, 0.0, 1.0);

    private static double Score(FusionOptions options, double similarity, int hops, double confidence)
        => (options.SimilarityWeight * similarity) + (options.ProximityWeight / (1 + hops)) + (options.ConfidenceWeight * confidence);

    private static float DistanceOfHit(VectorHit[] hits, int found, int node)
    {
        for (var i = 0; i < found; i++)
        {
            if (hits[i].Id == node)
            {
                return hits[i].Distance;
            }
        }

        return float.PositiveInfinity;
    }

    /// <summary>Keeps the TopN best candidates in a min-heap on score.</summary>
    private static void Offer(PriorityQueue<Candidate, double> top, FusionOptions options, Candidate candidate)
    {
        var score = Score(options, candidate.Similarity, candidate.Hops, candidate.Confidence);
        if (top.Count < options.TopN)
        {
            top.Enqueue(candidate, score);
        }
        else if (top.TryPeek(out _, out var worst) && score > worst)
        {
            top.DequeueEnqueue(candidate, score);
        }
    }

    private double ConfidenceOf(int node) => (uint)node < (uint)_confidence.Length ? _confidence[node] : 0;

    private string Name(int node) => node < _graph.NodeCount ? _graph.NodeName(node) : $"#{node}";

    private readonly record struct Candidate(int Node, double Similarity, double Confidence, int Hops);
}
