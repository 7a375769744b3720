using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Vectors;

public sealed class HnswParallelBuildTests
{
    [Property(MaxTest = 10)]
    public void A_parallel_build_finds_the_exact_knn_at_large_ef(int seed)
    {
        var random = new Random(seed);
        var count = random.Next(1, 600);
        var dimensions = random.Next(2, 16);
        var data = VectorData.Random(seed, count, dimensions);
        var index = new HnswIndex(new HnswOptions { Dimensions = dimensions, M = random.Next(4, 17), EfConstruction = 64, InitialCapacity = 2 });
        var split = random.Next(count + 1);
        index.AddRange([.. Enumerable.Range(0, split)], data[..split].SelectMany(v => v).ToArray(), maxDegreeOfParallelism: 4);
        index.AddRange([.. Enumerable.Range(split, count - split)], data[split..].SelectMany(v => v).ToArray(), maxDegreeOfParallelism: 4);

        Assert.Equal(count, index.Count);
        Assert.Equal(0, index.CountUnreachable());
        var k = Math.Min(10, count);
        foreach (var query in VectorData.Random(seed + 1, 5, dimensions))
        {
            var expected = VectorData.ExactDistances(DistanceMetric.L2, data, query, k, _ => true);
            Assert.Equal(expected, index.Search(query, k, ef: count).Select(h => h.Distance), VectorData.Tolerance);
        }
    }

    [Fact]
    public void A_parallel_build_reaches_the_recall_of_a_sequential_one()
    {
        var data = VectorData.Random(11, 3000, 32);
        var sequential = VectorData.Build(data, m: 16);
        var parallel = new HnswIndex(sequential.Options);
        parallel.AddRange([.. Enumerable.Range(0, data.Length)], data.SelectMany(v => v).ToArray(), maxDegreeOfParallelism: 4);
        var queries = VectorData.Random(12, 100, 32);
        Assert.True(Recall(parallel, data, queries) >= Recall(sequential, data, queries) - 0.02);
    }

    [Fact]
    public void A_batch_with_a_repeated_id_or_a_wrong_length_is_refused()
    {
        var index = new HnswIndex(new HnswOptions { Dimensions = 2 });
        Assert.Throws<ArgumentException>(() => index.AddRange([1, 1], new float[4]));
        Assert.Throws<ArgumentException>(() => index.AddRange([1, 2], new float[3]));
        Assert.Equal(0, index.Count);
    }

    private static double Recall(HnswIndex index, float[][] data, float[][] queries)
    {
        var found = 0;
        foreach (var query in queries)
        {
            var expected = VectorData.ExactDistances(DistanceMetric.L2, data, query, 10, _ => true);
            found += index.Search(query, 10, ef: 60).Count(h => h.Distance <= expected[^1] + 1e-5f);
        }

        return found / (queries.Length * 10.0);
    }
}
