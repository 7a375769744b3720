using System.Runtime.InteropServices;

namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>A node reached by a k-hop expansion, with its distance in hops from the start.</summary>
public readonly record struct ReachedNode(int Node, int Depth);

/// <summary>Component labels (0 .. Count - 1, numbered by smallest member) for every node.</summary>
public sealed record ComponentLabels(int[] Labels, int Count);

/// <summary>Traversals and whole-graph algorithms over a <see cref="KnowledgeGraph"/>.</summary>
public static class GraphAlgorithms
{
    /// <summary>
    /// Breadth-first k-hop neighbourhood: every node within <paramref name="hops"/> of
    /// <paramref name="start"/> (start included at depth 0), stopping after <paramref name="maxNodes"/>
    /// nodes (0 = no limit). O(nodes + edges reached).
    /// </summary>
    public static List<ReachedNode> KHop(KnowledgeGraph graph, int start, int hops, Direction direction, EdgeFilter filter = default, int maxNodes = 0)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentOutOfRangeException.ThrowIfNegative(hops);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)start, (uint)graph.NodeCount, nameof(start));
        if (direction is not (Direction.Out or Direction.In or Direction.Both))
        {
            throw new ArgumentOutOfRangeException(nameof(direction), direction, "Direction must be Out, In or Both.");
        }

        var unfiltered = filter.Predicates is null && !graph.HasTimedEdges;
        var scratch = GraphScratch.For(graph.NodeCount);
        var visited = scratch.Visited;
        var queue = scratch.Queue;
        var depth = scratch.Depth;

        // The queue holds one level after another; depth changes when the head passes levelEnd. The nodes taken from
        // the queue are the answer, in order: it is copied out once at the end into a list of its exact size (growing
        // a list node by node allocated 2.5 times the answer and copied it as often).
        int head = 0, tail = 0, d = 0, levelEnd = 1;
        visited.TryVisit(start);
        queue[tail++] = start;
        while (head < tail)
        {
            if (head == levelEnd)
            {
                d++;
                levelEnd = tail;
            }

            depth[head] = d;
            var node = queue[head++];
            if (head == maxNodes)
            {
                break;
            }

            if (d == hops)
            {
                continue;
            }

            if (unfiltered)
            {
                // Hot path: no predicate or time filter, so read the adjacency arrays directly.
                if (direction != Direction.In)
                {
                    tail = Enqueue(graph, node, graph.OutOffsets, graph.OutTargets, graph.DeltaOutHead(node), graph.DeltaOutNext, graph.DeltaTarget, scratch, tail);
                }

                if (direction != Direction.Out)
                {
                    tail = Enqueue(graph, node, graph.InOffsets, graph.InSources, graph.DeltaInHead(node), graph.DeltaInNext, graph.DeltaSource, scratch, tail);
                }

                continue;
            }

            foreach (var n in graph.Edges(node, direction, filter))
            {
                if (visited.TryVisit(n.Node))
                {
                    queue[tail++] = n.Node;
                }
            }
        }

        var result = new List<ReachedNode>(head);
        CollectionsMarshal.SetCount(result, head);
        var reached = CollectionsMarshal.AsSpan(result);
        for (var i = 0; i < head; i++)
        {
            reached[i] = new ReachedNode(queue[i], depth[i]);
        }

        return result;
    }

    private static int Enqueue(KnowledgeGraph graph, int node, int[] offsets, int[] neighbours, int deltaHead, int[] deltaNext, int[] deltaOther, GraphScratch scratch, int tail)
    {
        var visited = scratch.Visited;
        var queue = scratch.Queue;
        if (node < graph.CsrNodes)
        {
            var end = offsets[node + 1];
            for (var i = offsets[node]; i < end; i++)
            {
                var n = neighbours[i];
                if (visited.TryVisit(n))
                {
                    queue[tail++] = n;
                }
            }
        }

        for (var d = deltaHead; d != 0; d = deltaNext[d - 1])
        {
            var n = deltaOther[d - 1];
            if (visited.TryVisit(n))
            {
                queue[tail++] = n;
            }
        }

        return tail;
    }

    /// <summary>Fewest-hops path by breadth-first search (null when unreachable within <paramref name="maxDepth"/>; 0 = no limit).</summary>
    public static GraphPath? ShortestPath(KnowledgeGraph graph, int from, int to, Direction direction, EdgeFilter filter = default, int maxDepth = 0)
    {
        ArgumentNullException.ThrowIfNull(graph);
        CheckEnds(graph, from, to, direction);
        var scratch = GraphScratch.For(graph.NodeCount);
        var visited = scratch.Visited;
        var queue = scratch.Queue;
        var depth = scratch.Depth;
        int head = 0, tail = 0;
        visited.TryVisit(from);
        queue[tail++] = from;
        depth[from] = 0;
        scratch.Parent[from] = -1;
        while (head < tail)
        {
            var node = queue[head++];
            if (node == to)
            {
                return BuildPath(scratch, to, depth[to]);
            }

            if (maxDepth > 0 && depth[node] == maxDepth)
            {
                continue;
            }

            foreach (var n in graph.Edges(node, direction, filter))
            {
                if (visited.TryVisit(n.Node))
                {
                    scratch.Parent[n.Node] = node;
                    scratch.ParentEdge[n.Node] = n.EdgeId;
                    depth[n.Node] = depth[node] + 1;
                    queue[tail++] = n.Node;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Most trusted path by Dijkstra, where an edge costs -ln(confidence): the cheapest path is the one
    /// whose confidences multiply to the most. Edges with confidence 0 are skipped. O((V + E) log V).
    /// </summary>
    public static GraphPath? CheapestPath(KnowledgeGraph graph, int from, int to, Direction direction, EdgeFilter filter = default)
    {
        ArgumentNullException.ThrowIfNull(graph);
        CheckEnds(graph, from, to, direction);
        var scratch = GraphScratch.For(graph.NodeCount);
        var seen = scratch.Visited;
        var settled = new HashSet<int>();
        var distance = new Dictionary<int, double> { [from] = 0 };
        var queue = new PriorityQueue<int, double>();
        queue.Enqueue(from, 0);
        seen.TryVisit(from);
        scratch.Parent[from] = -1;
        while (queue.TryDequeue(out var node, out var cost))
        {
            if (!settled.Add(node))
            {
                continue;
            }

            if (node == to)
            {
                return BuildPath(scratch, to, cost);
            }

            foreach (var n in graph.Edges(node, direction, filter))
            {
                var confidence = graph.ConfidenceOf(n.EdgeId);
                if (confidence <= 0f || settled.Contains(n.Node))
                {
                    continue;
                }

                var next = cost - Math.Log(confidence);
                if (seen.TryVisit(n.Node) || next < distance[n.Node])
                {
                    distance[n.Node] = next;
                    scratch.Parent[n.Node] = node;
                    scratch.ParentEdge[n.Node] = n.EdgeId;
                    queue.Enqueue(n.Node, next);
                }
            }
        }

        return null;
    }

    /// <summary>Weakly connected components (edge direction ignored) by union–find. O(V + E α(V)).</summary>
    public static ComponentLabels WeaklyConnectedComponents(KnowledgeGraph graph, EdgeFilter filter = default)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var n = graph.NodeCount;
        var components = new IncrementalComponents();
        components.EnsureSize(n);
        for (var node = 0; node < n; node++)
        {
            foreach (var e in graph.Edges(node, Direction.Out, filter))
            {
                components.Union(node, e.Node);
            }
        }

        var labels = new int[n];
        var rootLabel = new int[n];
        Array.Fill(rootLabel, -1);
        var count = 0;
        for (var node = 0; node < n; node++)
        {
            var root = components.Find(node);
            if (rootLabel[root] < 0)
            {
                rootLabel[root] = count++;
            }

            labels[node] = rootLabel[root];
        }

        return new ComponentLabels(labels, count);
    }

    /// <summary>Strongly connected components by an iterative Tarjan. O(V + E).</summary>
    public static ComponentLabels StronglyConnectedComponents(KnowledgeGraph graph, EdgeFilter filter = default)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var (offsets, targets) = Materialize(graph, Direction.Out, filter);
        var n = graph.NodeCount;
        var index = new int[n];
        var low = new int[n];
        var component = new int[n];
        Array.Fill(index, -1);
        var onStack = new bool[n];
        var stack = new int[n];
        var callNode = new int[n];
        var callEdge = new int[n];
        int stackTop = 0, counter = 0, found = 0;
        for (var root = 0; root < n; root++)
        {
            if (index[root] >= 0)
            {
                continue;
            }

            var depth = 0;
            callNode[0] = root;
            callEdge[0] = offsets[root];
            index[root] = low[root] = counter++;
            stack[stackTop++] = root;
            onStack[root] = true;
            while (depth >= 0)
            {
                var v = callNode[depth];
                if (callEdge[depth] < offsets[v + 1])
                {
                    var w = targets[callEdge[depth]++];
                    if (index[w] < 0)
                    {
                        index[w] = low[w] = counter++;
                        stack[stackTop++] = w;
                        onStack[w] = true;
                        depth++;
                        callNode[depth] = w;
                        callEdge[depth] = offsets[w];
                    }
                    else if (onStack[w])
                    {
                        low[v] = Math.Min(low[v], index[w]);
                    }

                    continue;
                }

                if (low[v] == index[v])
                {
                    int w;
                    do
                    {
                        w = stack[--stackTop];
                        onStack[w] = false;
                        component[w] = found;
                    }
                    while (w != v);
                    found++;
                }

                depth--;
                if (depth >= 0)
                {
                    var parent = callNode[depth];
                    low[parent] = Math.Min(low[parent], low[v]);
                }
            }
        }

        return Renumber(component, found);
    }

    /// <summary>
    /// PageRank by power iteration over visible out-edges (parallel edges count separately);
    /// the rank of dangling nodes is spread evenly. Stops when the L1 change falls below
    /// <paramref name="tolerance"/>. Scores sum to 1. O(iterations × (V + E)).
    /// </summary>
    public static double[] PageRank(KnowledgeGraph graph, EdgeFilter filter = default, double damping = 0.85, int maxIterations = 100, double tolerance = 1e-9)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var n = graph.NodeCount;
        if (n == 0)
        {
            return [];
        }

        var (offsets, targets) = Materialize(graph, Direction.Out, filter);
        var rank = new double[n];
        var next = new double[n];
        Array.Fill(rank, 1.0 / n);
        for (var iteration = 0; iteration < maxIterations; iteration++)
        {
            var dangling = 0.0;
            Array.Clear(next);
            for (var v = 0; v < n; v++)
            {
                var degree = offsets[v + 1] - offsets[v];
                if (degree == 0)
                {
                    dangling += rank[v];
                    continue;
                }

                var share = rank[v] / degree;
                for (var i = offsets[v]; i < offsets[v + 1]; i++)
                {
                    next[targets[i]] += share;
                }
            }

            var teleport = ((1 - damping) + (damping * dangling)) / n;
            var change = 0.0;
            for (var v = 0; v < n; v++)
            {
                var value = teleport + (damping * next[v]);
                change += Math.Abs(value - rank[v]);
                rank[v] = value;
            }

            if (change < tolerance)
            {
                break;
            }
        }

        return rank;
    }

    /// <summary>
    /// Maps PageRank to a confidence in [0, 1]: log(1 + rank × n) / log(1 + max × n), so an average
    /// node scores about log 2 / log(1 + max × n) and the hub scores 1, without crushing the long tail.
    /// </summary>
    public static float[] ConfidenceFromPageRank(double[] rank)
    {
        ArgumentNullException.ThrowIfNull(rank);
        var n = rank.Length;
        var max = 0.0;
        foreach (var r in rank)
        {
            max = Math.Max(max, r);
        }

        var scale = Math.Log(1 + (max * n));
        var result = new float[n];
        for (var i = 0; i < n; i++)
        {
            result[i] = scale > 0 ? (float)(Math.Log(1 + (rank[i] * n)) / scale) : 0f;
        }

        return result;
    }

    /// <summary>The visible edges as a plain CSR (offsets, neighbours) for whole-graph passes.</summary>
    internal static (int[] Offsets, int[] Targets) Materialize(KnowledgeGraph graph, Direction direction, EdgeFilter filter)
    {
        var n = graph.NodeCount;
        var offsets = new int[n + 1];
        for (var v = 0; v < n; v++)
        {
            var degree = 0;
            foreach (var unused in graph.Edges(v, direction, filter))
            {
                degree++;
            }

            offsets[v + 1] = offsets[v] + degree;
        }

        var targets = new int[offsets[n]];
        for (var v = 0; v < n; v++)
        {
            var at = offsets[v];
            foreach (var e in graph.Edges(v, direction, filter))
            {
                targets[at++] = e.Node;
            }
        }

        return (offsets, targets);
    }

    private static void CheckEnds(KnowledgeGraph graph, int from, int to, Direction direction)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)from, (uint)graph.NodeCount, nameof(from));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)to, (uint)graph.NodeCount, nameof(to));
        if (direction is not (Direction.Out or Direction.In or Direction.Both))
        {
            throw new ArgumentOutOfRangeException(nameof(direction), direction, "Direction must be Out, In or Both.");
        }
    }

    private static ComponentLabels Renumber(int[] component, int count)
    {
        var map = new int[count];
        Array.Fill(map, -1);
        var next = 0;
        for (var v = 0; v < component.Length; v++)
        {
            var c = component[v];
            if (map[c] < 0)
            {
                map[c] = next++;
            }

            component[v] = map[c];
        }

        return new ComponentLabels(component, count);
    }

    private static GraphPath BuildPath(GraphScratch scratch, int to, double cost)
    {
        var nodes = new List<int>();
        var edges = new List<int>();
        for (var v = to; v != -1; v = scratch.Parent[v])
        {
            nodes.Add(v);
            if (scratch.Parent[v] != -1)
            {
                edges.Add(scratch.ParentEdge[v]);
            }
        }

        nodes.Reverse();
        edges.Reverse();
        return new GraphPath(nodes, edges, cost);
    }
}
