using System.Numerics.Tensors;
using MemoryCluster.Compute.Engine.Internal;

namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>Options of <see cref="TopologyEmbedding.FastRandomProjection"/>.</summary>
public sealed record FastRpOptions
{
    /// <summary>Embedding length.</summary>
    public int Dimensions { get; init; } = 64;

    /// <summary>Weight of each propagation step (step 1 = neighbours, 2 = neighbours of neighbours, ...).</summary>
    public IReadOnlyList<float> IterationWeights { get; init; } = [0f, 1f, 1f];

    /// <summary>Seed of the random projection.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Which edges count (direction is ignored: the walk is undirected).</summary>
    public EdgeFilter Filter { get; init; }
}

/// <summary>
/// Topology embeddings by FastRP (Chen et al., 2019, "Fast and Accurate Network Embeddings via Very
/// Sparse Random Projection"). Each node gets a very sparse random vector R (entries ±√3 with
/// probability 1/6 each, else 0); step i computes Nᵢ = P·Nᵢ₋₁ with P the random-walk transition
/// matrix of the undirected graph (N₀ = R), normalises each row, and the embedding is Σ wᵢ·Nᵢ,
/// normalised. Nodes whose short random walks end in similar places get similar vectors.
/// Chosen over spectral methods because it is O(steps × E × d), needs no eigen-solver, and is
/// deterministic for a seed. Over walks with skip-gram it saves the training loop.
/// </summary>
public static class TopologyEmbedding
{
    /// <summary>Returns a node-major matrix: row v (length Dimensions) is node v's unit-length embedding.</summary>
    public static float[] FastRandomProjection(KnowledgeGraph graph, FastRpOptions options)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.Dimensions);
        var n = graph.NodeCount;
        var d = options.Dimensions;
        var (offsets, targets) = GraphAlgorithms.Materialize(graph, Direction.Both, options.Filter);
        var current = new float[(long)n * d];
        var random = new SplitMix64(options.Seed);
        var scale = MathF.Sqrt(3f);
        for (long i = 0; i < current.Length; i++)
        {
            var r = random.NextInt(6);
            current[i] = r == 0 ? scale : r == 1 ? -scale : 0f;
        }

        var next = new float[current.Length];
        var result = new float[current.Length];
        foreach (var weight in options.IterationWeights)
        {
            for (var v = 0; v < n; v++)
            {
                var row = next.AsSpan(v * d, d);
                row.Clear();
                var degree = offsets[v + 1] - offsets[v];
                if (degree == 0)
                {
                    continue;
                }

                for (var i = offsets[v]; i < offsets[v + 1]; i++)
                {
                    TensorPrimitives.Add(row, current.AsSpan(targets[i] * d, d), row);
                }

                var norm = TensorPrimitives.Norm(row);
                if (norm > 0)
                {
                    TensorPrimitives.Divide(row, norm, row);
                }

                if (weight != 0f)
                {
                    var target = result.AsSpan(v * d, d);
                    TensorPrimitives.MultiplyAdd(row, weight, target, target);
                }
            }

            (current, next) = (next, current);
        }

        for (var v = 0; v < n; v++)
        {
            var row = result.AsSpan(v * d, d);
            var norm = TensorPrimitives.Norm(row);
            if (norm > 0)
            {
                TensorPrimitives.Divide(row, norm, row);
            }
        }

        return result;
    }
}
