using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Vectors;

public sealed class HnswConcurrencyTests
{
    // Storage starts at two nodes, so the writer replaces it a dozen times while readers hold old copies.
    [Theory]
    // Batched: the writer uses the parallel build, 100 vectors at a time on four threads.
    [InlineData(21, false)]
    [InlineData(22, false)]
    [InlineData(23, false)]
    [InlineData(24, true)]
    [InlineData(25, true)]
    public async Task Readers_search_safely_while_one_writer_inserts_and_deletes(int seed, bool batched)
    {
        const int Count = 4000;
        var data = VectorData.Random(seed, Count, 16);
        var index = new HnswIndex(new HnswOptions { Dimensions = 16, M = 8, EfConstruction = 40, InitialCapacity = 2 });
        using var done = new CancellationTokenSource();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var searches = 0;
        // Readers get their own threads (LongRunning), so they do not starve the parallel build's thread pool.
        var readers = Enumerable.Range(0, 3).Select(r => Task.Factory.StartNew(
            () =>
        {
            var queries = VectorData.Random(100 + r, 50, 16);
            var hits = new VectorHit[10];
            var i = 0;
            while (!done.IsCancellationRequested)
            {
                var published = index.NodeCount;
                var found = index.Search(queries[i++ % queries.Length], 10, hits, 30);
                if (published > 0 && found == 0)
                {
                    errors.Enqueue("no results from a non-empty index");
                }

                for (var j = 0; j < found; j++)
                {
                    if (hits[j].Id is < 0 or >= Count || (j > 0 && hits[j].Distance < hits[j - 1].Distance))
                    {
                        errors.Enqueue($"bad hit {hits[j]}");
                    }
                }

                Interlocked.Increment(ref searches);
            }
        },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)).ToArray();

        // Start writing only once every reader is searching, so reads and writes overlap.
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref searches) >= 30, TimeSpan.FromSeconds(30)));
        for (var i = 0; i < Count; i++)
        {
            if (!batched)
            {
                index.Add(i, data[i]);
            }
            else if (i % 100 == 0)
            {
                index.AddRange([.. Enumerable.Range(i, 100)], data[i..(i + 100)].SelectMany(v => v).ToArray(), maxDegreeOfParallelism: 4);
            }

            if (i % 10 == 9)
            {
                index.Delete(i - 5);
            }
        }

        done.Cancel();
        await Task.WhenAll(readers);
        Assert.Empty(errors);
        Assert.True(searches > 0);

        // After the writer is done, answers are exact again.
        var deleted = Enumerable.Range(0, Count).Where(i => i % 10 == 4).ToHashSet();
        Assert.Equal(Count - deleted.Count, index.Count);
        foreach (var query in VectorData.Random(31, 5, 16))
        {
            var expected = VectorData.ExactDistances(DistanceMetric.L2, data, query, 10, id => !deleted.Contains(id));
            var hits = index.Search(query, 10, ef: 400);
            Assert.Equal(expected, hits.Select(h => h.Distance).ToArray(), VectorData.Tolerance);
        }
    }
}
