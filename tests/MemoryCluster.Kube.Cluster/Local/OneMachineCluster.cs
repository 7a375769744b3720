using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Cluster.Controllers;
using MemoryCluster.Kube.Cluster.Node;
using MemoryCluster.Kube.Cluster.Proxy;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;
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
    private readonly HttpClient _tokens;

    private OneMachineCluster(FakeApiServer server, KubeApiClient client, NodeAgent node, X509Certificate2 ca, X509Certificate2 serverCertificate, HttpClient tokens, string kubeconfig)
    {
        _tokens = tokens;
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
        var ca = Authority();
        var certificate = ServerCertificate(ca);
        var server = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            ServerCertificate = certificate,
            Users = new Dictionary<string, RbacUser>(),
            ServiceNetwork = options.ServiceNetwork,
        }, cancellationToken).ConfigureAwait(false);
        var caPem = ca.ExportCertificatePem();
        var client = new KubeApiClient(new KubeClientSettings { Server = server.Url, CertificateAuthorities = [ca], RequestTimeout = TimeSpan.FromSeconds(30) });
        var kubeconfig = Path.Combine(options.StateDirectory, "kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, server.KubeconfigYaml("cluster-admin", certificateAuthorityPem: caPem), cancellationToken).ConfigureAwait(false);

        var crd = KubernetesJson.Deserialize<V1CustomResourceDefinition>(YamlDocuments.FirstAsJson(options.Crd)!.ToJsonString());
        await client.CreateAsync(ResourceTypes.CustomResourceDefinition, crd, cancellationToken).ConfigureAwait(false);

        var http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && Trusted(new X509Certificate2(c), ca) },
        });
        async Task<string> TokenAsync(string ns, string account, CancellationToken token)
        {
            using var response = await http.PostAsync(new Uri(server.Url, $"api/v1/namespaces/{ns}/serviceaccounts/{account}/token"),
                new StringContent("""{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":86400}}""", System.Text.Encoding.UTF8, "application/json"),
                token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(token).ConfigureAwait(false);
            return response.IsSuccessStatusCode
                ? (string)JsonNode.Parse(body)!["status"]!["token"]!
                : throw new InvalidOperationException($"token for {ns}/{account}: {(int)response.StatusCode} {body}");
        }

        var node = new NodeAgent(client, new NodeOptions
        {
            NodeName = "node-0",
            StateDirectory = options.StateDirectory,
            PodNetwork = options.PodNetwork,
            SearchPath = options.SearchPath,
            ApiServer = ("127.0.0.1", server.Url.Port, caPem),
        }, TokenAsync, logging: logging);
        var cluster = new OneMachineCluster(server, client, node, ca, certificate, http, kubeconfig);
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
        _tokens.Dispose();
        await Server.DisposeAsync().ConfigureAwait(false);
        _serverCertificate.Dispose();
        _ca.Dispose();
        _stop.Dispose();
    }

    private static bool Trusted(X509Certificate2 certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private static X509Certificate2 Authority()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=one-machine-kubernetes-ca", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(30));
    }

    private static X509Certificate2 ServerCertificate(X509Certificate2 ca)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=kube-apiserver", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        names.AddDnsName("kubernetes.default.svc");
        request.CertificateExtensions.Add(names.Build());
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
