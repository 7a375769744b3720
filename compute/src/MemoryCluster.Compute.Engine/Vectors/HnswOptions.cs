namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>Parameters of an <see cref="HnswIndex"/>.</summary>
public sealed record HnswOptions
{
    /// <summary>Length of every vector.</summary>
    public required int Dimensions { get; init; }

    /// <summary>Distance between vectors.</summary>
    public DistanceMetric Metric { get; init; } = DistanceMetric.L2;

    /// <summary>Links per node on the upper layers; layer 0 keeps 2 × M.</summary>
    public int M { get; init; } = 16;

    /// <summary>Candidate list size while inserting.</summary>
    public int EfConstruction { get; init; } = 200;

    /// <summary>Default candidate list size while searching (raised to k when smaller).</summary>
    public int EfSearch { get; init; } = 64;

    /// <summary>Nodes to allocate for up front; storage doubles when full.</summary>
    public int InitialCapacity { get; init; } = 1024;

    /// <summary>Seed of the level generator: the same seed and insert order build the same graph.</summary>
    public ulong Seed { get; init; } = 42;

    internal void Validate()
    {
        if (Dimensions is < 1 or > 65536)
        {
            throw new ArgumentOutOfRangeException(nameof(Dimensions), Dimensions, "Dimensions must be between 1 and 65536.");
        }

        if (Metric is not (DistanceMetric.L2 or DistanceMetric.Cosine or DistanceMetric.InnerProduct))
        {
            throw new ArgumentOutOfRangeException(nameof(Metric), Metric, "Metric must be L2, Cosine or InnerProduct.");
        }

        if (M is < 2 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(M), M, "M must be between 2 and 256.");
        }

        if (EfConstruction < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(EfConstruction), EfConstruction, "EfConstruction must be positive.");
        }

        if (EfSearch < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(EfSearch), EfSearch, "EfSearch must be positive.");
        }

        if (InitialCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(InitialCapacity), InitialCapacity, "InitialCapacity must be positive.");
        }
    }
}
