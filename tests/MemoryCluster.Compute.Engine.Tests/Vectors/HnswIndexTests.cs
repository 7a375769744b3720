using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Vectors;

public sealed class HnswIndexTests
{
    private static readonly DistanceMetric[] Metrics = [DistanceMetric.L2, DistanceMetric.Cosine, DistanceMetric.InnerProduct];

    // L2 and cosine: with ef at least the set size, the search walks every node reachable on layer 0,
    // and in-degree protection keeps every node reachable. Inner product is not a metric (a short
    // vector can be far from everything, itself included), so it gets the fixed-seed test below.
    [Property(MaxTest = 40)]
    public void Exact_knn_is_found_at_large_ef(int seed)
    {
        var random = new Random(seed);
        var count = random.Next(1, 400);
        var dimensions = random.Next(2, 24);
        var metric = Metrics[random.Next(2)];
        var data = VectorData.Random(seed, count, dimensions);
        var index = VectorData.Build(data, metric, m: random.Next(4, 17), seed: (ulong)random.Next());
        Assert.Equal(0, index.CountUnreachable());
        var k = Math.Min(10, count);
        foreach (var query in VectorData.Random(seed + 1, 5, dimensions))
        {
            var hits = index.Search(query, k, ef: count);
            var expected = VectorData.ExactDistances(metric, data, query, k, _ => true);
            Assert.Equal(k, hits.Length);
            for (var i = 0; i < k; i++)
            {
                // Compare distances, not ids: equal distances may come in either order.
                Assert.True(Math.Abs(expected[i] - hits[i].Distance) < 1e-4f, $"{metric} n={count} dim={dimensions}: hit {i} at {hits[i].Distance}, exact {expected[i]}");
                Assert.Equal(VectorData.Distance(metric, data[hits[i].Id], query), hits[i].Distance, 1e-4f);
            }
        }
    }

    [Fact]
    public void Inner_product_search_is_exact_at_large_ef()
    {
        var data = VectorData.Random(77, 300, 8);
        var index = VectorData.Build(data, DistanceMetric.InnerProduct, m: 12);
        foreach (var query in VectorData.Random(78, 20, 8))
        {
            var expected = VectorData.ExactDistances(DistanceMetric.InnerProduct, data, query, 10, _ => true);
            Assert.Equal(expected, index.Search(query, 10, ef: 300).Select(h => h.Distance), VectorData.Tolerance);
        }
    }

    [Fact]
    public void Recall_is_high_at_moderate_ef_on_a_larger_set()
    {
        var data = VectorData.Random(11, 3000, 32);
        var index = VectorData.Build(data, m: 16);
        var queries = VectorData.Random(12, 100, 32);
        var found = 0;
        foreach (var query in queries)
        {
            var expected = VectorData.ExactDistances(DistanceMetric.L2, data, query, 10, _ => true);
            var hits = index.Search(query, 10, ef: 100);
            found += hits.Count(h => h.Distance <= expected[^1] + 1e-5f);
        }

        Assert.True(found / 1000.0 >= 0.95, $"recall@10 {found / 1000.0}");
    }

    [Property(MaxTest = 30)]
    public void Filtered_search_returns_only_accepted_ids_and_the_exact_answer_among_them(int seed)
    {
        var random = new Random(seed);
        var count = random.Next(20, 300);
        var data = VectorData.Random(seed, count, 8);
        var index = VectorData.Build(data);
        var modulus = random.Next(2, 6);
        var accept = (int id) => id % modulus == 0;
        var query = VectorData.Random(seed + 1, 1, 8)[0];
        var destination = new VectorHit[5];
        var found = index.Search(query, 5, destination, count, new PredicateFilter(accept));
        var expected = VectorData.ExactDistances(DistanceMetric.L2, data, query, 5, accept);
        Assert.Equal(expected.Length, found);
        for (var i = 0; i < found; i++)
        {
            Assert.True(accept(destination[i].Id));
            Assert.Equal(expected[i], destination[i].Distance, 1e-4f);
        }
    }

    [Property(MaxTest = 30)]
    public void Deleted_vectors_are_never_returned_and_the_rest_stay_exact(int seed)
    {
        var random = new Random(seed);
        var count = random.Next(10, 300);
        var data = VectorData.Random(seed, count, 6);
        var index = VectorData.Build(data);
        var deleted = new HashSet<int>();
        for (var i = 0; i < count / 3; i++)
        {
            var id = random.Next(count);
            Assert.Equal(deleted.Add(id), index.Delete(id));
        }

        Assert.Equal(count - deleted.Count, index.Count);
        var query = VectorData.Random(seed + 1, 1, 6)[0];
        var k = Math.Min(7, count - deleted.Count);
        var hits = index.Search(query, k, ef: count);
        var expected = VectorData.ExactDistances(DistanceMetric.L2, data, query, k, id => !deleted.Contains(id));
        Assert.Equal(k, hits.Length);
        for (var i = 0; i < k; i++)
        {
            Assert.DoesNotContain(hits[i].Id, deleted);
            Assert.Equal(expected[i], hits[i].Distance, 1e-4f);
        }
    }

    [Fact]
    public void Rebuild_drops_tombstones_and_keeps_answers()
    {
        var data = VectorData.Random(3, 200, 5);
        var index = VectorData.Build(data);
        for (var id = 0; id < 200; id += 2)
        {
            index.Delete(id);
        }

        Assert.Equal(0.5, index.DeletedFraction, 3);
        var rebuilt = index.Rebuild();
        Assert.Equal(100, rebuilt.NodeCount);
        Assert.Equal(0, rebuilt.DeletedFraction);
        var query = VectorData.Random(4, 1, 5)[0];
        Assert.Equal(index.Search(query, 10, ef: 200), rebuilt.Search(query, 10, ef: 200));
    }

    [Fact]
    public void Adding_an_existing_id_replaces_its_vector()
    {
        var index = VectorData.Build([[0f, 0f], [10f, 10f]]);
        index.Add(0, [20f, 20f]);
        Assert.Equal(2, index.Count);
        var hit = index.Search([0f, 0f], 1, ef: 10)[0];
        Assert.Equal(1, hit.Id);
        Assert.True(index.TryGetDistance([20f, 20f], 0, out var distance));
        Assert.Equal(0f, distance);
    }

    [Fact]
    public void Cosine_vectors_are_normalised_so_scale_does_not_matter()
    {
        var index = VectorData.Build([[1f, 0f], [0f, 5f], [3f, 3f]], DistanceMetric.Cosine);
        var hits = index.Search([0f, 0.1f], 3, ef: 10);
        Assert.Equal([1, 2, 0], hits.Select(h => h.Id));
        Assert.Equal(0f, hits[0].Distance, 1e-6f);
        Assert.Equal(1f - MathF.Sqrt(0.5f), hits[1].Distance, 1e-6f);
    }

    [Fact]
    public void The_same_seed_and_insert_order_build_the_same_index()
    {
        var data = VectorData.Random(5, 500, 12);
        var first = Snapshot(VectorData.Build(data, seed: 99));
        var second = Snapshot(VectorData.Build(data, seed: 99));
        var other = Snapshot(VectorData.Build(data, seed: 100));
        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void Invalid_options_and_vectors_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswIndex(new HnswOptions { Dimensions = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswIndex(new HnswOptions { Dimensions = 4, Metric = DistanceMetric.Unknown }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswIndex(new HnswOptions { Dimensions = 4, M = 1 }));
        var index = new HnswIndex(new HnswOptions { Dimensions = 2 });
        Assert.Throws<ArgumentException>(() => index.Add(0, [1f, 2f, 3f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Add(-1, [1f, 2f]));
        Assert.Throws<ArgumentException>(() => index.Search([1f], 1));
        Assert.Empty(index.Search([1f, 2f], 3));
    }

    internal static byte[] Snapshot(HnswIndex index)
    {
        using var stream = new MemoryStream();
        index.Save(stream);
        return stream.ToArray();
    }
}
