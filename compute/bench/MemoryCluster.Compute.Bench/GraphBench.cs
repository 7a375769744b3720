using System.Diagnostics;
using System.Text.Json.Nodes;
using MemoryCluster.Compute.Engine.Graph;
using Npgsql;
using NpgsqlTypes;

namespace MemoryCluster.Compute.Bench;

/// <summary>3-hop neighbourhoods in memory vs a recursive CTE on PostgreSQL 15; components and PageRank.</summary>
internal static class GraphBench
{
    private const int Starts = 100;
    private const int Hops = 3;

    private const string KHopSql = """
        WITH RECURSIVE walk(node, depth) AS (
            SELECT $1::int, 0
          UNION
            SELECT t.o, w.depth + 1 FROM walk w JOIN triples t ON t.s = w.node WHERE w.depth < 3
        )
        SELECT count(DISTINCT node) FROM walk
        """;

    public static JsonObject Run(BenchSettings settings)
    {
        var path = settings.GraphFile ?? GraphFiles.PrepareWordNet(settings.CacheDir);
        var dataset = settings.GraphFile is null ? "wordnet" : Path.GetFileNameWithoutExtension(path);
        var sw = Stopwatch.StartNew();
        var graph = GraphFiles.Load(path);
        Log.Line($"graph: {dataset}: {graph.NodeCount} nodes, {graph.EdgeCount} edges, {graph.PredicateCount} predicates, loaded in {sw.Elapsed.TotalSeconds:F1} s");
        Log.Line($"graph: memory {graph.MemoryBytes / 1048576.0:F1} MB without strings = {(double)graph.MemoryBytes / graph.EdgeCount:F1} bytes per edge (goal <= 40)");

        var random = new Random(7);
        var starts = Enumerable.Range(0, Starts).Select(_ => random.Next(graph.NodeCount)).ToArray();
        // Warm-up for at least two seconds, as the ANN section does: tiered compilation recompiles hot code only after
        // 100 ms without new methods, and 200 calls (1-2 ms) left the timed calls in unoptimised code (about 65 ns per
        // node reached instead of 14; docs/compute-engine.md).
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromSeconds(2))
        {
            GraphAlgorithms.KHop(graph, random.Next(graph.NodeCount), Hops, Direction.Out);
        }

        var engineCounts = new int[Starts];
        var engineMs = new List<double>();
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Starts; i++)
        {
            var t = Stopwatch.GetTimestamp();
            engineCounts[i] = GraphAlgorithms.KHop(graph, starts[i], Hops, Direction.Out).Count;
            engineMs.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        var allocatedPerCall = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / (double)Starts;
        var sorted = engineCounts.Order().ToList();
        var (p50, p95) = (Log.Percentile(engineMs, 0.5), Log.Percentile(engineMs, 0.95));
        Log.Line($"graph: engine 3-hop p50 {p50:F4} ms, p95 {p95:F4} ms (nodes reached: median {sorted[sorted.Count / 2]}, mean {engineCounts.Average():F0}, max {sorted[^1]}; {allocatedPerCall:F0} bytes allocated per call)");

        var (sqlP50, sqlP95, sqlMs, sqlFloorMs) = RunSql(settings, graph, starts, engineCounts);
        if (sqlP50 is not null)
        {
            Log.Line($"graph: recursive CTE 3-hop p50 {sqlP50:F3} ms, p95 {sqlP95:F3} ms; engine is {sqlP50 / p50:F0}x faster at p50, {sqlP95 / p95:F0}x at p95 (goal >= 100x)");
            ReportBySize(engineCounts, engineMs, sqlMs!, sqlFloorMs!.Value);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        sw.Restart();
        var weak = GraphAlgorithms.WeaklyConnectedComponents(graph);
        var componentsMs = sw.Elapsed.TotalMilliseconds;
        var componentsAlloc = GC.GetAllocatedBytesForCurrentThread() - allocated;
        sw.Restart();
        var strong = GraphAlgorithms.StronglyConnectedComponents(graph);
        var sccMs = sw.Elapsed.TotalMilliseconds;
        allocated = GC.GetAllocatedBytesForCurrentThread();
        sw.Restart();
        var rank = GraphAlgorithms.PageRank(graph);
        var pagerankMs = sw.Elapsed.TotalMilliseconds;
        var pagerankAlloc = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Log.Line($"graph: weak components {weak.Count} in {componentsMs:F1} ms ({componentsAlloc / 1048576.0:F1} MB allocated); strong components {strong.Count} in {sccMs:F1} ms");
        Log.Line($"graph: PageRank (damping 0.85, tolerance 1e-9) in {pagerankMs:F1} ms ({pagerankAlloc / 1048576.0:F1} MB allocated); top node {graph.NodeName(Array.IndexOf(rank, rank.Max()))}");

        sw.Restart();
        var embedding = TopologyEmbedding.FastRandomProjection(graph, new FastRpOptions { Dimensions = 64 });
        Log.Line($"graph: FastRP 64-d embedding of every node in {sw.Elapsed.TotalMilliseconds:F0} ms ({embedding.Length * 4L / 1048576.0:F1} MB)");

        return new JsonObject
        {
            ["dataset"] = dataset,
            ["nodes"] = graph.NodeCount,
            ["edges"] = graph.EdgeCount,
            ["khop3_p50_ms"] = Math.Round(p50, 4),
            ["khop3_p95_ms"] = Math.Round(p95, 4),
            ["sql_khop3_p50_ms"] = sqlP50 is null ? null : Math.Round(sqlP50.Value, 3),
            ["sql_khop3_p95_ms"] = sqlP95 is null ? null : Math.Round(sqlP95.Value, 3),
            ["components_ms"] = Math.Round(componentsMs, 1),
            ["pagerank_ms"] = Math.Round(pagerankMs, 1),
        };
    }

    /// <summary>
    /// Why the ratio depends on the graph: each side's time as a fixed cost plus a cost per node reached (least squares
    /// over the starts), and the ratio at the median start by size of its neighbourhood.
    /// </summary>
    private static void ReportBySize(int[] counts, List<double> engineMs, List<double> sqlMs, double sqlFloorMs)
    {
        static (double Fixed, double PerNode) Fit(int[] x, List<double> y)
        {
            double n = x.Length, sx = x.Sum(v => (double)v), sy = y.Sum(), sxx = x.Sum(v => (double)v * v), sxy = x.Select((v, i) => v * y[i]).Sum();
            var slope = ((n * sxy) - (sx * sy)) / ((n * sxx) - (sx * sx));
            return ((sy - (slope * sx)) / n, slope);
        }

        var engine = Fit(counts, engineMs);
        var sql = Fit(counts, sqlMs);
        Log.Line($"graph: time = fixed + per node reached: engine {engine.Fixed * 1000:F2} us + {engine.PerNode * 1e6:F1} ns/node, SQL {sql.Fixed * 1000:F0} us + {sql.PerNode * 1e6:F0} ns/node; a prepared SELECT of one value takes {sqlFloorMs * 1000:F0} us at p50 (the statement's floor)");
        foreach (var (low, high) in new[] { (1, 50), (51, 500), (501, int.MaxValue) })
        {
            var picked = Enumerable.Range(0, counts.Length).Where(i => counts[i] >= low && counts[i] <= high).ToList();
            if (picked.Count == 0)
            {
                continue;
            }

            var e = Log.Percentile(picked.Select(i => engineMs[i]).ToList(), 0.5);
            var q = Log.Percentile(picked.Select(i => sqlMs[i]).ToList(), 0.5);
            Log.Line($"graph: starts reaching {low}-{(high == int.MaxValue ? "more" : high.ToString(System.Globalization.CultureInfo.InvariantCulture))} nodes: {picked.Count}, engine p50 {e * 1000:F2} us, SQL p50 {q * 1000:F0} us, {q / e:F0}x");
        }
    }

    private static (double? P50, double? P95, List<double>? Times, double? FloorMs) RunSql(BenchSettings settings, KnowledgeGraph graph, int[] starts, int[] engineCounts)
    {
        if (!File.Exists(Path.Combine(settings.PgBin, "postgres")))
        {
            Log.Line($"graph: no PostgreSQL at {settings.PgBin}; skipping the recursive CTE");
            return (null, null, null, null);
        }

        var sw = Stopwatch.StartNew();
        using var server = PostgresServer.Start(settings.PgBin);
        using var connection = new NpgsqlConnection(server.ConnectionString);
        connection.Open();
        Execute(connection, "CREATE TABLE triples (s int NOT NULL, p int NOT NULL, o int NOT NULL)");
        using (var import = connection.BeginBinaryImport("COPY triples (s, p, o) FROM STDIN (FORMAT BINARY)"))
        {
            for (var node = 0; node < graph.NodeCount; node++)
            {
                foreach (var e in graph.Edges(node, Direction.Out))
                {
                    import.StartRow();
                    import.Write(node, NpgsqlDbType.Integer);
                    import.Write(graph.PredicateOf(e.EdgeId), NpgsqlDbType.Integer);
                    import.Write(e.Node, NpgsqlDbType.Integer);
                }
            }

            import.Complete();
        }

        Execute(connection, "CREATE INDEX triples_spo ON triples (s, p, o)");
        Execute(connection, "CREATE INDEX triples_pos ON triples (p, o, s)");
        Execute(connection, "CREATE INDEX triples_osp ON triples (o, s, p)");
        Execute(connection, "VACUUM ANALYZE triples");
        Log.Line($"graph: PostgreSQL 15 loaded with SPO/POS/OSP indexes in {sw.Elapsed.TotalSeconds:F1} s");

        using var command = new NpgsqlCommand(KHopSql, connection);
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer });
        command.Prepare();
        var random = new Random(8);
        for (var i = 0; i < 50; i++)
        {
            command.Parameters[0].Value = random.Next(graph.NodeCount);
            command.ExecuteScalar();
        }

        var times = new List<double>();
        for (var i = 0; i < starts.Length; i++)
        {
            command.Parameters[0].Value = starts[i];
            var t = Stopwatch.GetTimestamp();
            var count = Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            if (count != engineCounts[i])
            {
                throw new InvalidOperationException($"3-hop from node {starts[i]}: SQL counts {count} nodes, the engine {engineCounts[i]}.");
            }
        }

        Log.Line("graph: every SQL 3-hop count equals the engine's");

        // The floor of any statement on this connection: a prepared SELECT of its parameter, timed the same way.
        using var floor = new NpgsqlCommand("SELECT $1::int", connection);
        floor.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer });
        floor.Prepare();
        var floorTimes = new List<double>();
        for (var i = 0; i < 50 + starts.Length; i++)
        {
            floor.Parameters[0].Value = i;
            var t = Stopwatch.GetTimestamp();
            floor.ExecuteScalar();
            if (i >= 50)
            {
                floorTimes.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
        }

        return (Log.Percentile(times, 0.5), Log.Percentile(times, 0.95), times, Log.Percentile(floorTimes, 0.5));
    }

    private static void Execute(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }
}
