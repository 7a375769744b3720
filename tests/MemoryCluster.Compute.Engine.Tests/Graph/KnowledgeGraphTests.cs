using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Graph;

namespace MemoryCluster.Compute.Engine.Tests.Graph;

public sealed class KnowledgeGraphTests
{
    [Property(MaxTest = 100)]
    public void Compaction_changes_no_answer(int seed)
    {
        var g = new RandomGraph(seed);
        var before = Enumerable.Range(0, g.NodeCount)
            .Select(v => g.Graph.Neighbours(v, Direction.Both, new EdgeFilter(AsOf: 20)).OrderBy(n => (n.EdgeId, n.Direction)).ToList()).ToList();
        g.Graph.Compact();
        Assert.Equal(0, g.Graph.DeltaEdgeCount);
        for (var v = 0; v < g.NodeCount; v++)
        {
            Assert.Equal(before[v], g.Graph.Neighbours(v, Direction.Both, new EdgeFilter(AsOf: 20)).OrderBy(n => (n.EdgeId, n.Direction)).ToList());
        }
    }

    [Fact]
    public void Strings_are_interned_once()
    {
        var graph = new KnowledgeGraph();
        var first = graph.AddEdge("alice", "knows", "bob");
        var second = graph.AddEdge("bob", "knows", "alice");
        Assert.Equal(2, graph.NodeCount);
        Assert.Equal(1, graph.PredicateCount);
        Assert.NotEqual(first, second);
        Assert.True(graph.TryGetNode("bob", out var bob));
        Assert.Equal("bob", graph.NodeName(bob));
        Assert.False(graph.TryGetNode("carol", out _));
    }

    [Fact]
    public void A_superseded_edge_is_gone_now_but_visible_in_the_past()
    {
        var graph = new KnowledgeGraph();
        var old = graph.AddEdge("alice", "works_at", "acme", validFrom: 100);
        graph.TryGetNode("alice", out var alice);
        var worksAt = graph.InternPredicate("works_at");
        var globex = graph.InternNode("globex");
        var replacement = graph.Replace(old, alice, worksAt, globex, at: 200);

        Assert.Equal([replacement], graph.Neighbours(alice, Direction.Out).Select(n => n.EdgeId));
        Assert.Equal([old], graph.Neighbours(alice, Direction.Out, new EdgeFilter(AsOf: 150)).Select(n => n.EdgeId));
        Assert.Equal([replacement], graph.Neighbours(alice, Direction.Out, new EdgeFilter(AsOf: 200)).Select(n => n.EdgeId));
        Assert.Empty(graph.Neighbours(alice, Direction.Out, new EdgeFilter(AsOf: 50)));
        Assert.Equal((100L, 200L), graph.ValidityOf(old));
        Assert.Throws<ArgumentOutOfRangeException>(() => graph.Supersede(old, 300));
    }

    [Fact]
    public void A_deleted_edge_is_seen_by_no_query_current_or_as_of_and_leaves_its_identity_component()
    {
        var graph = new KnowledgeGraph();
        graph.SetIdentityPredicates(PredicateSet.Of(graph.InternPredicate("sameAs")));
        var kept = graph.AddEdge("a", "knows", "b", validFrom: 100);
        var gone = graph.AddEdge("a", "knows", "c", validFrom: 100);
        var link = graph.AddEdge("a", "sameAs", "c");
        graph.TryGetNode("a", out var a);
        graph.TryGetNode("c", out var c);
        Assert.Equal(graph.IdentityComponentOf(a), graph.IdentityComponentOf(c));

        graph.Delete(gone);
        graph.Delete(link);
        Assert.Equal([kept], graph.Neighbours(a, Direction.Out).Select(n => n.EdgeId));
        Assert.Equal([kept], graph.Neighbours(a, Direction.Out, new EdgeFilter(AsOf: 150)).Select(n => n.EdgeId));
        Assert.Empty(graph.Neighbours(c, Direction.In));
        Assert.NotEqual(graph.IdentityComponentOf(a), graph.IdentityComponentOf(c));
    }

    [Fact]
    public void Predicate_filters_and_limits_apply_to_neighbours()
    {
        var graph = new KnowledgeGraph();
        graph.AddEdge("a", "x", "b");
        graph.AddEdge("a", "y", "c");
        graph.AddEdge("a", "x", "d");
        graph.AddEdge("e", "x", "a");
        graph.TryGetNode("a", out var a);
        graph.TryGetPredicate("x", out var x);
        var onlyX = new EdgeFilter(PredicateSet.Of(x));
        Assert.Equal(["b", "d"], graph.Neighbours(a, Direction.Out, onlyX).Select(n => graph.NodeName(n.Node)).Order());
        Assert.Equal(["e"], graph.Neighbours(a, Direction.In, onlyX).Select(n => graph.NodeName(n.Node)));
        Assert.Equal(3, graph.Neighbours(a, Direction.Both, onlyX).Count);
        Assert.Single(graph.Neighbours(a, Direction.Both, onlyX, limit: 1));
    }

    [Fact]
    public void Invalid_edges_are_refused()
    {
        var graph = new KnowledgeGraph();
        Assert.Throws<ArgumentOutOfRangeException>(() => graph.AddEdge("a", "p", "b", confidence: 1.5f));
        Assert.Throws<ArgumentException>(() => graph.AddEdge("a", "p", "b", validFrom: 5, validTo: 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => graph.AddEdge(0, 0, 99));
        Assert.Throws<ArgumentOutOfRangeException>(() => graph.Edges(0, Direction.Unknown));
    }

    [Fact]
    public void The_delta_is_merged_once_it_passes_the_threshold()
    {
        var graph = new KnowledgeGraph();
        for (var i = 0; i < 5000; i++)
        {
            graph.AddEdge($"n{i % 700}", "p", $"n{(i * 7) % 700}");
        }

        Assert.True(graph.DeltaEdgeCount < 5000);
        var total = 0;
        for (var v = 0; v < graph.NodeCount; v++)
        {
            total += graph.Neighbours(v, Direction.Out).Count;
        }

        Assert.Equal(5000, total);
    }

    [Property(MaxTest = 100)]
    public void Identity_components_follow_identity_links_incrementally(int seed)
    {
        var random = new Random(seed);
        var graph = new KnowledgeGraph();
        var n = random.Next(2, 40);
        for (var i = 0; i < n; i++)
        {
            graph.InternNode($"n{i}");
        }

        var sameAs = graph.InternPredicate("same_as");
        var other = graph.InternPredicate("likes");
        graph.SetIdentityPredicates(PredicateSet.Of(sameAs));
        var identityEdges = new List<int>();
        for (var i = 0; i < random.Next(0, 60); i++)
        {
            var identity = random.Next(3) == 0;
            var edge = graph.AddEdge(random.Next(n), identity ? sameAs : other, random.Next(n));
            if (identity)
            {
                identityEdges.Add(edge);
            }

            AssertMatchesWeakComponents(graph, sameAs);
        }

        if (identityEdges.Count > 0)
        {
            graph.Supersede(identityEdges[random.Next(identityEdges.Count)], 10);
            AssertMatchesWeakComponents(graph, sameAs);
        }
    }

    [Fact]
    public void Incremental_components_count_and_size()
    {
        var components = new IncrementalComponents();
        components.EnsureSize(5);
        Assert.Equal(5, components.ComponentCount);
        Assert.True(components.Union(0, 1));
        Assert.True(components.Union(1, 2));
        Assert.False(components.Union(0, 2));
        Assert.True(components.Union(7, 8));
        Assert.Equal(9, components.Count);
        Assert.Equal(6, components.ComponentCount);
        Assert.Equal(3, components.SizeOf(2));
        Assert.Equal(components.Find(0), components.Find(2));
        Assert.NotEqual(components.Find(0), components.Find(3));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_components_members_are_exactly_the_elements_with_its_root(int seed)
    {
        var random = new Random(seed);
        var components = new IncrementalComponents();
        const int n = 300;
        components.EnsureSize(n);
        for (var step = 0; step < 400; step++)
        {
            components.Union(random.Next(n), random.Next(n + 20)); // some beyond the tracked size: it grows
            if (step % 50 == 0)
            {
                foreach (var x in new[] { random.Next(components.Count), random.Next(components.Count) })
                {
                    var members = new List<int>();
                    components.AddMembers(x, members);
                    var expected = Enumerable.Range(0, components.Count).Where(y => components.Find(y) == components.Find(x)).ToList();
                    Assert.Equal(x, members[0]);
                    Assert.Equal(expected, members.Order());
                    Assert.Equal(components.SizeOf(x), members.Count);
                }
            }
        }
    }

    [Fact]
    public void Memory_per_edge_is_reported_without_strings()
    {
        var graph = new KnowledgeGraph();
        for (var i = 0; i < 1000; i++)
        {
            graph.AddEdge($"n{i}", "p", $"n{(i + 1) % 1000}");
        }

        graph.Compact();

        // 16 bytes of adjacency (two directions) + 12 of attributes per edge, 8 per node for offsets, plus the union–find.
        Assert.Equal((1000 * 28) + (2 * 1001 * 4), graph.MemoryBytes);
    }

    private static void AssertMatchesWeakComponents(KnowledgeGraph graph, int sameAs)
    {
        var weak = GraphAlgorithms.WeaklyConnectedComponents(graph, new EdgeFilter(PredicateSet.Of(sameAs)));
        Assert.Equal(weak.Count, graph.IdentityComponentCount);
        for (var a = 0; a < graph.NodeCount; a++)
        {
            for (var b = a + 1; b < graph.NodeCount; b++)
            {
                Assert.Equal(weak.Labels[a] == weak.Labels[b], graph.IdentityComponentOf(a) == graph.IdentityComponentOf(b));
            }
        }
    }
}
