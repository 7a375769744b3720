using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
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

    /// <summary>Starts the double (with <paramref name="options"/>; the CRD installed when <paramref name="installCrd"/>) and a client trusting <paramref name="trust"/>, the CA of the server's certificate when it serves HTTPS.</summary>
    public static async Task<Harness> StartAsync(FakeApiServerOptions? options = null, bool installCrd = true, X509Certificate2? trust = null)
    {
        var server = await FakeApiServer.StartAsync(options, CancellationToken.None);
        var client = new KubeApiClient(new KubeClientSettings
        {
            Server = server.Url,
            RequestTimeout = TimeSpan.FromSeconds(20),
            CertificateAuthorities = trust is null ? [] : [trust],
        });
        var harness = new Harness(server, client);
        if (installCrd)
        {
            await harness.InstallCrdAsync();
        }

        return harness;
    }

    public async Task InstallCrdAsync()
    {
        var crd = KubernetesJson.Deserialize<V1CustomResourceDefinition>(Repo.CrdJson());
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

    public static V1ConfigMap ConfigMap(string name, string ns = "default", IDictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
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

/// <summary>A throw-away PKI for TLS tests: a CA, and server or client certificates it issues.</summary>
internal static class TestCertificates
{
    public static string Base64(string pem) => Convert.ToBase64String(Encoding.UTF8.GetBytes(pem));

    public static X509Certificate2 CreateCa(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(2));
    }

    /// <summary>
    /// A certificate with its private key. A server certificate names <paramref name="dnsNames"/> when given, else
    /// 127.0.0.1 and localhost.
    /// </summary>
    public static X509Certificate2 Issue(X509Certificate2 ca, string name, bool server, params string[] dnsNames)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [server ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            if (dnsNames.Length == 0)
            {
                san.AddIpAddress(IPAddress.Loopback);
                san.AddDnsName("localhost");
            }

            foreach (var dns in dnsNames)
            {
                san.AddDnsName(dns);
            }

            request.CertificateExtensions.Add(san.Build());
        }

        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The PEM of a certificate's RSA private key.</summary>
    public static string KeyPem(X509Certificate2 certificate) => certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem();
}

/// <summary>Resource types over plain JSON, for objects with fields no typed model has (and to read what the server holds).</summary>
internal static class DynamicTypes
{
    public static ResourceType<JsonObject> Of(string group, string version, string kind, string plural, bool namespaced = true) =>
        new(group, version, kind, plural, namespaced,
            o => o["metadata"] is { } meta ? KubernetesJson.Deserialize<V1ObjectMeta>(meta) : new V1ObjectMeta(),
            (o, m) =>
            {
                var copy = (JsonObject)o.DeepClone();
                copy["metadata"] = JsonNode.Parse(KubernetesJson.Serialize(m));
                return copy;
            });

    public static ResourceType<JsonObject> StatefulSet { get; } = Of("apps", "v1", "StatefulSet", "statefulsets");

    public static ResourceType<JsonObject> MemoryCluster { get; } = Of(ApiGroup.Group, ApiGroup.Version, ApiGroup.Kind, ApiGroup.Plural);

    public static ResourceType<JsonObject> CustomResourceDefinition { get; } =
        Of("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced: false);
}

/// <summary>A test with a temporary directory of its own, deleted after the test.</summary>
public abstract class TempDirectoryTest(string prefix) : IDisposable
{
    protected string Dir { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    public void Dispose()
    {
        Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Writes a file in the directory and returns its path.</summary>
    protected string Write(string name, string text)
    {
        var path = Path.Combine(Dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
