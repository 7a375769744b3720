using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.Controller;

[Trait("Category", "Integration")]
public sealed class ReconcilerHostTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private sealed class RecordingReconciler(Func<string, MemoryClusterResource?, int, ReconcileResult>? decide = null) : IReconciler<MemoryClusterResource>
    {
        private readonly Lock _lock = new();
        private int _running;

        public int MaxConcurrent { get; private set; }

        public Dictionary<string, int> Calls { get; } = [];

        public List<string> Seen { get; } = [];

        public async Task<ReconcileResult> ReconcileAsync(string key, MemoryClusterResource? current, CancellationToken cancellationToken)
        {
            int call;
            lock (_lock)
            {
                _running++;
                MaxConcurrent = Math.Max(MaxConcurrent, _running);
                call = Calls[key] = Calls.GetValueOrDefault(key) + 1;
                Seen.Add(key + "@" + current?.Status?.Phase);
            }

            try
            {
                await Task.Delay(10, cancellationToken);
                return decide?.Invoke(key, current, call) ?? ReconcileResult.Done;
            }
            finally
            {
                lock (_lock)
                {
                    _running--;
                }
            }
        }

        public int CallsFor(string key)
        {
            lock (_lock)
            {
                return Calls.GetValueOrDefault(key);
            }
        }
    }

    [Fact]
    public async Task Every_object_is_reconciled_with_bounded_concurrency_and_status_only_changes_reconcile_again()
    {
        await using var h = await Harness.StartAsync();
        for (var i = 0; i < 12; i++)
        {
            await h.Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("mc" + i), None);
        }

        var reconciler = new RecordingReconciler();
        var host = new ReconcilerHost<MemoryClusterResource>(
            new Informer<MemoryClusterResource>(h.Client, ResourceTypes.MemoryCluster),
            reconciler, new ReconcilerHostOptions { MaxConcurrentReconciles = 3 });
        using var cts = new CancellationTokenSource();
        var run = host.RunAsync(cts.Token);
        await Eventually.TrueAsync(() => Enumerable.Range(0, 12).All(i => reconciler.CallsFor("default/mc" + i) >= 1), "every cluster to be reconciled");
        Assert.InRange(reconciler.MaxConcurrent, 1, 3);

        var mc = await h.Client.GetAsync(ResourceTypes.MemoryCluster, "default", "mc0", None);
        await h.Client.ReplaceStatusAsync(ResourceTypes.MemoryCluster, mc with { Status = new MemoryClusterStatus { Phase = "Healthy" } }, None);
        await Eventually.TrueAsync(() => { lock (reconciler.Seen) { return reconciler.Seen.Contains("default/mc0@Healthy"); } }, "the status change to be reconciled");
        await cts.CancelAsync();
        await run;
        Assert.Equal(0, host.Errors);
    }

    [Fact]
    public async Task A_conflict_is_a_short_requeue_an_error_backs_off_and_RequeueAfter_comes_back()
    {
        await using var h = await Harness.StartAsync();
        foreach (var name in new[] { "conflict", "error", "requeue", "terminal" })
        {
            await h.Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster(name), None);
        }

        var reconciler = new RecordingReconciler((key, _, call) => (key, call) switch
        {
            ("default/conflict", 1) => throw new ConflictException(new V1Status { Reason = "Conflict", Code = 409 }),
            ("default/error", 1) => throw new InvalidOperationException("boom"),
            ("default/requeue", 1) => ReconcileResult.RequeueAfter(TimeSpan.FromMilliseconds(100)),
            ("default/terminal", _) => ReconcileResult.Terminal("spec cannot be satisfied"),
            _ => ReconcileResult.Done,
        });
        var host = new ReconcilerHost<MemoryClusterResource>(
            new Informer<MemoryClusterResource>(h.Client, ResourceTypes.MemoryCluster), reconciler,
            new ReconcilerHostOptions { ConflictRequeue = TimeSpan.FromMilliseconds(50), ResyncPeriod = TimeSpan.FromMinutes(10) });
        using var cts = new CancellationTokenSource();
        var run = host.RunAsync(cts.Token);
        await Eventually.TrueAsync(() => reconciler.CallsFor("default/conflict") == 2 && reconciler.CallsFor("default/error") == 2
            && reconciler.CallsFor("default/requeue") == 2, "the retries");
        await Task.Delay(300);
        Assert.Equal(1, reconciler.CallsFor("default/terminal"));
        Assert.Equal(1, host.Conflicts);
        Assert.Equal(1, host.Errors);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Resync_reconciles_every_key_again_without_any_change()
    {
        await using var h = await Harness.StartAsync();
        await h.Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("a"), None);
        var reconciler = new RecordingReconciler();
        var host = new ReconcilerHost<MemoryClusterResource>(
            new Informer<MemoryClusterResource>(h.Client, ResourceTypes.MemoryCluster), reconciler,
            new ReconcilerHostOptions { ResyncPeriod = TimeSpan.FromMilliseconds(100) });
        using var cts = new CancellationTokenSource();
        var run = host.RunAsync(cts.Token);
        await Eventually.TrueAsync(() => reconciler.CallsFor("default/a") >= 3, "periodic resyncs");
        await cts.CancelAsync();
        await run;
    }
}
