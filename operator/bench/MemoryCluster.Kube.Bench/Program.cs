using System.Diagnostics;
using System.Globalization;
using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

// Scenario benchmark of the controller runtime against the API double (real HTTP on 127.0.0.1):
//   dotnet run -c Release --project operator/bench/MemoryCluster.Kube.Bench [-- informer N | reconcile N | serve SECONDS]
var mode = args.Length > 0 ? args[0] : "all";
var count = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 0;
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(10));

if (mode == "serve")
{
    // Development aid: run the API double for a bounded time and point kubectl at it.
    var seconds = count > 0 ? count : 60;
    await using var server = await FakeApiServer.StartAsync(null, stop.Token);
    var path = Path.Combine(Path.GetTempPath(), "memorycluster-double.kubeconfig");
    await File.WriteAllTextAsync(path, server.KubeconfigYaml(), stop.Token);
    Console.WriteLine($"serving {server.Url} for {seconds} s; KUBECONFIG={path}");
    await Task.Delay(TimeSpan.FromSeconds(seconds), stop.Token);
    File.Delete(path);
    return 0;
}

if (mode is "all" or "informer")
{
    await InformerMemoryAsync(count > 0 ? count : 5000, stop.Token);
}

if (mode is "all" or "reconcile")
{
    await ReconcileThroughputAsync(count > 0 ? count : 100, stop.Token);
}

return 0;

static async Task<(FakeApiServer Server, KubeApiClient Client)> StartAsync(CancellationToken cancellationToken)
{
    var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromSeconds(30) }, cancellationToken);
    var client = new KubeApiClient(new KubeClientSettings { Server = server.Url });
    var crdYaml = Path.Combine(FindRoot(), "crds", "memorycluster.io_memoryclusters.yaml");
    var crd = CrdFromYaml(await File.ReadAllTextAsync(crdYaml, cancellationToken));
    await client.CreateAsync(ResourceTypes.CustomResourceDefinition, crd, cancellationToken);
    return (server, client);
}

static async Task CreateClustersAsync(KubeApiClient client, int count, CancellationToken cancellationToken)
{
    var created = 0;
    await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (i, ct) =>
    {
        await client.CreateAsync(ResourceTypes.MemoryCluster, new MemoryClusterResource
        {
            Metadata = new ObjectMeta
            {
                Name = "mc-" + i.ToString("D5", CultureInfo.InvariantCulture),
                Namespace = "ns-" + (i % 10).ToString(CultureInfo.InvariantCulture),
                Labels = new Dictionary<string, string> { [ApiGroup.ClusterLabel] = "mc-" + i, ["team"] = "platform" },
            },
            Spec = new MemoryClusterSpec { Instances = i % 2 == 0 ? 3 : 5 },
        }, ct);
        Interlocked.Increment(ref created);
    });
}

static async Task InformerMemoryAsync(int count, CancellationToken cancellationToken)
{
    var (server, client) = await StartAsync(cancellationToken);
    await using (server)
    using (client)
    {
        await CreateClustersAsync(client, count, cancellationToken);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var informer = new Informer<MemoryClusterResource>(client, ResourceTypes.MemoryCluster);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watch = Stopwatch.StartNew();
        var run = informer.RunAsync(cts.Token);
        await informer.WaitForSyncAsync(cancellationToken);
        var synced = watch.Elapsed;
        await cts.CancelAsync();
        await run;
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perThousand = (after - before) * 1000.0 / informer.Count;
        Console.WriteLine($"informer: {informer.Count} MemoryClusters cached (paged list of 500, over HTTP) in {synced.TotalMilliseconds:0} ms");
        Console.WriteLine($"informer: retained heap {(after - before) / 1024.0 / 1024.0:0.00} MiB = {perThousand / 1024.0 / 1024.0:0.00} MiB per 1,000 cached objects ({perThousand / 1000.0:0} bytes per object)");
        GC.KeepAlive(informer);
    }
}

static async Task ReconcileThroughputAsync(int count, CancellationToken cancellationToken)
{
    var (server, client) = await StartAsync(cancellationToken);
    await using (server)
    using (client)
    {
        await CreateClustersAsync(client, count, cancellationToken);
        var reconciler = new StatusReconciler(client);
        var informer = new Informer<MemoryClusterResource>(client, ResourceTypes.MemoryCluster);
        var host = new ReconcilerHost<MemoryClusterResource>(informer, reconciler, new ReconcilerHostOptions { MaxConcurrentReconciles = 4 });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watch = Stopwatch.StartNew();
        var run = host.RunAsync(cts.Token);
        await WaitObservedAsync(informer, count, 1, cancellationToken);
        var first = watch.Elapsed;
        var firstReconciles = host.Reconciles;

        // Every spec changes: each cluster must be reconciled again and its status written again.
        watch.Restart();
        await Parallel.ForEachAsync(informer.List(), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (mc, ct) =>
            await client.PatchAsync(ResourceTypes.MemoryCluster, mc.Metadata.Namespace, mc.Metadata.Name!,
                new MergePatch(System.Text.Json.Nodes.JsonNode.Parse("""{"spec":{"replication":{"mode":"quorum"}}}""")!), null, ct));
        await WaitObservedAsync(informer, count, 2, cancellationToken);
        var second = watch.Elapsed;
        await cts.CancelAsync();
        await run;
        Console.WriteLine($"reconcile: {count} MemoryClusters, 4 workers, trivial reconciler writing status.observedGeneration through /status");
        Console.WriteLine($"reconcile: initial pass {first.TotalMilliseconds:0} ms, {firstReconciles} reconciles, {count / first.TotalSeconds:0} clusters/s converged");
        Console.WriteLine($"reconcile: after a spec change to all {count}: {second.TotalMilliseconds:0} ms (patch + watch + reconcile + status write), {count / second.TotalSeconds:0} clusters/s converged");
        Console.WriteLine($"reconcile: total {host.Reconciles} reconciles, {host.Errors} errors, {host.Conflicts} conflicts");
    }
}

static async Task WaitObservedAsync(Informer<MemoryClusterResource> informer, int count, long generation, CancellationToken cancellationToken)
{
    while (informer.List().Count(m => m.Status?.ObservedGeneration >= generation) < count)
    {
        await Task.Delay(5, cancellationToken);
    }
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? Directory.GetCurrentDirectory();
}

static V1CustomResourceDefinition CrdFromYaml(string yaml) =>
    KubernetesJson.Deserialize<V1CustomResourceDefinition>(YamlDocuments.FirstAsJson(yaml)!);

/// <summary>The trivial reconciler: publish observedGeneration, write nothing when it is already current.</summary>
internal sealed class StatusReconciler(IKubeApiClient client) : IReconciler<MemoryClusterResource>
{
    public async Task<ReconcileResult> ReconcileAsync(string key, MemoryClusterResource? current, CancellationToken cancellationToken)
    {
        if (current is null || current.Status?.ObservedGeneration == current.Metadata.Generation)
        {
            return ReconcileResult.Done;
        }

        await client.ReplaceStatusAsync(ResourceTypes.MemoryCluster, current with
        {
            Status = (current.Status ?? new MemoryClusterStatus()) with { ObservedGeneration = current.Metadata.Generation, Phase = Phases.Pending },
        }, cancellationToken);
        return ReconcileResult.Done;
    }
}
