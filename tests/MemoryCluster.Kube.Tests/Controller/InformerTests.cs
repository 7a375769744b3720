using System.Globalization;
using FsCheck.Xunit;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.Controller;

[Trait("Category", "Integration")]
public sealed class InformerTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static InformerOptions FastOptions(int seed = 1) => new()
    {
        Namespace = "default",
        PageSize = 3,
        MinWatchTimeoutSeconds = 1,
        MaxWatchTimeoutSeconds = 2,
        IdleMargin = TimeSpan.FromMilliseconds(500),
        InitialBackoff = TimeSpan.FromMilliseconds(10),
        MaxBackoff = TimeSpan.FromMilliseconds(200),
        Seed = seed,
    };

    private static async Task<bool> ConvergedAsync(Harness h, Informer<V1ConfigMap> informer)
    {
        Kube.Resources.KubeList<V1ConfigMap> list;
        try
        {
            list = await h.Client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        }
        catch (Kube.Client.KubeApiException)
        {
            // An injected failure meant for the informer reached this check instead: look again.
            return false;
        }

        var server = list.Items.ToDictionary(c => "default/" + c.Metadata.Name, c => c.Metadata.ResourceVersion);
        var cache = informer.List().ToDictionary(c => "default/" + c.Metadata.Name, c => c.Metadata.ResourceVersion);
        return server.Count == cache.Count && server.All(s => cache.TryGetValue(s.Key, out var rv) && rv == s.Value);
    }

    private static async Task ConvergeAsync(Harness h, Informer<V1ConfigMap> informer, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!await ConvergedAsync(h, informer))
        {
            Assert.True(DateTime.UtcNow < deadline, "the informer cache did not converge to the server: " + what);
            await Task.Delay(25);
        }
    }

    [Fact]
    public async Task The_cache_lists_then_follows_the_watch_and_moves_with_bookmarks()
    {
        await using var h = await Harness.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(100) });
        for (var i = 0; i < 5; i++)
        {
            await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c" + i), None);
        }

        var informer = new Informer<V1ConfigMap>(h.Client, ResourceTypes.ConfigMap, FastOptions());
        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await informer.WaitForSyncAsync(None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(5, informer.Count);
        await h.Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "c0", null, None);
        await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("new"), None);
        await ConvergeAsync(h, informer, "after a delete and a create");
        var served = await h.Client.GetAsync(ResourceTypes.ConfigMap, "default", "new", None);
        Assert.NotEmpty(served.Metadata.ManagedFields);
        Assert.Null(informer.Get("default/new")!.Metadata.ManagedFields);

        // A change to another kind moves the server's RV; only a bookmark can tell the informer, and a bookmark
        // is remembered but never delivered to handlers.
        var delivered = 0;
        informer.Subscribe(_ => Interlocked.Increment(ref delivered));
        await h.Client.CreateAsync(ResourceTypes.Secret, new V1Secret { Metadata = new V1ObjectMeta { Name = "s", NamespaceProperty = "default" } }, None);
        var rv = h.Server.ResourceVersion.ToString(CultureInfo.InvariantCulture);
        await Eventually.TrueAsync(() => informer.ResourceVersion == rv, "a bookmark to advance the informer's resourceVersion");
        Assert.Equal(0, delivered);
        Assert.Equal(1, informer.Lists);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Watch_relists_and_replaces_the_cache_on_410()
    {
        await using var h = await Harness.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMinutes(5) });
        await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("a"), None);
        await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("b"), None);
        var informer = new Informer<V1ConfigMap>(h.Client, ResourceTypes.ConfigMap, FastOptions() with { MinWatchTimeoutSeconds = 60, MaxWatchTimeoutSeconds = 60 });
        var deleted = new List<string>();
        informer.Subscribe(e =>
        {
            if (e.Type == WatchEventType.Deleted)
            {
                deleted.Add(e.Key);
            }
        });
        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await informer.WaitForSyncAsync(None).WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.TrueAsync(() => h.Server.OpenWatches == 1, "the informer to watch");

        // The informer misses a delete and a create (its watch is stalled), then the history is compacted and the
        // connection drops: watching from its old RV is 410, so it must relist and replace its cache.
        h.Server.StallWatches();
        await h.Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "b", null, None);
        await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        h.Server.Compact();
        h.Server.DropWatches();
        await ConvergeAsync(h, informer, "after the relist");
        Assert.Equal(2, informer.Lists);
        Assert.Equal(["default/b"], deleted);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_silent_stall_is_detected_by_the_idle_watchdog_and_the_watch_resumes_without_a_relist()
    {
        await using var h = await Harness.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMinutes(5) });
        var options = FastOptions() with { MinWatchTimeoutSeconds = 1, MaxWatchTimeoutSeconds = 1 };
        var informer = new Informer<V1ConfigMap>(h.Client, ResourceTypes.ConfigMap, options);
        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await informer.WaitForSyncAsync(None).WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.TrueAsync(() => h.Server.OpenWatches == 1, "the informer to watch");
        h.Server.StallWatches();
        var stalledAt = DateTime.UtcNow;
        await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("during-stall"), None);

        // The bound: watch timeout (1 s) + idle margin (0.5 s), plus the re-watch itself.
        var bound = TimeSpan.FromSeconds(1) + options.IdleMargin + TimeSpan.FromSeconds(2);
        await Eventually.TrueAsync(() => informer.Get("default/during-stall") is not null, "the stalled watch to be replaced", (int)bound.TotalMilliseconds);
        Assert.True(informer.IdleTimeouts >= 1);
        Assert.Equal(1, informer.Lists);
        Assert.True(DateTime.UtcNow - stalledAt < bound + TimeSpan.FromSeconds(1));
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Server_errors_back_off_and_watch_again_without_a_relist_with_randomised_timeouts()
    {
        await using var h = await Harness.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMinutes(5) }, installCrd: false);
        var informer = new Informer<V1ConfigMap>(h.Client, ResourceTypes.ConfigMap, FastOptions() with { MinWatchTimeoutSeconds = 300, MaxWatchTimeoutSeconds = 600 });
        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await informer.WaitForSyncAsync(None).WaitAsync(TimeSpan.FromSeconds(10));
        for (var i = 0; i < 4; i++)
        {
            await Eventually.TrueAsync(() => h.Server.OpenWatches == 1, "the informer to watch");
            h.Server.StallWatches();
            await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c" + i), None);
            h.Server.FailNextRequests(2, 500);
            h.Server.DropWatches();
            await ConvergeAsync(h, informer, "after dropped connections and 500s");
        }

        Assert.Equal(1, informer.Lists);
        var timeouts = h.Server.WatchTimeouts;
        Assert.All(timeouts, t => Assert.InRange(t, 300, 600));
        Assert.True(timeouts.Distinct().Count() > 1, "watch timeouts are not randomised: " + string.Join(",", timeouts));
        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// Seeded random writes and faults (410 in the stream, dropped connections, compaction, restarts with a new
    /// resourceVersion history, silent stalls, 429/500 responses): the cache always converges to the server's
    /// state, and no key ever sees its events out of order.
    /// </summary>
    [Property(MaxTest = 6)]
    public void The_cache_converges_under_random_faults_and_keeps_each_keys_events_in_order(int seed)
    {
        RunScenarioAsync(seed).GetAwaiter().GetResult();
    }

    private static async Task RunScenarioAsync(int seed)
    {
        var random = new Random(seed);
        await using var h = await Harness.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(150) }, installCrd: false);
        var informer = new Informer<V1ConfigMap>(h.Client, ResourceTypes.ConfigMap, FastOptions(seed));
        var order = new Dictionary<string, long>();
        var violations = new List<string>();
        informer.Subscribe(e =>
        {
            var rv = long.Parse(e.New.Metadata.ResourceVersion!, CultureInfo.InvariantCulture);
            if (order.TryGetValue(e.Key, out var last) && rv < last)
            {
                violations.Add($"{e.Key}: {e.Type} at {rv} after {last}");
            }

            order[e.Key] = rv;
        });
        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        try
        {
            await informer.WaitForSyncAsync(None).WaitAsync(TimeSpan.FromSeconds(10));
            var names = Enumerable.Range(0, 8).Select(i => "k" + i).ToArray();
            for (var step = 0; step < 40; step++)
            {
                var name = names[random.Next(names.Length)];
                try
                {
                    switch (random.Next(14))
                    {
                        case < 4:
                            await h.Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap(name), None);
                            break;
                        case < 7:
                            await h.Client.PatchAsync(ResourceTypes.ConfigMap, "default", name,
                                new Kube.Client.MergePatch(System.Text.Json.Nodes.JsonNode.Parse($$$"""{"data":{"step":"{{{step}}}"}}""")!), null, None);
                            break;
                        case < 9:
                            await h.Client.DeleteAsync(ResourceTypes.ConfigMap, "default", name, null, None);
                            break;
                        case 9:
                            h.Server.ExpireWatches();
                            break;
                        case 10:
                            h.Server.DropWatches();
                            break;
                        case 11:
                            h.Server.Compact();
                            break;
                        case 12:
                            h.Server.Restart();
                            break;
                        default:
                            if (random.Next(2) == 0)
                            {
                                h.Server.StallWatches();
                            }
                            else
                            {
                                h.Server.FailNextRequests(1, random.Next(2) == 0 ? 429 : 500, 0);
                            }

                            break;
                    }
                }
                catch (Kube.Client.KubeApiException)
                {
                    // NotFound, AlreadyExists or an injected failure: the write did not happen, which is fine.
                }

                await Task.Delay(random.Next(0, 30));
            }

            await ConvergeAsync(h, informer, $"seed {seed}");
            Assert.Empty(violations);
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }
}
