using System.Net;
using System.Security.Cryptography.X509Certificates;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Cluster.Controllers;
using MemoryCluster.Kube.Cluster.Node;
using MemoryCluster.Kube.Cluster.Proxy;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;
using MemoryCluster.Operator.Tls;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Kube.Cluster.Local;

/// <summary>Settings of a one-machine cluster.</summary>
/// <param name="StateDirectory">Where its kubeconfig, pods and claims are kept.</param>
/// <param name="SearchPath">Folders the pods' commands are found in first (the built CLI).</param>
/// <param name="Crd">The MemoryCluster CRD's YAML, installed at start.</param>
public sealed record OneMachineOptions(string StateDirectory, IReadOnlyList<string> SearchPath, string Crd)
{
    /// <summary>Pod IPs (loopback). Two clusters on one machine at once need different networks.</summary>
    public IPNetwork PodNetwork { get; init; } = IPNetwork.Parse("127.10.0.0/16");

    /// <summary>Cluster IPs of Services (loopback), where the proxy listens.</summary>
    public IPNetwork ServiceNetwork { get; init; } = IPNetwork.Parse("127.96.0.0/16");
}

/// <summary>
/// Kubernetes on one machine: the API double over TLS (RBAC for every ServiceAccount token it issues; requests
/// without a token are a cluster admin's), the controllers, the node agent and the Service proxy, started together
/// and stopped together (pods first). Writes a kubeconfig (<see cref="KubeconfigPath"/>) for kubectl.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class OneMachineCluster : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _parts = [];
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2 _serverCertificate;

    private OneMachineCluster(FakeApiServer server, KubeApiClient client, NodeAgent node, X509Certificate2 ca, X509Certificate2 serverCertificate, string kubeconfig)
    {
        Server = server;
        Client = client;
        Node = node;
        _ca = ca;
        _serverCertificate = serverCertificate;
        KubeconfigPath = kubeconfig;
    }

    public FakeApiServer Server { get; }

    /// <summary>A cluster admin's client.</summary>
    public KubeApiClient Client { get; }

    public NodeAgent Node { get; }

    public string KubeconfigPath { get; }

    public static async Task<OneMachineCluster> StartAsync(OneMachineOptions options, ILoggerFactory logging, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(options.StateDirectory);

        // The API server's certificate from the operator's own CA code (the PEMs are its product); 30 days.
        var now = DateTimeOffset.UtcNow;
        NodeAgent? node = null;
        using var authority = CertificateAuthority.Create("one-machine-kubernetes-ca", now, TimeSpan.FromDays(30));
        var pair = authority.Issue(new ServerIdentity("kube-apiserver", ["localhost", "kubernetes.default.svc"], [IPAddress.Loopback]), now, TimeSpan.FromDays(30));
        var caPem = authority.CertificatePem;
        var ca = X509Certificate2.CreateFromPem(caPem);
        using var pem = X509Certificate2.CreateFromPem(pair.CertificatePem, pair.KeyPem);
        var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var server = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            ServerCertificate = certificate,
            Users = new Dictionary<string, RbacUser>(),
            ServiceNetwork = options.ServiceNetwork,

            // kubectl logs: the real server asks the pod's kubelet; here the node, made below, reads the log file.
            PodLogs = (_, _, uid, container) => node?.ContainerLog(uid, container),
        }, cancellationToken).ConfigureAwait(false);
        var client = new KubeApiClient(new KubeClientSettings { Server = server.Url, CertificateAuthorities = [ca], RequestTimeout = TimeSpan.FromSeconds(30) });
        var kubeconfig = Path.Combine(options.StateDirectory, "kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, server.KubeconfigYaml("cluster-admin", certificateAuthorityPem: caPem), cancellationToken).ConfigureAwait(false);

        var crd = KubernetesJson.Deserialize<V1CustomResourceDefinition>(YamlDocuments.FirstAsJson(options.Crd)!.ToJsonString());
        await client.CreateAsync(ResourceTypes.CustomResourceDefinition, crd, cancellationToken).ConfigureAwait(false);

        // The kubelet's TokenRequest, asked of the API server in-process.
        Task<string> TokenAsync(string ns, string account, CancellationToken token) => Task.FromResult(server.IssueToken(ns, account));

        node = new NodeAgent(client, new NodeOptions
        {
            NodeName = "node-0",
            StateDirectory = options.StateDirectory,
            PodNetwork = options.PodNetwork,
            SearchPath = options.SearchPath,
            ApiServer = ("127.0.0.1", server.Url.Port, caPem),
        }, TokenAsync, logging: logging);
        var cluster = new OneMachineCluster(server, client, node, ca, certificate, kubeconfig);
        var stop = cluster._stop.Token;
        cluster._parts.Add(Task.Run(() => new ControllerManager(client, logging: logging).RunAsync(stop), CancellationToken.None));
        cluster._parts.Add(Task.Run(() => new ServiceProxy(client, logging).RunAsync(stop), CancellationToken.None));
        cluster._parts.Add(Task.Run(() => node.RunAsync(stop), CancellationToken.None));
        return cluster;
    }

    /// <summary>Stops the node (its pods get SIGTERM, then SIGKILL after 10 s), the proxy, the controllers, then the API server.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_parts).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        Client.Dispose();
        await Server.DisposeAsync().ConfigureAwait(false);
        _serverCertificate.Dispose();
        _ca.Dispose();
        _stop.Dispose();
    }
}
