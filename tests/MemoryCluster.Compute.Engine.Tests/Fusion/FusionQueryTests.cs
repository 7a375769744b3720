using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Fusion;
using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Engine.Tests.Graph;
using MemoryCluster.Compute.Engine.Tests.Vectors;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Fusion;

public sealed class FusionQueryTests
{
    [Property(MaxTest = 60)]
    public void Fusion_matches_a_naive_score_of_every_node(int seed)
    {
        var random = new Random(seed);
        var g = new RandomGraph(seed, maxNodes: 60, maxEdges: 150);
        var data = VectorData.Random(seed, g.NodeCount, 6);
        var index = VectorData.Build(data);
        var confidence = Enumerable.Range(0, g.NodeCount).Select(_ => (float)random.NextDouble()).ToArray();
        var options = new FusionOptions
        {
            Candidates = random.Next(1, 6),
            Ef = g.NodeCount,
            Hops = random.Next(0, 4),
            Direction = RandomGraph.RandomDirection(random),
            Filter = RandomGraph.RandomFilter(random),
            TopN = random.Next(1, 8),
            SimilarityWeight = random.NextDouble(),
            ProximityWeight = random.NextDouble(),
            ConfidenceWeight = random.NextDouble(),
        };
        var query = VectorData.Random(seed + 1, 1, 6)[0];
        var fusion = new FusionQuery(index, g.Graph, confidence);
        var hits = fusion.Run(query, options);

        // Naive: exact seeds, hops to the nearest seed from a BFS per seed, a score for every node reached.
        var distances = data.Select(v => VectorData.Distance(DistanceMetric.L2, v, query)).ToArray();
        var seeds = Enumerable.Range(0, g.NodeCount).OrderBy(i => distances[i]).Take(options.Candidates).ToList();
        var hops = new Dictionary<int, int>();
        foreach (var s in seeds)
        {
            foreach (var (node, depth) in g.NaiveDepths(s, options.Direction, options.Filter, options.Hops))
            {
                hops[node] = Math.Min(depth, hops.GetValueOrDefault(node, int.MaxValue));
            }
        }

        var nearest = distances[seeds[0]];
        var expected = hops
            .Select(p => (options.SimilarityWeight * Math.Min(1.0, nearest / distances[p.Key]))
                + (options.ProximityWeight / (1 + p.Value)) + (options.ConfidenceWeight * confidence[p.Key]))
            .OrderDescending().Take(options.TopN).ToList();
        Assert.Equal(expected.Count, hits.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], hits[i].Score, 4);
        }

        foreach (var hit in hits)
        {
            Assert.Equal(hops[hit.Node], hit.Hops);
            Assert.Contains(hit.Seed, seeds);
            Assert.Equal(hit.Score, (options.SimilarityWeight * hit.Similarity) + (options.ProximityWeight * hit.Proximity) + (options.ConfidenceWeight * hit.Confidence), 9);
            AssertRealPath(g, hit, options);
        }
    }

    [Fact]
    public void Similarity_alone_without_hops_is_the_ann_ranking()
    {
        var data = VectorData.Random(4, 200, 8);
        var index = VectorData.Build(data);
        var graph = new KnowledgeGraph();
        for (var i = 0; i < 200; i++)
        {
            graph.InternNode($"n{i}");
        }

        var fusion = new FusionQuery(index, graph, new float[200]);
        var query = VectorData.Random(5, 1, 8)[0];
        var options = new FusionOptions { Candidates = 10, TopN = 10, Hops = 0, Ef = 200, SimilarityWeight = 1, ProximityWeight = 0, ConfidenceWeight = 0 };
        Assert.Equal(index.Search(query, 10, ef: 200).Select(h => h.Id), fusion.Run(query, options).Select(h => h.Node));
    }

    [Fact]
    public void Cosine_similarity_is_one_minus_the_distance()
    {
        var index = VectorData.Build([[1f, 0f], [1f, 1f], [0f, 1f]], DistanceMetric.Cosine);
        var graph = new KnowledgeGraph();
        for (var i = 0; i < 3; i++)
        {
            graph.InternNode($"n{i}");
        }

        var fusion = new FusionQuery(index, graph, new float[3]);
        var hits = fusion.Run([2f, 0f], new FusionOptions { Candidates = 3, Hops = 0, TopN = 3, SimilarityWeight = 1, ProximityWeight = 0, ConfidenceWeight = 0 });
        Assert.Equal([0, 1, 2], hits.Select(h => h.Node));
        Assert.Equal(1.0, hits[0].Similarity, 5);
        Assert.Equal(Math.Sqrt(0.5), hits[1].Similarity, 5);
        Assert.Equal(0.0, hits[2].Similarity, 5);
    }

    [Fact]
    public void A_trusted_neighbour_of_the_best_match_is_found_and_explained()
    {
        var index = VectorData.Build([[0f, 0f], [5f, 5f], [9f, 9f], [9f, 8f]]);
        var graph = new KnowledgeGraph();
        foreach (var name in new[] { "cat", "dog", "car", "truck" })
        {
            graph.InternNode(name);
        }

        graph.InternPredicate("related_to");
        graph.InternPredicate("spam");
        graph.AddEdge(0, 0, 1, 0.9f);
        graph.AddEdge(0, 1, 2);
        var fusion = new FusionQuery(index, graph, [0.2f, 1f, 1f, 0f]);
        var options = new FusionOptions
        {
            Candidates = 1,
            Hops = 1,
            TopN = 3,
            Filter = new EdgeFilter(PredicateSet.Of(0)),
        };
        var hits = fusion.Run([0f, 0.1f], options);
        Assert.Equal(["cat", "dog"], hits.Select(h => graph.NodeName(h.Node)));
        var dog = hits[1];
        Assert.Equal(1, dog.Hops);
        Assert.Equal(0, dog.Seed);
        Assert.Equal(new PathStep(0, 0, Direction.Out, 1), Assert.Single(dog.Path));
        var explanation = fusion.Explain(dog, options);
        Assert.Contains("cat -[related_to]-> dog", explanation, StringComparison.Ordinal);
        Assert.Contains("proximity 0.500", explanation, StringComparison.Ordinal);
    }

    private static void AssertRealPath(RandomGraph g, FusionHit hit, FusionOptions options)
    {
        Assert.Equal(hit.Hops, hit.Path.Count);
        var at = hit.Seed;
        foreach (var step in hit.Path)
        {
            var edge = g.Edges[step.EdgeId];
            Assert.True(RandomGraph.Visible(edge, options.Filter));
            Assert.Equal(edge.Predicate, step.Predicate);
            var (from, to) = step.Direction == Direction.Out ? (edge.Subject, edge.Object) : (edge.Object, edge.Subject);
            Assert.Equal((at, step.Node), (from, to));
            at = step.Node;
        }

        Assert.Equal(hit.Node, at);
    }
}
