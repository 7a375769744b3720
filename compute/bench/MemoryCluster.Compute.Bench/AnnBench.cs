using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Bench;

/// <summary>Recall@10 and single-thread QPS of our HNSW against hnswlib-node on the same vectors.</summary>
internal static class AnnBench
{
    public const int K = 10;
    public const int M = 16;
    public const int EfConstruction = 200;
    public static readonly int[] EfValues = [10, 20, 40, 80, 160];

    public static (JsonObject Summary, HnswIndex Index, int[] Ids, Matrix<float> Queries) Run(BenchSettings settings)
    {
        var dir = settings.VectorsDir ?? VectorFiles.PrepareFashionMnist(settings.CacheDir);
        var dataset = settings.VectorsDir is null ? "fashion-mnist" : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
        var trainPath = Path.Combine(dir, "train.f32");
        var testPath = Path.Combine(dir, "test.f32");
        var train = VectorFiles.Read<float>(trainPath);
        var test = VectorFiles.Read<float>(testPath);
        if (train.Dim != test.Dim)
        {
            throw new InvalidDataException($"train.f32 has {train.Dim} dimensions but test.f32 has {test.Dim}.");
        }

        Log.Line($"ann: {dataset}: {train.Count} x {train.Dim} train, {test.Count} queries");
        var sw = Stopwatch.StartNew();
        var (truth, truthPath) = VectorFiles.GroundTruth(dir, train, test, K, settings.CacheDir);
        Log.Line($"ann: ground truth ready in {sw.Elapsed.TotalSeconds:F1} s ({truthPath})");

        var rssBefore = Log.RssBytes();
        sw.Restart();
        var index = new HnswIndex(new HnswOptions
        {
            Dimensions = train.Dim,
            M = M,
            EfConstruction = EfConstruction,
            InitialCapacity = train.Count,
            Seed = 100,
        });
        for (var i = 0; i < train.Count; i++)
        {
            index.Add(i, train.Row(i));
        }

        var buildSeconds = sw.Elapsed.TotalSeconds;
        var vectorBytes = (long)train.Count * train.Dim * sizeof(float);
        var budget = vectorBytes + ((long)train.Count * M * 10);
        Log.Line($"ann: built in {buildSeconds:F2} s; index {index.MemoryBytes / 1048576.0:F1} MB (vectors {vectorBytes / 1048576.0:F1} MB, budget vectors + M*10 B/vector = {budget / 1048576.0:F1} MB); process peak RSS {Log.PeakRssBytes() / 1048576.0:F0} MB (was {rssBefore / 1048576.0:F0} MB before the build)");

        // Warm up for at least two seconds so tiered JIT has settled, then time each ef over whole
        // passes of the query set until at least a second has gone by (recall from the first pass).
        var hits = new VectorHit[K];
        var warmup = Stopwatch.StartNew();
        for (var pass = 0; warmup.Elapsed < TimeSpan.FromSeconds(2); pass++)
        {
            for (var q = 0; q < test.Count; q++)
            {
                index.Search(test.Row(q), K, hits, EfValues[pass % EfValues.Length]);
            }
        }

        var points = new List<(int Ef, double Recall, double Qps)>();
        foreach (var ef in EfValues)
        {
            var found = new int[test.Count * K];
            var searches = 0L;
            sw.Restart();
            do
            {
                for (var q = 0; q < test.Count; q++)
                {
                    var n = index.Search(test.Row(q), K, hits, ef);
                    if (searches < test.Count)
                    {
                        for (var j = 0; j < n; j++)
                        {
                            found[(q * K) + j] = hits[j].Id;
                        }
                    }
                }

                searches += test.Count;
            }
            while (sw.Elapsed < TimeSpan.FromSeconds(1));

            var qps = searches / sw.Elapsed.TotalSeconds;
            points.Add((ef, Recall(found, truth, test.Count), qps));
        }

        ReportSnapshot(index, test);
        ReportParallelBuild(train, test, truth);
        var peer = RunPeer(settings, trainPath, testPath, truthPath);
        var summaryPoints = new JsonArray();
        for (var i = 0; i < points.Count; i++)
        {
            var (ef, recall, qps) = points[i];
            var peerPoint = peer?["points"]?[i];
            Log.Line($"ann: ef={ef,4} recall={recall:F4} qps={qps,8:F0} | hnswlib-node recall={peerPoint?["recall"]?.GetValue<double>():F4} qps={peerPoint?["qps"]?.GetValue<double>():F0}");
            summaryPoints.Add(new JsonObject
            {
                ["ef"] = ef,
                ["recall"] = Math.Round(recall, 4),
                ["qps"] = Math.Round(qps, 1),
                ["peer_recall"] = peerPoint is null ? null : Math.Round(peerPoint["recall"]!.GetValue<double>(), 4),
                ["peer_qps"] = peerPoint is null ? null : Math.Round(peerPoint["qps"]!.GetValue<double>(), 1),
            });
        }

        var peerBuild = peer?["build_s"]?.GetValue<double>();
        if (peer is not null)
        {
            Log.Line($"ann: build {buildSeconds:F2} s vs hnswlib-node {peerBuild:F2} s (ratio {buildSeconds / peerBuild:F2}); hnswlib-node process RSS {peer["rss_mb"]?.GetValue<double>():F0} MB");
            ReportEqualRecall(points, peer["points"]!.AsArray());
        }

        var summary = new JsonObject
        {
            ["dataset"] = dataset,
            ["n"] = train.Count,
            ["dim"] = train.Dim,
            ["build_s"] = Math.Round(buildSeconds, 2),
            ["peer_build_s"] = peerBuild is null ? null : Math.Round(peerBuild.Value, 2),
            ["memory_mb"] = Math.Round(index.MemoryBytes / 1048576.0, 1),
            ["points"] = summaryPoints,
        };
        return (summary, index, Enumerable.Range(0, train.Count).ToArray(), test);
    }

    /// <summary>Snapshot save and load times through a temporary file (deleted afterwards); the loaded index must answer alike.</summary>
    private static void ReportSnapshot(HnswIndex index, Matrix<float> test)
    {
        var path = Path.Combine(Path.GetTempPath(), $"mc-bench-{Environment.ProcessId}.hnsw");
        try
        {
            var sw = Stopwatch.StartNew();
            using (var file = File.Create(path))
            {
                index.Save(file);
            }

            var saveSeconds = sw.Elapsed.TotalSeconds;
            sw.Restart();
            HnswIndex loaded;
            using (var file = File.OpenRead(path))
            {
                loaded = HnswIndex.Load(file, index.Options);
            }

            var loadSeconds = sw.Elapsed.TotalSeconds;
            for (var q = 0; q < Math.Min(50, test.Count); q++)
            {
                if (!index.Search(test.Row(q), K, 40).SequenceEqual(loaded.Search(test.Row(q), K, 40)))
                {
                    throw new InvalidOperationException("The loaded snapshot answers differently.");
                }
            }

            Log.Line($"ann: snapshot {new FileInfo(path).Length / 1048576.0:F1} MB saved in {saveSeconds:F2} s, loaded and verified in {loadSeconds:F2} s");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The optional parallel build, for the log only: the summary's build_s is single-threaded like the peer's.</summary>
    private static void ReportParallelBuild(Matrix<float> train, Matrix<float> test, Matrix<int> truth)
    {
        var sw = Stopwatch.StartNew();
        var index = new HnswIndex(new HnswOptions { Dimensions = train.Dim, M = M, EfConstruction = EfConstruction, InitialCapacity = train.Count, Seed = 100 });
        index.AddRange(Enumerable.Range(0, train.Count).ToArray(), train.Data);
        var seconds = sw.Elapsed.TotalSeconds;
        var hits = new VectorHit[K];
        var found = new int[test.Count * K];
        for (var q = 0; q < test.Count; q++)
        {
            var n = index.Search(test.Row(q), K, hits, 20);
            for (var j = 0; j < n; j++)
            {
                found[(q * K) + j] = hits[j].Id;
            }
        }

        Log.Line($"ann: parallel build on {Environment.ProcessorCount} threads: {seconds:F2} s; recall@10 at ef 20: {Recall(found, truth, test.Count):F4}");
    }

    private static double Recall(int[] found, Matrix<int> truth, int queries)
    {
        var hits = 0;
        for (var q = 0; q < queries; q++)
        {
            var expected = truth.Row(q)[..K];
            for (var j = 0; j < K; j++)
            {
                if (expected.Contains(found[(q * K) + j]))
                {
                    hits++;
                }
            }
        }

        return (double)hits / (queries * K);
    }

    /// <summary>QPS of each side at recall 0.98 (and 0.95), interpolated along its recall/QPS curve.</summary>
    private static void ReportEqualRecall(List<(int Ef, double Recall, double Qps)> ours, JsonArray peer)
    {
        var theirs = peer.Select(p => (p!["recall"]!.GetValue<double>(), p["qps"]!.GetValue<double>())).ToList();
        foreach (var target in new[] { 0.95, 0.98, 0.99 })
        {
            var a = QpsAt(ours.Select(p => (p.Recall, p.Qps)).ToList(), target);
            var b = QpsAt(theirs, target);
            var ratio = a is null || b is null ? "n/a" : (a.Value / b.Value).ToString("F2", CultureInfo.InvariantCulture);
            Log.Line($"ann: at recall {target:F2}: ours {a?.ToString("F0", CultureInfo.InvariantCulture) ?? "not reached"} qps, hnswlib-node {b?.ToString("F0", CultureInfo.InvariantCulture) ?? "not reached"} qps, ratio {ratio}");
        }
    }

    private static double? QpsAt(List<(double Recall, double Qps)> curve, double target)
    {
        for (var i = 0; i < curve.Count; i++)
        {
            if (curve[i].Recall >= target)
            {
                if (i == 0)
                {
                    return curve[0].Qps;
                }

                var (r0, q0) = curve[i - 1];
                var (r1, q1) = curve[i];
                var t = (target - r0) / (r1 - r0);
                return Math.Exp(Math.Log(q0) + (t * (Math.Log(q1) - Math.Log(q0))));
            }
        }

        return null;
    }

    private static JsonNode? RunPeer(BenchSettings settings, string trainPath, string testPath, string truthPath)
    {
        if (settings.PeerDir is null)
        {
            Log.Line("ann: no peer directory given; skipping hnswlib-node");
            return null;
        }

        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = settings.PeerDir,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            Path.Combine(settings.PeerDir, "hnsw_peer.js"), trainPath, testPath, truthPath,
            M.ToString(CultureInfo.InvariantCulture), EfConstruction.ToString(CultureInfo.InvariantCulture),
            K.ToString(CultureInfo.InvariantCulture), string.Join(',', EfValues),
        })
        {
            start.ArgumentList.Add(arg);
        }

        Log.Line("ann: running hnswlib-node on the same data");
        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start node.");
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"hnswlib-node peer failed with exit code {process.ExitCode}.");
        }

        return JsonNode.Parse(output.Trim(), documentOptions: new JsonDocumentOptions());
    }
}
