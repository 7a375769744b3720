using System.Numerics.Tensors;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Vectors;

/// <summary>Random vectors and the brute-force answers the index is checked against.</summary>
internal static class VectorData
{
    public static float[][] Random(int seed, int count, int dimensions)
    {
        var random = new Random(seed);
        var result = new float[count][];
        for (var i = 0; i < count; i++)
        {
            result[i] = new float[dimensions];
            for (var j = 0; j < dimensions; j++)
            {
                result[i][j] = (float)((random.NextDouble() * 2) - 1);
            }
        }

        return result;
    }

    public static float Distance(DistanceMetric metric, float[] a, float[] b) => metric switch
    {
        DistanceMetric.L2 => TensorPrimitives.Distance(a, b),
        DistanceMetric.Cosine => 1f - TensorPrimitives.CosineSimilarity(a, b),
        DistanceMetric.InnerProduct => 1f - TensorPrimitives.Dot(a, b),
        _ => throw new ArgumentOutOfRangeException(nameof(metric)),
    };

    /// <summary>The k smallest distances among accepted ids, by scanning everything.</summary>
    public static float[] ExactDistances(DistanceMetric metric, float[][] data, float[] query, int k, Func<int, bool> accept)
    {
        var distances = new List<float>();
        for (var i = 0; i < data.Length; i++)
        {
            if (accept(i))
            {
                distances.Add(Distance(metric, data[i], query));
            }
        }

        distances.Sort();
        return [.. distances.Take(k)];
    }

    public static HnswIndex Build(float[][] data, DistanceMetric metric = DistanceMetric.L2, int m = 8, ulong seed = 7)
    {
        var index = new HnswIndex(new HnswOptions
        {
            Dimensions = data[0].Length,
            Metric = metric,
            M = m,
            EfConstruction = 64,
            InitialCapacity = 4,
            Seed = seed,
        });
        for (var i = 0; i < data.Length; i++)
        {
            index.Add(i, data[i]);
        }

        return index;
    }

    /// <summary>Compares distances up to float rounding.</summary>
    public static IEqualityComparer<float> Tolerance { get; } = new ToleranceComparer();

    private sealed class ToleranceComparer : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) < 1e-4f;

        public int GetHashCode(float obj) => 0;
    }
}
