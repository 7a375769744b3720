namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>Which edges of a node a traversal follows.</summary>
public enum Direction
{
    /// <summary>Not set; rejected.</summary>
    Unknown = 0,

    /// <summary>Edges leaving the node (subject → object).</summary>
    Out = 1,

    /// <summary>Edges arriving at the node (object ← subject).</summary>
    In = 2,

    /// <summary>Both, treating the graph as undirected.</summary>
    Both = 3,
}
