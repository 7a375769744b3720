namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>
/// Which edges a query sees. <see cref="Predicates"/> null means every predicate. <see cref="AsOf"/>
/// null means the current graph: edges that have not been superseded (valid_to open). With a time,
/// an edge is seen when valid_from ≤ AsOf &lt; valid_to. Times are the caller's unit (the service
/// uses Unix milliseconds).
/// </summary>
public readonly record struct EdgeFilter(PredicateSet? Predicates = null, long? AsOf = null)
{
    /// <summary>Every current edge.</summary>
    public static EdgeFilter All => default;
}

/// <summary>An edge reached from a node: the node at the other end, the edge, and the direction it was followed.</summary>
public readonly record struct Neighbour(int Node, int EdgeId, Direction Direction);

/// <summary>A path: nodes from start to end, and the edge between each consecutive pair.</summary>
public sealed record GraphPath(IReadOnlyList<int> Nodes, IReadOnlyList<int> Edges, double Cost);
