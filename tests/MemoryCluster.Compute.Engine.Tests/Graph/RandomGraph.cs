using MemoryCluster.Compute.Engine.Graph;

namespace MemoryCluster.Compute.Engine.Tests.Graph;

/// <summary>A random graph built twice: in a <see cref="KnowledgeGraph"/> and as a plain edge list for the naive versions.</summary>
internal sealed class RandomGraph
{
    public RandomGraph(int seed, int maxNodes = 40, int maxEdges = 120, bool timed = true)
    {
        var random = new Random(seed);
        NodeCount = random.Next(1, maxNodes + 1);
        for (var i = 0; i < NodeCount; i++)
        {
            Graph.InternNode($"n{i}");
        }

        for (var p = 0; p < 3; p++)
        {
            Graph.InternPredicate($"p{p}");
        }

        var edges = random.Next(0, maxEdges + 1);
        for (var i = 0; i < edges; i++)
        {
            var s = random.Next(NodeCount);
            var o = random.Next(NodeCount);
            var p = random.Next(3);
            var confidence = (float)Math.Round(0.05 + (random.NextDouble() * 0.95), 3);
            var from = timed && random.Next(4) == 0 ? random.Next(0, 50) : long.MinValue;
            var id = Graph.AddEdge(s, p, o, confidence, from);
            Edges.Add(new NaiveEdge(id, s, p, o, confidence, from, long.MaxValue));
            if (timed && random.Next(6) == 0)
            {
                var at = Math.Max(from, 0) + random.Next(1, 50);
                Graph.Supersede(id, at);
                Edges[^1] = Edges[^1] with { To = at };
            }

            if (random.Next(40) == 0)
            {
                Graph.Compact();
            }
        }
    }

    public KnowledgeGraph Graph { get; } = new();

    public int NodeCount { get; }

    public List<NaiveEdge> Edges { get; } = [];

    public static bool Visible(NaiveEdge e, EdgeFilter filter)
        => (filter.Predicates is null || filter.Predicates.Contains(e.Predicate))
            && (filter.AsOf is { } t ? e.From <= t && t < e.To : e.To == long.MaxValue);

    /// <summary>Neighbours straight from the edge list.</summary>
    public List<(int Node, int Edge)> Adjacent(int node, Direction direction, EdgeFilter filter)
    {
        var result = new List<(int, int)>();
        foreach (var e in Edges)
        {
            if (!Visible(e, filter))
            {
                continue;
            }

            if (direction != Direction.In && e.Subject == node)
            {
                result.Add((e.Object, e.Id));
            }

            if (direction != Direction.Out && e.Object == node)
            {
                result.Add((e.Subject, e.Id));
            }
        }

        return result;
    }

    public Dictionary<int, int> NaiveDepths(int start, Direction direction, EdgeFilter filter, int maxDepth)
    {
        var depth = new Dictionary<int, int> { [start] = 0 };
        var frontier = new List<int> { start };
        for (var d = 1; d <= maxDepth && frontier.Count > 0; d++)
        {
            var next = new List<int>();
            foreach (var v in frontier)
            {
                foreach (var (n, _) in Adjacent(v, direction, filter))
                {
                    if (depth.TryAdd(n, d))
                    {
                        next.Add(n);
                    }
                }
            }

            frontier = next;
        }

        return depth;
    }

    public static EdgeFilter RandomFilter(Random random) => random.Next(4) switch
    {
        0 => default,
        1 => new EdgeFilter(PredicateSet.Of(random.Next(3))),
        2 => new EdgeFilter(AsOf: random.Next(-5, 100)),
        _ => new EdgeFilter(PredicateSet.Of(0, 2), random.Next(-5, 100)),
    };

    public static Direction RandomDirection(Random random) => (Direction)random.Next(1, 4);
}

internal sealed record NaiveEdge(int Id, int Subject, int Predicate, int Object, float Confidence, long From, long To);
