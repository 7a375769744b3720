using MemoryCluster.Compute.Engine.Graph;

namespace MemoryCluster.Compute.Engine.Fusion;

/// <summary>Parameters of a fusion query.</summary>
public sealed record FusionOptions
{
    /// <summary>ANN candidates taken as seeds.</summary>
    public int Candidates { get; init; } = 10;

    /// <summary>ef of the ANN search (0 = the index default).</summary>
    public int Ef { get; init; }

    /// <summary>Hops of graph expansion around the seeds.</summary>
    public int Hops { get; init; } = 2;

    /// <summary>Edges followed during expansion.</summary>
    public Direction Direction { get; init; } = Direction.Both;

    /// <summary>Predicate and time filter of the expansion.</summary>
    public EdgeFilter Filter { get; init; }

    /// <summary>Nodes reached by the expansion at most (bounds latency on hubs).</summary>
    public int MaxExpandedNodes { get; init; } = 2000;

    /// <summary>Results returned.</summary>
    public int TopN { get; init; } = 10;

    /// <summary>Weight of vector similarity.</summary>
    public double SimilarityWeight { get; init; } = 0.6;

    /// <summary>Weight of graph proximity (1 / (1 + hops from the nearest seed)).</summary>
    public double ProximityWeight { get; init; } = 0.25;

    /// <summary>Weight of topology confidence.</summary>
    public double ConfidenceWeight { get; init; } = 0.15;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Candidates);
        ArgumentOutOfRangeException.ThrowIfNegative(Hops);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(TopN);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxExpandedNodes);
        if (Direction is not (Direction.Out or Direction.In or Direction.Both))
        {
            throw new ArgumentOutOfRangeException(nameof(Direction), Direction, "Direction must be Out, In or Both.");
        }

        if (SimilarityWeight < 0 || ProximityWeight < 0 || ConfidenceWeight < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(SimilarityWeight), "Weights must not be negative.");
        }
    }
}

/// <summary>One step of an explanation path: the edge followed and the node it led to.</summary>
public readonly record struct PathStep(int EdgeId, int Predicate, Direction Direction, int Node);

/// <summary>A fused result with the parts of its score and the path that reached it.</summary>
public sealed record FusionHit(
    int Node,
    double Score,
    double Similarity,
    double Proximity,
    double Confidence,
    int Seed,
    int Hops,
    IReadOnlyList<PathStep> Path);
