using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Vectors;

public sealed class VectorKernelsTests
{
    // Every length from empty to past several 512-bit blocks (the four-accumulator body, the one-vector loop and the
    // scalar tail in every combination), and the benchmark's 784, against sums in double precision.
    [Property(MaxTest = 60)]
    public void Squared_L2_and_dot_equal_a_double_precision_sum(int seed)
    {
        var random = new Random(seed);
        var length = random.Next(8) == 0 ? 784 : random.Next(0, 200);
        var a = new float[length + 1];
        var b = new float[length + 1];
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = (float)((random.NextDouble() * 2) - 1);
            b[i] = (float)((random.NextDouble() * 2) - 1);
        }

        // An offset of one float: the kernels must not assume aligned rows.
        var offset = random.Next(2);
        double l2 = 0, dot = 0;
        for (var i = 0; i < length; i++)
        {
            double d = a[offset + i] - b[offset + i];
            l2 += d * d;
            dot += (double)a[offset + i] * b[offset + i];
        }

        Assert.Equal(l2, VectorKernels.L2Squared(ref a[offset], ref b[offset], length), 1e-4 * Math.Max(1, l2));
        Assert.Equal(dot, VectorKernels.Dot(ref a[offset], ref b[offset], length), 1e-4 * Math.Max(1, Math.Abs(dot)));
    }

    [Fact]
    public void Reported_L2_distances_are_roots_of_the_compared_squares()
    {
        var index = new HnswIndex(new HnswOptions { Dimensions = 3, M = 4 });
        index.Add(1, [3, 4, 0]);
        Assert.True(index.TryGetDistance([0, 0, 0], 1, out var distance));
        Assert.Equal(5f, distance, 1e-6f);
        Assert.Equal(5f, index.Search([0, 0, 0], 1)[0].Distance, 1e-6f);

        // A query of another length is refused, never read past its end.
        Assert.Throws<ArgumentException>(() => index.TryGetDistance([0, 0], 1, out _));
    }
}
