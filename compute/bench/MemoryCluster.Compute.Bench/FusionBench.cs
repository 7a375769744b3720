using System.Diagnostics;
using System.Text.Json.Nodes;
using MemoryCluster.Compute.Engine.Fusion;
using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Bench;

/// <summary>Fusion latency: the ANN index joined to a synthetic graph over the same ids.</summary>
internal static class FusionBench
{
    public static JsonObject Run(HnswIndex index, int[] ids, Matrix<float> queries)
    {
        // Node i is vector i; each node gets three out-edges to random nodes, with random predicates and confidences.
        var graph = new KnowledgeGraph();
        foreach (var id in ids)
        {
            graph.InternNode("v" + id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var predicates = new[] { "similar_to", "part_of", "mentions" }.Select(graph.InternPredicate).ToArray();
        var random = new Random(3);
        for (var node = 0; node < ids.Length; node++)
        {
            for (var j = 0; j < 3; j++)
            {
                graph.AddEdge(node, predicates[random.Next(3)], random.Next(ids.Length), (float)(0.5 + (random.NextDouble() * 0.5)));
            }
        }

        graph.Compact();
        var confidence = GraphAlgorithms.ConfidenceFromPageRank(GraphAlgorithms.PageRank(graph));
        var fusion = new FusionQuery(index, graph, confidence);
        var options = new FusionOptions { Candidates = 10, Ef = 40, Hops = 2, TopN = 10 };
        // At least two seconds of warm-up, as the other sections, so the timed queries run optimised code.
        var warmup = Stopwatch.StartNew();
        for (var q = 0; warmup.Elapsed < TimeSpan.FromSeconds(2); q = (q + 1) % queries.Count)
        {
            fusion.Run(queries.Row(q), options);
        }

        var times = new List<double>();
        IReadOnlyList<FusionHit> last = [];
        for (var q = 0; q < queries.Count; q++)
        {
            var t = Stopwatch.GetTimestamp();
            last = fusion.Run(queries.Row(q), options);
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        var (p50, p95) = (Log.Percentile(times, 0.5), Log.Percentile(times, 0.95));
        Log.Line($"fusion: {graph.NodeCount} nodes, {graph.EdgeCount} edges; top-10 ANN (ef 40) -> 2 hops both ways -> top 10: p50 {p50:F3} ms, p95 {p95:F3} ms (goal p95 < 5 ms)");
        if (last.Count > 0)
        {
            Log.Line($"fusion: example: {fusion.Explain(last[^1], options)}");
        }

        return new JsonObject { ["p50_ms"] = Math.Round(p50, 3), ["p95_ms"] = Math.Round(p95, 3) };
    }
}
