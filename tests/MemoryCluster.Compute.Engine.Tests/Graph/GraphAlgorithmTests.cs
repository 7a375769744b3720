using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Graph;

namespace MemoryCluster.Compute.Engine.Tests.Graph;

public sealed class GraphAlgorithmTests
{
    [Property(MaxTest = 100)]
    public void Neighbours_match_the_edge_list_under_every_filter(int seed)
    {
        var (random, g, filter, direction) = Case(seed);
        for (var v = 0; v < g.NodeCount; v++)
        {
            var actual = g.Graph.Neighbours(v, direction, filter).Select(n => (n.Node, n.EdgeId)).Order().ToList();
            var expected = g.Adjacent(v, direction, filter).Order().ToList();
            Assert.Equal(expected, actual);
        }
    }

    [Property(MaxTest = 100)]
    public void K_hop_neighbourhoods_match_a_naive_breadth_first_search(int seed)
    {
        var (random, g, filter, direction) = Case(seed);
        var hops = random.Next(0, 5);
        var start = random.Next(g.NodeCount);
        var actual = GraphAlgorithms.KHop(g.Graph, start, hops, direction, filter);
        var expected = g.NaiveDepths(start, direction, filter, hops);
        Assert.Equal(expected.Count, actual.Count);
        foreach (var reached in actual)
        {
            Assert.Equal(expected[reached.Node], reached.Depth);
        }

        // Results come in BFS order, and a node limit keeps the nearest ones.
        Assert.True(actual.Select(r => r.Depth).SequenceEqual(actual.Select(r => r.Depth).Order()));
        var limited = GraphAlgorithms.KHop(g.Graph, start, hops, direction, filter, maxNodes: 3);
        Assert.Equal(actual.Take(3), limited);
    }

    [Property(MaxTest = 100)]
    public void Unfiltered_k_hop_on_a_graph_without_time_bounds_matches_a_naive_search(int seed)
    {
        // No predicate filter and no bounded validity: KHop takes its direct-array path.
        var random = new Random(seed);
        var g = new RandomGraph(seed, timed: false);
        var direction = RandomGraph.RandomDirection(random);
        var start = random.Next(g.NodeCount);
        var hops = random.Next(0, 5);
        var expected = g.NaiveDepths(start, direction, default, hops);
        var actual = GraphAlgorithms.KHop(g.Graph, start, hops, direction);
        Assert.Equal(expected.OrderBy(p => p.Key), actual.Select(r => KeyValuePair.Create(r.Node, r.Depth)).OrderBy(p => p.Key));
    }

    [Property(MaxTest = 100)]
    public void Breadth_first_paths_are_shortest_and_real(int seed)
    {
        var (random, g, filter, direction) = Case(seed);
        var from = random.Next(g.NodeCount);
        var to = random.Next(g.NodeCount);
        var expected = g.NaiveDepths(from, direction, filter, int.MaxValue);
        var path = GraphAlgorithms.ShortestPath(g.Graph, from, to, direction, filter);
        if (!expected.TryGetValue(to, out var distance))
        {
            Assert.Null(path);
            return;
        }

        Assert.NotNull(path);
        Assert.Equal(distance, path.Edges.Count);
        AssertRealPath(g, path, from, to, direction, filter);
    }

    [Property(MaxTest = 100)]
    public void Dijkstra_finds_the_most_confident_path_like_bellman_ford(int seed)
    {
        var (random, g, filter, direction) = Case(seed);
        var from = random.Next(g.NodeCount);
        var to = random.Next(g.NodeCount);

        var cost = new double[g.NodeCount];
        Array.Fill(cost, double.PositiveInfinity);
        cost[from] = 0;
        for (var round = 0; round < g.NodeCount; round++)
        {
            for (var v = 0; v < g.NodeCount; v++)
            {
                if (double.IsFinite(cost[v]))
                {
                    foreach (var (n, edge) in g.Adjacent(v, direction, filter))
                    {
                        cost[n] = Math.Min(cost[n], cost[v] - Math.Log(g.Edges[edge].Confidence));
                    }
                }
            }
        }

        var path = GraphAlgorithms.CheapestPath(g.Graph, from, to, direction, filter);
        if (double.IsPositiveInfinity(cost[to]))
        {
            Assert.Null(path);
            return;
        }

        Assert.NotNull(path);
        Assert.Equal(cost[to], path.Cost, 9);
        Assert.Equal(path.Cost, path.Edges.Sum(e => -Math.Log(g.Edges[e].Confidence)), 9);
        AssertRealPath(g, path, from, to, direction, filter);
    }

    [Property(MaxTest = 100)]
    public void Weak_components_match_a_naive_flood_fill(int seed)
    {
        var (_, g, filter, _) = Case(seed);
        var (labels, count) = NaiveLabels(g.NodeCount, v => g.NaiveDepths(v, Direction.Both, filter, int.MaxValue).Keys);

        var actual = GraphAlgorithms.WeaklyConnectedComponents(g.Graph, filter);
        Assert.Equal(count, actual.Count);
        Assert.Equal(labels, actual.Labels);
    }

    [Property(MaxTest = 100)]
    public void Strong_components_are_exactly_the_mutually_reachable_sets(int seed)
    {
        var (_, g, filter, _) = Case(seed);
        var reach = Enumerable.Range(0, g.NodeCount).Select(v => g.NaiveDepths(v, Direction.Out, filter, int.MaxValue)).ToArray();
        var (labels, count) = NaiveLabels(g.NodeCount, v => Enumerable.Range(v, g.NodeCount - v).Where(w => reach[v].ContainsKey(w) && reach[w].ContainsKey(v)));

        var actual = GraphAlgorithms.StronglyConnectedComponents(g.Graph, filter);
        Assert.Equal(count, actual.Count);
        Assert.Equal(labels, actual.Labels);
    }

    [Property(MaxTest = 100)]
    public void PageRank_matches_a_dense_power_iteration(int seed)
    {
        var (_, g, filter, _) = Case(seed);
        var n = g.NodeCount;
        var matrix = new double[n, n];
        var degree = new int[n];
        foreach (var e in g.Edges.Where(e => RandomGraph.Visible(e, filter)))
        {
            matrix[e.Object, e.Subject] += 1;
            degree[e.Subject]++;
        }

        var rank = Enumerable.Repeat(1.0 / n, n).ToArray();
        for (var iteration = 0; iteration < 300; iteration++)
        {
            var next = new double[n];
            for (var i = 0; i < n; i++)
            {
                next[i] = 0.15 / n;
                for (var j = 0; j < n; j++)
                {
                    next[i] += 0.85 * (degree[j] == 0 ? rank[j] / n : matrix[i, j] * rank[j] / degree[j]);
                }
            }

            rank = next;
        }

        var actual = GraphAlgorithms.PageRank(g.Graph, filter, maxIterations: 1000, tolerance: 1e-13);
        Assert.Equal(1.0, actual.Sum(), 9);
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(rank[i], actual[i], 8);
        }

        var confidence = GraphAlgorithms.ConfidenceFromPageRank(actual);
        Assert.All(confidence, c => Assert.InRange(c, 0f, 1f));
        Assert.Equal(1f, confidence.Max(), 5);
    }

    [Fact]
    public void PageRank_ranks_the_node_everyone_points_at_first()
    {
        var graph = new KnowledgeGraph();
        for (var i = 1; i <= 5; i++)
        {
            graph.AddEdge($"leaf{i}", "cites", "hub");
        }

        graph.AddEdge("hub", "cites", "leaf1");
        var rank = GraphAlgorithms.PageRank(graph);
        graph.TryGetNode("hub", out var hub);
        Assert.Equal(hub, Array.IndexOf(rank, rank.Max()));
    }

    /// <summary>A random graph with a random filter and direction drawn from the same seed.</summary>
    private static (Random Random, RandomGraph Graph, EdgeFilter Filter, Direction Direction) Case(int seed)
    {
        var random = new Random(seed);
        var graph = new RandomGraph(seed);
        return (random, graph, RandomGraph.RandomFilter(random), RandomGraph.RandomDirection(random));
    }

    /// <summary>Labels components in order of their smallest member: each unlabelled node labels what <paramref name="members"/> returns.</summary>
    private static (int[] Labels, int Count) NaiveLabels(int n, Func<int, IEnumerable<int>> members)
    {
        var labels = Enumerable.Repeat(-1, n).ToArray();
        var count = 0;
        for (var v = 0; v < n; v++)
        {
            if (labels[v] < 0)
            {
                foreach (var member in members(v))
                {
                    labels[member] = count;
                }

                count++;
            }
        }

        return (labels, count);
    }

    private static void AssertRealPath(RandomGraph g, GraphPath path, int from, int to, Direction direction, EdgeFilter filter)
    {
        Assert.Equal(from, path.Nodes[0]);
        Assert.Equal(to, path.Nodes[^1]);
        Assert.Equal(path.Nodes.Count - 1, path.Edges.Count);
        for (var i = 0; i < path.Edges.Count; i++)
        {
            Assert.Contains((path.Nodes[i + 1], path.Edges[i]), g.Adjacent(path.Nodes[i], direction, filter));
        }
    }
}
