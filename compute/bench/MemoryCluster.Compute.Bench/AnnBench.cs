using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Bench;

/// <summary>
/// Recall@10 and single-thread QPS and build time of our HNSW against C++ hnswlib (the same code hnswlib-node wraps, built
/// with -O3 -march=native), alternating the two sides round by round so that the machine's load falls on both alike, and
/// against hnswlib-node once.
/// </summary>
internal static class AnnBench
{
    public const int K = 10;
    public const int M = 16;
    public const int EfConstruction = 200;

    /// <summary>A fine grid near recall 0.95-0.99, where the sides are compared by interpolating along each curve.</summary>
    public static readonly int[] EfValues = [10, 12, 14, 16, 20, 24, 32, 40, 60, 80, 120, 160];

    private static readonly double[] RecallTargets = [0.95, 0.98, 0.99];

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

        Log.Line($"ann: {dataset}: {train.Count} x {train.Dim} train, {test.Count} queries; {settings.Rounds} rounds alternating ours and C++ hnswlib");
        var sw = Stopwatch.StartNew();
        var (truth, truthPath) = VectorFiles.GroundTruth(dir, train, test, K, settings.CacheDir);
        Log.Line($"ann: ground truth ready in {sw.Elapsed.TotalSeconds:F1} s ({truthPath})");

        var ours = new List<Curve>();
        var cpp = new List<Curve>();
        double? gtAgreement = null;
        HnswIndex? index = null;
        for (var round = 1; round <= settings.Rounds; round++)
        {
            index = null;
            GC.Collect();
            var (built, curve) = RunOurs(train, test, truth);
            index = built;
            ours.Add(curve);
            Log.Line($"ann: round {round}: ours built in {curve.BuildSeconds:F2} s, {Describe(curve)}");
            if (settings.CppPeer is not null)
            {
                var peer = RunPeer("C++ hnswlib", settings.CppPeer, null, [trainPath, testPath, truthPath]);
                gtAgreement ??= peer["gt_agreement"]!.GetValue<double>();
                cpp.Add(Curve.Parse(peer));
                Log.Line($"ann: round {round}: C++ hnswlib built in {cpp[^1].BuildSeconds:F2} s, {Describe(cpp[^1])}");
            }
        }

        var rssNow = Log.RssBytes();
        var vectorBytes = (long)train.Count * train.Dim * sizeof(float);
        var budget = vectorBytes + ((long)train.Count * M * 10);
        Log.Line($"ann: index {index!.MemoryBytes / 1048576.0:F1} MB (vectors {vectorBytes / 1048576.0:F1} MB, budget vectors + M*10 B/vector = {budget / 1048576.0:F1} MB); process peak RSS {Log.PeakRssBytes() / 1048576.0:F0} MB, now {rssNow / 1048576.0:F0} MB");
        if (gtAgreement is { } agreement)
        {
            Log.Line($"ann: ground truth cross-checked by the C++ peer's brute force on the first 100 queries: {agreement:P2} of the ids agree");
            if (agreement < 0.999)
            {
                throw new InvalidDataException($"The ground truth in {truthPath} disagrees with an independent brute force ({agreement:P2} of ids agree): every recall figure would be wrong.");
            }
        }

        ReportSnapshot(index, test);
        ReportParallelBuild(train, test, truth);
        Curve? node = null;
        if (settings.PeerDir is null)
        {
            Log.Line("ann: no peer directory given; skipping hnswlib-node");
        }
        else
        {
            var peer = RunPeer("hnswlib-node", "node", settings.PeerDir, [Path.Combine(settings.PeerDir, "hnsw_peer.js"), trainPath, testPath, truthPath]);
            node = Curve.Parse(peer);
            Log.Line($"ann: hnswlib-node built in {node.BuildSeconds:F2} s, {Describe(node)}; process RSS {peer["rss_mb"]?.GetValue<double>():F0} MB");
        }

        var ourMedian = Curve.Median(ours);
        var cppMedian = cpp.Count > 0 ? Curve.Median(cpp) : null;
        var summaryPoints = new JsonArray();
        for (var i = 0; i < EfValues.Length; i++)
        {
            Log.Line($"ann: ef={EfValues[i],4} recall={ourMedian.Recall[i]:F4} qps={ourMedian.Qps[i],8:F0} | C++ recall={cppMedian?.Recall[i]:F4} qps={cppMedian?.Qps[i]:F0} | hnswlib-node recall={node?.Recall[i]:F4} qps={node?.Qps[i]:F0}");
            summaryPoints.Add(new JsonObject
            {
                ["ef"] = EfValues[i],
                ["recall"] = Math.Round(ourMedian.Recall[i], 4),
                ["qps"] = Math.Round(ourMedian.Qps[i], 1),
                ["cpp_recall"] = cppMedian is null ? null : Math.Round(cppMedian.Recall[i], 4),
                ["cpp_qps"] = cppMedian is null ? null : Math.Round(cppMedian.Qps[i], 1),
                ["peer_recall"] = node is null ? null : Math.Round(node.Recall[i], 4),
                ["peer_qps"] = node is null ? null : Math.Round(node.Qps[i], 1),
            });
        }

        var atRecall = new JsonArray();
        foreach (var target in RecallTargets)
        {
            var a = ourMedian.QpsAt(target);
            var b = cppMedian?.QpsAt(target);
            var c = node?.QpsAt(target);

            // The rounds' own ratios too: each pairs two runs made one after the other.
            List<double> paired = cpp.Count == 0 ? [] : ours.Zip(cpp, (x, y) => x.QpsAt(target) / y.QpsAt(target)).OfType<double>().Order().ToList();
            Log.Line($"ann: at recall {target:F2}: ours {Format(a)} qps, C++ hnswlib {Format(b)} qps (ratio {Format(a / b, "F2")}; per round {string.Join(", ", paired.Select(r => r.ToString("F2", CultureInfo.InvariantCulture)))}), hnswlib-node {Format(c)} qps (ratio {Format(a / c, "F2")})");
            atRecall.Add(new JsonObject
            {
                ["recall"] = target,
                ["qps"] = Round(a, 1),
                ["cpp_qps"] = Round(b, 1),
                ["peer_qps"] = Round(c, 1),
                ["ratio_cpp"] = Round(a / b, 3),
                ["ratio_cpp_rounds_median"] = paired.Count == 0 ? null : Math.Round(Log.Percentile(paired, 0.5), 3),
                ["ratio_peer"] = Round(a / c, 3),
            });
        }

        var buildRatio = cppMedian is null ? (double?)null : ourMedian.BuildSeconds / cppMedian.BuildSeconds;
        Log.Line($"ann: build (median of {ours.Count}) {ourMedian.BuildSeconds:F2} s vs C++ hnswlib {Format(cppMedian?.BuildSeconds, "F2")} s (ratio {Format(buildRatio, "F2")}), hnswlib-node {Format(node?.BuildSeconds, "F2")} s");
        var summary = new JsonObject
        {
            ["dataset"] = dataset,
            ["n"] = train.Count,
            ["dim"] = train.Dim,
            ["rounds"] = ours.Count,
            ["build_s"] = Math.Round(ourMedian.BuildSeconds, 2),
            ["cpp_build_s"] = Round(cppMedian?.BuildSeconds, 2),
            ["cpp_build_ratio"] = Round(buildRatio, 3),
            ["peer_build_s"] = Round(node?.BuildSeconds, 2),
            ["memory_mb"] = Math.Round(index.MemoryBytes / 1048576.0, 1),
            ["cpp_gt_agreement"] = Round(gtAgreement, 4),
            ["at_recall"] = atRecall,
            ["points"] = summaryPoints,
        };
        return (summary, index, Enumerable.Range(0, train.Count).ToArray(), test);
    }

    private static string Describe(Curve curve)
        => $"qps at recall 0.98 {Format(curve.QpsAt(0.98))}";

    private static string Format(double? value, string format = "F0")
        => value?.ToString(format, CultureInfo.InvariantCulture) ?? "n/a";

    private static double? Round(double? value, int digits) => value is { } v ? Math.Round(v, digits) : null;

    /// <summary>One side's build and its points: single thread, 2 s of warm-up, then each ef over whole passes of the queries for at least 1 s.</summary>
    private static (HnswIndex Index, Curve Curve) RunOurs(Matrix<float> train, Matrix<float> test, Matrix<int> truth)
    {
        var sw = Stopwatch.StartNew();
        var index = new HnswIndex(Options(train));
        for (var i = 0; i < train.Count; i++)
        {
            index.Add(i, train.Row(i));
        }

        var buildSeconds = sw.Elapsed.TotalSeconds;

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

        var recall = new double[EfValues.Length];
        var qps = new double[EfValues.Length];
        for (var e = 0; e < EfValues.Length; e++)
        {
            var found = new int[test.Count * K];
            var searches = 0L;
            sw.Restart();
            do
            {
                for (var q = 0; q < test.Count; q++)
                {
                    var n = index.Search(test.Row(q), K, hits, EfValues[e]);
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

            qps[e] = searches / sw.Elapsed.TotalSeconds;
            recall[e] = Recall(found, truth, test.Count);
        }

        return (index, new Curve(buildSeconds, recall, qps));
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
        var index = new HnswIndex(Options(train));
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

    /// <summary>The index settings every build of the benchmark uses, the peers' too.</summary>
    private static HnswOptions Options(Matrix<float> train)
        => new() { Dimensions = train.Dim, M = M, EfConstruction = EfConstruction, InitialCapacity = train.Count, Seed = 100 };

    /// <summary>Runs a peer process on the same files and parameters; it prints one JSON object (build_s, points).</summary>
    private static JsonNode RunPeer(string name, string program, string? workingDirectory, string[] files)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        foreach (var arg in files.Concat(
        [
            M.ToString(CultureInfo.InvariantCulture), EfConstruction.ToString(CultureInfo.InvariantCulture),
            K.ToString(CultureInfo.InvariantCulture), string.Join(',', EfValues),
        ]))
        {
            start.ArgumentList.Add(arg);
        }

        Log.Line($"ann: running {name} on the same data");
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{name} failed with exit code {process.ExitCode}.");
        }

        return JsonNode.Parse(output.Trim()) ?? throw new InvalidDataException($"{name} printed no JSON.");
    }

    /// <summary>One side's build time and its recall and QPS at each of <see cref="EfValues"/>.</summary>
    private sealed record Curve(double BuildSeconds, double[] Recall, double[] Qps)
    {
        public static Curve Parse(JsonNode peer)
        {
            var points = peer["points"]!.AsArray();
            if (points.Count != EfValues.Length)
            {
                throw new InvalidDataException($"A peer reported {points.Count} points for {EfValues.Length} ef values.");
            }

            return new Curve(
                peer["build_s"]!.GetValue<double>(),
                [.. points.Select(p => p!["recall"]!.GetValue<double>())],
                [.. points.Select(p => p!["qps"]!.GetValue<double>())]);
        }

        /// <summary>The median of each figure over the rounds.</summary>
        public static Curve Median(IReadOnlyList<Curve> rounds)
        {
            return new Curve(
                Log.Percentile([.. rounds.Select(r => r.BuildSeconds)], 0.5),
                [.. Enumerable.Range(0, EfValues.Length).Select(i => Log.Percentile([.. rounds.Select(r => r.Recall[i])], 0.5))],
                [.. Enumerable.Range(0, EfValues.Length).Select(i => Log.Percentile([.. rounds.Select(r => r.Qps[i])], 0.5))]);
        }

        /// <summary>QPS at a recall, interpolated (log QPS, linear recall) between the two points around it; null when never reached.</summary>
        public double? QpsAt(double target)
        {
            for (var i = 0; i < Recall.Length; i++)
            {
                if (Recall[i] >= target)
                {
                    if (i == 0)
                    {
                        return Qps[0];
                    }

                    var t = (target - Recall[i - 1]) / (Recall[i] - Recall[i - 1]);
                    return Math.Exp(Math.Log(Qps[i - 1]) + (t * (Math.Log(Qps[i]) - Math.Log(Qps[i - 1]))));
                }
            }

            return null;
        }
    }
}
