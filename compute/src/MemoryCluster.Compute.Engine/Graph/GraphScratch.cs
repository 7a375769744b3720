using MemoryCluster.Compute.Engine.Internal;

namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>Per-thread traversal buffers sized to the graph: visited stamps, queue, parents, depths.</summary>
internal sealed class GraphScratch
{
    [ThreadStatic]
    private static GraphScratch? _current;

    public VisitedSet Visited { get; } = new();

    public int[] Queue { get; private set; } = [];

    public int[] Parent { get; private set; } = [];

    public int[] ParentEdge { get; private set; } = [];

    public int[] Depth { get; private set; } = [];

    public static GraphScratch For(int nodes)
    {
        var scratch = _current ??= new GraphScratch();
        if (scratch.Queue.Length < nodes)
        {
            var size = Math.Max(nodes, scratch.Queue.Length * 2);
            scratch.Queue = new int[size];
            scratch.Parent = new int[size];
            scratch.ParentEdge = new int[size];
            scratch.Depth = new int[size];
        }

        scratch.Visited.Reset(nodes);
        return scratch;
    }
}
