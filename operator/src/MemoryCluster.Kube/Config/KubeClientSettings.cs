using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace MemoryCluster.Kube.Config;

/// <summary>Everything the client needs to reach one API server.</summary>
public sealed record KubeClientSettings
{
    public required Uri Server { get; init; }

    /// <summary>The namespace of the context (or of the pod, in cluster); <c>default</c> when unset.</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>The only roots trusted for the server's certificate; empty means the system store.</summary>
    public X509Certificate2Collection CertificateAuthorities { get; init; } = [];

    public bool InsecureSkipTlsVerify { get; init; }

    /// <summary>The name to check the server certificate against, when it differs from the server's host.</summary>
    public string? TlsServerName { get; init; }

    public ICredentialProvider Credentials { get; init; } = new StaticCredentialProvider(new Credential(null, null, null));

    /// <summary>HTTP/2 keepalive pings: a dead connection fails a watch instead of hanging it.</summary>
    public TimeSpan KeepAlivePingDelay { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of every request except watches.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a 429 is retried (waiting Retry-After, capped) before it is thrown.</summary>
    public int MaxRetriesOn429 { get; init; } = 3;

    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>TLS plumbing: trust only the cluster CA, load PEM client certificates.</summary>
public static class TlsSettings
{
    public static X509Certificate2 LoadClientCertificate(string certificatePem, string keyPem)
    {
        using var pem = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        // Export and re-import so SslStream can use the key on every platform (ephemeral keys are not enough).
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    public static X509Certificate2Collection LoadAuthorities(string pem)
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPem(pem);
        return collection;
    }

    /// <summary>The handler every client request goes through (HTTP/2 pings, many connections, our trust store).</summary>
    internal static SocketsHttpHandler CreateHandler(KubeClientSettings settings, X509Certificate2? clientCertificate)
    {
        var handler = new SocketsHttpHandler
        {
            KeepAlivePingDelay = settings.KeepAlivePingDelay,
            KeepAlivePingTimeout = settings.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        if (settings.InsecureSkipTlsVerify)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (settings.CertificateAuthorities.Count > 0 || settings.TlsServerName is not null)
        {
            var roots = settings.CertificateAuthorities;
            var serverName = settings.TlsServerName;
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                Validate(certificate, errors, roots, serverName);
        }

        return handler;
    }

    /// <summary>
    /// Whether to trust the server's certificate: issued by one of <paramref name="roots"/> (or, when there are none,
    /// by the system store), and naming <paramref name="serverName"/> when the kubeconfig gives tls-server-name.
    /// SocketsHttpHandler checks the name against the URL's host and ignores SslOptions.TargetHost, so the
    /// tls-server-name check is ours. (The SNI it sends stays the URL's host.)
    /// </summary>
    internal static bool Validate(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots, string? serverName)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var named = serverName is null
            ? (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0
            : leaf.MatchesHostname(serverName);
        if (!named)
        {
            return false;
        }

        if (roots.Count == 0)
        {
            return (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }
}
