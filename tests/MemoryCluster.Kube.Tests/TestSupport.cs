using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests;

/// <summary>A running double with a client pointed at it, and the CRD installed; disposed even when a test fails.</summary>
internal sealed class Harness : IAsyncDisposable
{
    private Harness(FakeApiServer server, KubeApiClient client)
    {
        Server = server;
        Client = client;
    }

    public FakeApiServer Server { get; }

    public KubeApiClient Client { get; }

    public static async Task<Harness> StartAsync(FakeApiServerOptions? options = null, bool installCrd = true)
    {
        var server = await FakeApiServer.StartAsync(options, CancellationToken.None);
        var client = new KubeApiClient(new KubeClientSettings { Server = server.Url, RequestTimeout = TimeSpan.FromSeconds(20) });
        var harness = new Harness(server, client);
        if (installCrd)
        {
            await harness.InstallCrdAsync();
        }

        return harness;
    }

    public async Task InstallCrdAsync()
    {
        var crd = System.Text.Json.JsonSerializer.Deserialize<CustomResourceDefinition>(
            Repo.CrdJson(), Serialization.KubeJson.Options)!;
        await Client.CreateAsync(ResourceTypes.CustomResourceDefinition, crd, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }

    public static MemoryClusterResource Cluster(string name, string ns = "default", int instances = 3) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Labels = new Dictionary<string, string> { ["app"] = "memory" } },
        Spec = new MemoryClusterSpec { Instances = instances },
    };

    public static ConfigMap ConfigMap(string name, string ns = "default", IReadOnlyDictionary<string, string>? labels = null) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Labels = labels },
        Data = new Dictionary<string, string> { ["key"] = "value" },
    };
}

/// <summary>Paths in the repository, found from the test's directory.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Operator.sln not found above " + AppContext.BaseDirectory);
    }

    public static string CrdPath => Path.Combine(Root, "crds", "memorycluster.io_memoryclusters.yaml");

    /// <summary>The generated CRD as JSON.</summary>
    public static string CrdJson() => YamlDocuments.FirstAsJson(File.ReadAllText(CrdPath))!.ToJsonString();
}

/// <summary>Bounded polling for tests: the condition or a failure naming what was awaited.</summary>
internal static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {timeoutMs} ms waiting for {what}");
            }

            await Task.Delay(20);
        }
    }
}
