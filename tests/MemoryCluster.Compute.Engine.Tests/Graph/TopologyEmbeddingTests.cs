using System.Numerics.Tensors;
using MemoryCluster.Compute.Engine.Graph;

namespace MemoryCluster.Compute.Engine.Tests.Graph;

public sealed class TopologyEmbeddingTests
{
    [Fact]
    public void FastRP_matches_a_dense_matrix_computation()
    {
        var g = new RandomGraph(5, maxNodes: 30, maxEdges: 80);
        var options = new FastRpOptions { Dimensions = 8, IterationWeights = [0.5f, 1f, 0.25f], Seed = 3 };
        var actual = TopologyEmbedding.FastRandomProjection(g.Graph, options);

        // Dense version: the same projection matrix, neighbours summed from the edge list.
        var n = g.NodeCount;
        var d = options.Dimensions;
        var baseline = TopologyEmbedding.FastRandomProjection(new KnowledgeGraph(), options);
        Assert.Empty(baseline);
        var current = Projection(n, d, options.Seed);
        var result = new float[n * d];
        foreach (var weight in options.IterationWeights)
        {
            var next = new float[n * d];
            for (var v = 0; v < n; v++)
            {
                foreach (var (u, _) in g.Adjacent(v, Direction.Both, default))
                {
                    for (var j = 0; j < d; j++)
                    {
                        next[(v * d) + j] += current[(u * d) + j];
                    }
                }

                Normalise(next.AsSpan(v * d, d));
                for (var j = 0; j < d; j++)
                {
                    result[(v * d) + j] += weight * next[(v * d) + j];
                }
            }

            current = next;
        }

        for (var v = 0; v < n; v++)
        {
            Normalise(result.AsSpan(v * d, d));
        }

        Assert.Equal(result.Length, actual.Length);
        for (var i = 0; i < result.Length; i++)
        {
            Assert.Equal(result[i], actual[i], 1e-4f);
        }
    }

    [Fact]
    public void Nodes_with_the_same_neighbours_get_the_same_embedding_and_clusters_stay_apart()
    {
        var graph = new KnowledgeGraph();
        for (var cluster = 0; cluster < 2; cluster++)
        {
            for (var i = 0; i < 6; i++)
            {
                for (var j = i + 1; j < 6; j++)
                {
                    graph.AddEdge($"c{cluster}-{i}", "link", $"c{cluster}-{j}");
                }
            }
        }

        graph.AddEdge("c0-0", "link", "c1-0");
        graph.AddEdge("twin-a", "link", "c0-3");
        graph.AddEdge("twin-b", "link", "c0-3");
        var embedding = TopologyEmbedding.FastRandomProjection(graph, new FastRpOptions { Dimensions = 64, Seed = 9 });
        float[] Row(string name)
        {
            graph.TryGetNode(name, out var id);
            return embedding.AsSpan(id * 64, 64).ToArray();
        }

        Assert.Equal(Row("twin-a"), Row("twin-b"));
        var within = TensorPrimitives.CosineSimilarity(Row("c0-1"), Row("c0-2"));
        var across = TensorPrimitives.CosineSimilarity(Row("c0-1"), Row("c1-2"));
        Assert.True(within > across + 0.3f, $"within {within}, across {across}");
        Assert.Equal(1f, TensorPrimitives.Norm(Row("c1-4")), 1e-5f);
    }

    [Fact]
    public void FastRP_is_deterministic_for_a_seed()
    {
        var g = new RandomGraph(8);
        var a = TopologyEmbedding.FastRandomProjection(g.Graph, new FastRpOptions { Seed = 1 });
        var b = TopologyEmbedding.FastRandomProjection(g.Graph, new FastRpOptions { Seed = 1 });
        var c = TopologyEmbedding.FastRandomProjection(g.Graph, new FastRpOptions { Seed = 2 });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    private static float[] Projection(int n, int d, ulong seed)
    {
        // The same generator as the engine (SplitMix64), drawn the same way.
        var random = new Internal.SplitMix64(seed);
        var scale = MathF.Sqrt(3f);
        var result = new float[n * d];
        for (var i = 0; i < result.Length; i++)
        {
            var r = random.NextInt(6);
            result[i] = r == 0 ? scale : r == 1 ? -scale : 0f;
        }

        return result;
    }

    private static void Normalise(Span<float> row)
    {
        var norm = TensorPrimitives.Norm(row);
        if (norm > 0)
        {
            TensorPrimitives.Divide(row, norm, row);
        }
    }
}
