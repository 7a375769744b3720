using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.Client;

/// <summary>resourceVersion and resourceVersionMatch on lists, through our client against the double.</summary>
[Trait("Category", "Integration")]
public sealed class ListResourceVersionTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private Harness _h = null!;

    private KubeApiClient Client => _h.Client;

    public async Task InitializeAsync() => _h = await Harness.StartAsync(installCrd: false);

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private Task<KubeList<V1ConfigMap>> ListAsync(string? rv, string? match = null, int? limit = null, string? continueToken = null) =>
        Client.ListAsync(ResourceTypes.ConfigMap, "default",
            new ListOptions { ResourceVersion = rv, ResourceVersionMatch = match, Limit = limit, Continue = continueToken }, None);

    private static List<string?> Names(KubeList<V1ConfigMap> list) => [.. list.Items.Select(c => c.Metadata.Name)];

    [Fact]
    public async Task Without_a_resourceVersion_a_list_is_the_latest_state_while_0_may_be_a_stale_watch_cache()
    {
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("old"), None);
        _h.Server.FreezeWatchCache();
        var cacheRv = _h.Server.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var created = await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("new"), None);

        var latest = await ListAsync(null);
        Assert.Equal(["new", "old"], Names(latest));
        Assert.Equal(created.Metadata.ResourceVersion, latest.Metadata.ResourceVersion);

        var any = await ListAsync("0");
        Assert.Equal(["old"], Names(any));
        Assert.Equal(cacheRv, any.Metadata.ResourceVersion);

        // Not older than what the cache holds: the cache may answer. Newer than the cache: never the stale state.
        Assert.Equal(["old"], Names(await ListAsync(cacheRv, ListConsistency.NotOlderThan)));
        Assert.Equal(["new", "old"], Names(await ListAsync(created.Metadata.ResourceVersion, ListConsistency.NotOlderThan)));
        Assert.Equal(["new", "old"], Names(await ListAsync(created.Metadata.ResourceVersion)));

        _h.Server.ThawWatchCache();
        Assert.Equal(["new", "old"], Names(await ListAsync("0")));
    }

    [Fact]
    public async Task An_Exact_list_returns_the_state_at_that_resourceVersion_and_is_Gone_once_it_is_compacted()
    {
        var a = await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("a"), None);
        var at = a.Metadata.ResourceVersion;
        await Client.ReplaceAsync(ResourceTypes.ConfigMap, a with { Data = new Dictionary<string, string> { ["key"] = "changed" } }, None);
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("b"), None);
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c"), None);
        await Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "c", null, None);

        var then = await ListAsync(at, ListConsistency.Exact);
        Assert.Equal(at, then.Metadata.ResourceVersion);
        var only = Assert.Single(then.Items);
        Assert.Equal("value", only.Data!["key"]);
        Assert.Equal(at, only.Metadata.ResourceVersion);
        Assert.Equal(["a", "b"], Names(await ListAsync(null)));

        _h.Server.Compact();
        var gone = await Assert.ThrowsAsync<GoneException>(() => ListAsync(at, ListConsistency.Exact));
        Assert.Contains("too old resource version", gone.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_pages_of_a_list_are_one_consistent_state_even_when_objects_change_between_pages()
    {
        for (var i = 0; i < 6; i++)
        {
            await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c" + i), None);
        }

        var page = await ListAsync(null, limit: 2);
        var listRv = page.Metadata.ResourceVersion;
        var seen = Names(page);
        await Client.DeleteAsync(ResourceTypes.ConfigMap, "default", "c4", null, None);
        await Client.PatchAsync(ResourceTypes.ConfigMap, "default", "c5",
            new MergePatch(System.Text.Json.Nodes.JsonNode.Parse("""{"data":{"key":"later"}}""")!), null, None);
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("c6"), None);
        var last = page;
        while (page.Metadata.ContinueProperty is { } token)
        {
            page = await ListAsync(null, limit: 2, continueToken: token);
            Assert.Equal(listRv, page.Metadata.ResourceVersion);
            seen.AddRange(Names(page));
            last = page;
        }

        Assert.Equal(["c0", "c1", "c2", "c3", "c4", "c5"], seen);
        Assert.Equal("value", last.Items[^1].Data!["key"]);
    }

    [Fact]
    public async Task Combinations_the_real_server_refuses_fail_with_its_codes()
    {
        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("a"), None);
        var noRv = await Assert.ThrowsAsync<InvalidException>(() => ListAsync(null, ListConsistency.Exact));
        Assert.Contains("resourceVersionMatch is forbidden unless resourceVersion is provided", noRv.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidException>(() => ListAsync("0", ListConsistency.Exact));

        var future = (_h.Server.ResourceVersion + 1000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tooLarge = await Assert.ThrowsAsync<KubeApiException>(() => ListAsync(future, ListConsistency.NotOlderThan));
        Assert.Equal(System.Net.HttpStatusCode.GatewayTimeout, tooLarge.StatusCode);
        Assert.Equal("ResourceVersionTooLarge", Assert.Single(tooLarge.Status.Details!.Causes!).Reason);

        await Client.CreateAsync(ResourceTypes.ConfigMap, Harness.ConfigMap("b"), None);
        var page = await ListAsync(null, limit: 1);
        Assert.NotNull(page.Metadata.ContinueProperty);
        var withRv = await Assert.ThrowsAsync<KubeApiException>(() => ListAsync(page.Metadata.ResourceVersion, limit: 1, continueToken: page.Metadata.ContinueProperty));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, withRv.StatusCode);
        Assert.Contains("not allowed when using continue", withRv.Message, StringComparison.Ordinal);
    }
}
