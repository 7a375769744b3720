using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

// The operator's figures (issue: "Reconcile latency p50/p99 against the double; operator memory with 100
// MemoryClusters; writes per no-op resync"). The real CLI runs `memorycluster operator run` as a child process
// against the Kubernetes API double over HTTP; the instance managers' /status is served here (healthy 3-member
// clusters), so every cluster reaches Ready.
//   dotnet run -c Release --project operator/bench/MemoryCluster.Operator.Bench -- [CLUSTERS] [NOOP_SECONDS] [CLI]
var clusters = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100;
var noopSeconds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 30;
var root = FindRoot();
var cli = args.Length > 2 ? args[2] : Path.Combine(root, "bin", "memorycluster");
if (!File.Exists(cli))
{
    Console.Error.WriteLine($"bench-operator: {cli} does not exist: run `make build` first");
    return 2;
}

using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(20));
var ct = stop.Token;
await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromSeconds(30) }, ct);
using var client = new KubeApiClient(new KubeClientSettings { Server = server.Url, RequestTimeout = TimeSpan.FromSeconds(30) });
var crd = KubernetesJson.Deserialize<V1CustomResourceDefinition>(YamlDocuments.FirstAsJson(await File.ReadAllTextAsync(Path.Combine(root, "crds", "memorycluster.io_memoryclusters.yaml"), ct))!.ToJsonString());
await client.CreateAsync(ResourceTypes.CustomResourceDefinition, crd, ct);

await using var managers = await ServeManagersAsync(ct);
var managersUrl = managers.Urls.First();
var kubeconfig = Path.Combine(Path.GetTempPath(), $"memorycluster-bench-{Environment.ProcessId}.kubeconfig");
await File.WriteAllTextAsync(kubeconfig, server.KubeconfigYaml(), ct);
var metricsPort = FreePort();
var healthPort = FreePort();
var start = new ProcessStartInfo(cli)
{
    ArgumentList =
    {
        "operator", "run", "--kubeconfig", kubeconfig, "--instance-url", managersUrl + "/{namespace}/{pod}/",
        "--metrics-port", metricsPort.ToString(CultureInfo.InvariantCulture), "--health-port", healthPort.ToString(CultureInfo.InvariantCulture),
    },
    RedirectStandardOutput = true,
    RedirectStandardError = true,
};
using var operatorProcess = Process.Start(start) ?? throw new InvalidOperationException("could not start " + cli);
var log = Path.Combine(Path.GetTempPath(), $"memorycluster-bench-{Environment.ProcessId}-operator.log");
var logging = Task.WhenAll(CopyAsync(operatorProcess.StandardOutput, log), CopyAsync(operatorProcess.StandardError, log + ".err"));
using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
try
{
    await WaitAsync(async () => (await TryGetAsync(http, $"http://127.0.0.1:{healthPort}/readyz")) is not null, "the operator's /readyz", TimeSpan.FromSeconds(60), ct);
    var baseline = Rss(operatorProcess.Id);
    Console.WriteLine($"operator pid {operatorProcess.Id}: RSS {baseline / 1048576.0:0.0} MiB with no cluster; log {log}");

    // 1. Create the clusters; time each to Ready.
    var created = new Dictionary<string, long>();
    var readyAfter = new Dictionary<string, double>();
    var creating = Stopwatch.StartNew();
    await Parallel.ForAsync(0, clusters, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (i, c) =>
    {
        var name = $"c{i:D3}";
        lock (created)
        {
            created[name] = Stopwatch.GetTimestamp();
        }

        await client.CreateAsync(ResourceTypes.MemoryCluster, new MemoryClusterResource
        {
            Metadata = new ObjectMeta { Name = name, Namespace = "default" },
            Spec = new MemoryClusterSpec { Instances = 3, Compute = new ComputeSpec { Replicas = 0 } },
        }, c);
    });
    await WaitAsync(async () =>
    {
        var list = await client.ListAsync(ResourceTypes.MemoryCluster, "default", null, ct);
        foreach (var cluster in list.Items)
        {
            var name = cluster.Metadata.Name!;
            if (!readyAfter.ContainsKey(name) && Conditions.Find(cluster.Status?.Conditions, ConditionTypes.Ready)?.Status == ConditionStatus.True)
            {
                readyAfter[name] = Stopwatch.GetElapsedTime(created[name]).TotalMilliseconds;
            }
        }

        return readyAfter.Count == clusters;
    }, $"{clusters} clusters Ready", TimeSpan.FromMinutes(5), ct);
    Console.WriteLine($"{clusters} clusters created and Ready in {creating.Elapsed.TotalSeconds:0.0} s; create→Ready p50 {Percentile(readyAfter.Values, 50):0} ms, p99 {Percentile(readyAfter.Values, 99):0} ms");

    // 2. Memory with every cluster and its objects cached, after a settle.
    await Task.Delay(TimeSpan.FromSeconds(5), ct);
    var rss = Rss(operatorProcess.Id);
    Console.WriteLine($"operator RSS with {clusters} clusters: {rss / 1048576.0:0.0} MiB ({(rss - baseline) / 1024.0 / clusters:0} KiB per cluster over the empty process)");

    // 3. No-op resyncs: every cluster is read again every 10 s; nothing changed, so nothing may be written.
    var writesBefore = server.Writes().Values.Sum();
    var reconcilesBefore = await ReconcilesAsync(http, metricsPort);
    await Task.Delay(TimeSpan.FromSeconds(noopSeconds), ct);
    var writes = server.Writes().Values.Sum() - writesBefore;
    var reconciles = await ReconcilesAsync(http, metricsPort) - reconcilesBefore;
    Console.WriteLine($"no-op resyncs over {noopSeconds} s: {reconciles:0} reconciles, {writes} writes ({(reconciles == 0 ? 0 : writes / reconciles):0.000} per reconcile)");

    // 4. Reconcile latency: a spec change (a parameter) until the ConfigMap has it, one cluster at a time.
    var latencies = new List<double>();
    foreach (var i in Enumerable.Range(0, clusters))
    {
        var name = $"c{i:D3}";
        var value = $"{8 + (i % 8)}MB";
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 0; ; attempt++)
        {
            var current = await client.GetAsync(ResourceTypes.MemoryCluster, "default", name, ct);
            try
            {
                await client.ReplaceAsync(ResourceTypes.MemoryCluster, current with { Spec = current.Spec with { Postgres = current.Spec.Postgres with { Parameters = new Dictionary<string, string> { ["work_mem"] = value } } } }, ct);
                break;
            }
            catch (ConflictException) when (attempt < 20)
            {
                // The operator wrote the status meanwhile.
            }
        }

        await WaitAsync(async () => (await client.GetAsync(ResourceTypes.ConfigMap, "default", name + "-config", ct)).Data["postgresql.conf"].Contains(value, StringComparison.Ordinal),
            $"{name}'s ConfigMap", TimeSpan.FromSeconds(30), ct, poll: TimeSpan.FromMilliseconds(2));
        latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    var metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"), ct);
    var (d50, d99) = HistogramQuantiles(metrics, "memorycluster_operator_reconcile_duration_seconds");
    Console.WriteLine($"spec change → applied ({clusters} changes, one at a time): p50 {Percentile(latencies, 50):0.0} ms, p99 {Percentile(latencies, 99):0.0} ms");
    Console.WriteLine($"reconcile duration (histogram bucket bounds): p50 ≤ {d50 * 1000:0.#} ms, p99 ≤ {d99 * 1000:0.#} ms");
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        clusters,
        create_to_ready_p50_ms = Math.Round(Percentile(readyAfter.Values, 50)),
        create_to_ready_p99_ms = Math.Round(Percentile(readyAfter.Values, 99)),
        change_applied_p50_ms = Math.Round(Percentile(latencies, 50), 1),
        change_applied_p99_ms = Math.Round(Percentile(latencies, 99), 1),
        reconcile_p50_le_ms = d50 * 1000,
        reconcile_p99_le_ms = d99 * 1000,
        rss_empty_mib = Math.Round(baseline / 1048576.0, 1),
        rss_mib = Math.Round(rss / 1048576.0, 1),
        noop_reconciles = reconciles,
        noop_writes = writes,
    }));
    return 0;
}
finally
{
    if (!operatorProcess.HasExited)
    {
        Process.Start("kill", ["-TERM", operatorProcess.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
        if (!operatorProcess.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            operatorProcess.Kill(entireProcessTree: true);
        }
    }

    await logging;
    File.Delete(kubeconfig);
}

static async Task<WebApplication> ServeManagersAsync(CancellationToken cancellationToken)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
    var app = builder.Build();
    app.MapGet("/{ns}/{pod}/status", (string pod) => Results.Json(Healthy(pod), InstanceJson.Options));
    await app.StartAsync(cancellationToken);
    return app;
}

// A healthy member of a 3-member cluster: ordinal 0 is the primary at epoch 3, ordinal 1 leads Raft.
static StatusDocument Healthy(string pod)
{
    var cut = pod.LastIndexOf('-');
    var cluster = pod[..cut];
    var ordinal = int.Parse(pod[(cut + 1)..], CultureInfo.InvariantCulture);
    var primary = ordinal == 0;
    return new StatusDocument
    {
        Name = pod,
        Id = (ulong)ordinal + 1,
        Role = primary ? InstanceRole.Primary : InstanceRole.Replica,
        Ready = true,
        PostgresRunning = true,
        Epoch = new Epoch(3),
        Primary = cluster + "-0",
        Timeline = 2,
        LagBytes = primary ? null : 0,
        Follow = primary ? FollowState.None : FollowState.Streaming,
        Raft = new RaftStatusDocument(5, ordinal == 1 ? "leader" : "follower", cluster + "-1", [cluster + "-0", cluster + "-1", cluster + "-2"], false),
    };
}

static async Task CopyAsync(StreamReader reader, string path)
{
    await using var file = File.CreateText(path);
    await reader.BaseStream.CopyToAsync(file.BaseStream);
}

static async Task<string?> TryGetAsync(HttpClient http, string url)
{
    try
    {
        return await http.GetStringAsync(new Uri(url));
    }
    catch (HttpRequestException)
    {
        return null;
    }
}

static async Task<double> ReconcilesAsync(HttpClient http, int port)
{
    var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
    return text.Split('\n')
        .Where(l => l.StartsWith("memorycluster_operator_reconciles_total{", StringComparison.Ordinal))
        .Sum(l => double.Parse(l.Split(' ')[^1], CultureInfo.InvariantCulture));
}

// Upper bounds of the buckets that hold the 50th and 99th percentile.
static (double P50, double P99) HistogramQuantiles(string metrics, string name)
{
    var buckets = metrics.Split('\n')
        .Where(l => l.StartsWith(name + "_bucket{", StringComparison.Ordinal))
        .Select(l =>
        {
            var le = l[(l.IndexOf("le=\"", StringComparison.Ordinal) + 4)..];
            le = le[..le.IndexOf('"', StringComparison.Ordinal)];
            return (Le: le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture), Count: double.Parse(l.Split(' ')[^1], CultureInfo.InvariantCulture));
        })
        .OrderBy(b => b.Le)
        .ToList();
    var total = buckets.Count == 0 ? 0 : buckets[^1].Count;
    double At(double q) => buckets.FirstOrDefault(b => b.Count >= q * total).Le;
    return (At(0.5), At(0.99));
}

static double Percentile(IEnumerable<double> values, double p)
{
    var sorted = values.Order().ToList();
    if (sorted.Count == 0)
    {
        return double.NaN;
    }

    var rank = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
    return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
}

static long Rss(int pid)
{
    foreach (var line in File.ReadLines($"/proc/{pid}/status"))
    {
        if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
    }

    return 0;
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

static async Task WaitAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, CancellationToken cancellationToken, TimeSpan? poll = null)
{
    var deadline = Stopwatch.StartNew();
    while (!await condition())
    {
        if (deadline.Elapsed > timeout)
        {
            throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}");
        }

        await Task.Delay(poll ?? TimeSpan.FromMilliseconds(100), cancellationToken);
    }
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? throw new InvalidOperationException("Operator.sln not found");
}
