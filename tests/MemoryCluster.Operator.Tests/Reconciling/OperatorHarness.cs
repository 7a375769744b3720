using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Instance.Api;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;
using MemoryCluster.Operator.Hosting;
using MemoryCluster.Operator.Reconciling;
using MemoryCluster.Operator.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Operator.Tests.Reconciling;

/// <summary>
/// The Kubernetes API double over HTTP with the CRD installed, a web server playing the instance managers' API
/// (each pod's <c>/status</c> is what the test sets; a pod without one answers 503), and operators run against them.
/// Everything stops when disposed, also when a test fails.
/// </summary>
internal sealed class OperatorHarness : IAsyncDisposable
{
    private readonly List<(OperatorHost Host, CancellationTokenSource Stop, Task Run)> _operators = [];
    private readonly List<KubeApiClient> _clients = [];
    private readonly WebApplication _managers;

    private OperatorHarness(FakeApiServer server, KubeApiClient client, WebApplication managers, Uri managersUrl)
    {
        Server = server;
        Client = client;
        _managers = managers;
        ManagersUrl = managersUrl;
    }

    public FakeApiServer Server { get; }

    public KubeApiClient Client { get; }

    public Uri ManagersUrl { get; }

    /// <summary>What each pod's manager answers on /status, by pod name (absent: 503).</summary>
    public ConcurrentDictionary<string, StatusDocument> Statuses { get; } = new(StringComparer.Ordinal);

    /// <summary>The Raft membership the managers serve on /members (null: /members answers 503); also the members their /status shows.</summary>
    public FakeMembership? Membership { get; set; }

    /// <summary>Bodies of the POST /switchover requests the managers received, with whether they carried a signature.</summary>
    public ConcurrentQueue<(string Pod, string Body, bool Signed)> Switchovers { get; } = new();

    public static async Task<OperatorHarness> StartAsync(FakeApiServerOptions? options = null)
    {
        var server = await FakeApiServer.StartAsync(options, CancellationToken.None);
        var client = new KubeApiClient(new KubeClientSettings { Server = server.Url, RequestTimeout = TimeSpan.FromSeconds(20) });
        var crd = KubernetesJson.Deserialize<V1CustomResourceDefinition>(YamlDocuments.FirstAsJson(await File.ReadAllTextAsync(Path.Combine(RepoRoot(), "crds", "memorycluster.io_memoryclusters.yaml")))!.ToJsonString());
        await client.CreateAsync(ResourceTypes.CustomResourceDefinition, crd, CancellationToken.None);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        OperatorHarness? harness = null;
        app.MapGet("/{ns}/{pod}/status", (string pod) =>
            harness!.Statuses.TryGetValue(pod, out var status)
                ? Results.Json(harness.Membership is { } membership ? status with { Raft = status.Raft with { Members = membership.StatusNames() } } : status, InstanceJson.Options)
                : Results.Text("not running", statusCode: 503));
        app.MapGet("/{ns}/{pod}/members", (string pod) =>
            harness!.Statuses.ContainsKey(pod) && harness.Membership is { } membership
                ? Results.Json(membership.Document(), InstanceJson.Options)
                : Results.Text("not running", statusCode: 503));
        app.MapPost("/{ns}/{pod}/members", async (string ns, string pod, HttpRequest request) =>
        {
            var body = await harness!.ReadSignedAsync(request, InstanceApiClient.AddMemberPurpose);
            if (body is null || harness.Membership is not { } membership || !harness.Statuses.ContainsKey(pod))
            {
                return Results.Json(new ManagerAnswer(false, "unsigned, wrongly signed, or not running"), InstanceJson.Options, statusCode: 403);
            }

            var (status, answer) = membership.Add(JsonSerializer.Deserialize<AddMemberRequest>(body, InstanceJson.Options)!);
            return Results.Json(answer, InstanceJson.Options, statusCode: status);
        });
        app.MapDelete("/{ns}/{pod}/members/{id}", async (string ns, string pod, ulong id, HttpRequest request) =>
        {
            var body = await harness!.ReadSignedAsync(request, InstanceApiClient.RemoveMemberPurpose);
            if (body is null || harness.Membership is not { } membership || !harness.Statuses.ContainsKey(pod))
            {
                return Results.Json(new ManagerAnswer(false, "unsigned, wrongly signed, or not running"), InstanceJson.Options, statusCode: 403);
            }

            var set = await harness.Client.GetAsync(ResourceTypes.StatefulSet, ns, "demo", CancellationToken.None);
            var (status, answer) = membership.Remove(id, set.Spec.Replicas ?? 0);
            return Results.Json(answer, InstanceJson.Options, statusCode: status);
        });
        app.MapPost("/{ns}/{pod}/switchover", async (string pod, HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            var body = await reader.ReadToEndAsync();
            harness!.Switchovers.Enqueue((pod, body, request.Headers.ContainsKey(InstanceApiClient.SignatureHeader)));
            return Results.Json(new ManagerAnswer(true, "switchover started"), InstanceJson.Options);
        });
        await app.StartAsync();
        harness = new OperatorHarness(server, client, app, new Uri(app.Urls.First()));
        return harness;
    }

    /// <summary>
    /// The body of a request that changes something, when the real <see cref="SignedRequest"/> check passes under the
    /// cluster's key (the Secret demo-cluster-key the operator made); null, recorded in the membership's Unsigned, otherwise.
    /// </summary>
    private async Task<string?> ReadSignedAsync(HttpRequest request, string purpose)
    {
        using var reader = new StreamReader(request.Body);
        var body = await reader.ReadToEndAsync();
        var secret = await Client.GetAsync(ResourceTypes.Secret, "default", "demo-cluster-key", CancellationToken.None);
        var check = SignedRequest.Check(secret.Data["key"], purpose, request.Method, request.Path.Value!, body,
            request.Headers[InstanceApiClient.SignatureHeader], request.Headers[SignedRequest.TimestampHeader], DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        if (check != SignatureCheck.Valid)
        {
            Membership?.Unsigned.Enqueue($"{request.Method} {request.Path}: {check}");
            return null;
        }

        return body;
    }

    /// <summary>
    /// Starts an operator against the double; its instance client reaches the pods through <see cref="ManagersUrl"/>.
    /// With a token, the operator presents it instead of the harness's admin access (see <see cref="FakeApiServerOptions.Users"/>).
    /// </summary>
    public OperatorHost StartOperator(bool leaderElect = false, string identity = "operator-0", ILoggerFactory? logging = null, TlsPolicy? tls = null, string? token = null)
    {
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var instances = new HttpInstanceClient(http, (names, ordinal) => new Uri(ManagersUrl, $"{names.Namespace}/{names.Pod(ordinal)}/"))
        {
            StatusTimeout = TimeSpan.FromSeconds(2),
        };
        var options = new OperatorOptions
        {
            LeaderElect = leaderElect,
            Identity = identity,
            LeaseNamespace = "default",
            MetricsPort = 0,
            HealthPort = 0,
            ListenAddress = IPAddress.Loopback,
            Reconciler = new ReconcilerOptions { StatusPollInterval = TimeSpan.FromMilliseconds(300), BusyPollInterval = TimeSpan.FromMilliseconds(200), Tls = tls ?? TlsPolicy.Default },
        };
        var host = new OperatorHost(token is null ? Client : ClientWithToken(token), instances, options, logging ?? NullLoggerFactory.Instance);
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => host.RunAsync(stop.Token));
        _operators.Add((host, stop, run));
        return host;
    }

    /// <summary>A client of the double presenting <paramref name="token"/> (see <see cref="FakeApiServerOptions.Users"/>); disposed with the harness.</summary>
    public KubeApiClient ClientWithToken(string token)
    {
        var client = new KubeApiClient(new KubeClientSettings
        {
            Server = Server.Url,
            RequestTimeout = TimeSpan.FromSeconds(20),
            Credentials = new StaticCredentialProvider(new Credential(token, null, null)),
        });
        _clients.Add(client);
        return client;
    }

    /// <summary>Stops one operator (as SIGTERM does: it releases its Lease) and waits for it.</summary>
    public async Task StopOperatorAsync(OperatorHost host)
    {
        var (_, stop, run) = _operators.Single(o => o.Host == host);
        await stop.CancelAsync();
        try
        {
            await run.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    public Task<MemoryClusterResource> GetAsync(string name, string ns = "default") =>
        Client.GetAsync(ResourceTypes.MemoryCluster, ns, name, CancellationToken.None);

    public Task<MemoryClusterResource> CreateAsync(MemoryClusterResource cluster) =>
        Client.CreateAsync(ResourceTypes.MemoryCluster, cluster, CancellationToken.None);

    /// <summary>Changes the spec with a read-modify-write, retried on conflict (the operator writes status meanwhile).</summary>
    public async Task<MemoryClusterResource> UpdateSpecAsync(string name, Func<MemoryClusterSpec, MemoryClusterSpec> change)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = await GetAsync(name);
            try
            {
                return await Client.ReplaceAsync(ResourceTypes.MemoryCluster, current with { Spec = change(current.Spec) }, CancellationToken.None);
            }
            catch (ConflictException) when (attempt < 20)
            {
                // The status moved on: read again.
            }
        }
    }

    public static MemoryClusterResource Cluster(string name = "demo", int instances = 3, int compute = 0) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "default" },
        Spec = new MemoryClusterSpec { Instances = instances, Compute = new ComputeSpec { Replicas = compute } },
    };

    /// <summary>The condition of <paramref name="type"/>, or null.</summary>
    public static Condition? ConditionOf(MemoryClusterResource cluster, string type) => Conditions.Find(cluster.Status?.Conditions, type);

    /// <summary>Waits until the MemoryCluster satisfies <paramref name="condition"/>; fails naming <paramref name="what"/> and the last status.</summary>
    public async Task<MemoryClusterResource> WaitForAsync(string name, Func<MemoryClusterResource, bool> condition, string what, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        MemoryClusterResource? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await GetAsync(name);
            if (condition(last))
            {
                return last;
            }

            await Task.Delay(50);
        }

        Assert.Fail($"timed out after {timeoutMs} ms waiting for {what}; last status: {JsonSerializer.Serialize(last?.Status, ApiJson.Options)}");
        return null!;
    }

    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {timeoutMs} ms waiting for {what}");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (_, stop, run) in _operators)
        {
            await stop.CancelAsync();
            try
            {
                await run.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }

            stop.Dispose();
        }

        await _managers.StopAsync();
        await _managers.DisposeAsync();
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        Client.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>Whether the double holds an object of the kinds the operator renders, by kind and name in "default".</summary>
    public async Task<bool> ExistsAsync(k8s.IKubernetesObject<V1ObjectMeta> obj)
    {
        try
        {
            switch (obj)
            {
                case V1StatefulSet: await Client.GetAsync(ResourceTypes.StatefulSet, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1Deployment: await Client.GetAsync(ResourceTypes.Deployment, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1Service: await Client.GetAsync(ResourceTypes.Service, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1ConfigMap: await Client.GetAsync(ResourceTypes.ConfigMap, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1ServiceAccount: await Client.GetAsync(ResourceTypes.ServiceAccount, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1Role: await Client.GetAsync(ResourceTypes.Role, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1RoleBinding: await Client.GetAsync(ResourceTypes.RoleBinding, "default", obj.Metadata.Name, CancellationToken.None); break;
                case V1PodDisruptionBudget: await Client.GetAsync(ResourceTypes.PodDisruptionBudget, "default", obj.Metadata.Name, CancellationToken.None); break;
                default: throw new InvalidOperationException($"no check for {obj.Kind}");
            }

            return true;
        }
        catch (NotFoundException)
        {
            return false;
        }
    }

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Operator.sln not found above " + AppContext.BaseDirectory);
    }
}
