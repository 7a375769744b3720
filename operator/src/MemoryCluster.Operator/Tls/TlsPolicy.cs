using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tls;

/// <summary>
/// How long certificates live and when they are renewed. The CA lives 5 years, a server certificate 90 days; either
/// is renewed when less than a third of its lifetime remains (the server certificate 30 days before it ends, which
/// leaves the kubelet's Secret refresh, about a minute, and a reload far behind).
/// </summary>
/// <param name="CaLifetime">Validity of the CA certificate.</param>
/// <param name="ServerLifetime">Validity of a server certificate.</param>
/// <param name="RenewFraction">Renew when less than this fraction of the lifetime remains (0 &lt; f &lt; 1).</param>
public sealed record TlsPolicy(TimeSpan CaLifetime, TimeSpan ServerLifetime, double RenewFraction)
{
    public static TlsPolicy Default { get; } = new(TimeSpan.FromDays(5 * 365), TimeSpan.FromDays(90), 1.0 / 3);

    /// <summary>
    /// The renewal rule: a certificate valid from <paramref name="notBefore"/> to <paramref name="notAfter"/> is renewed
    /// at <paramref name="now"/> when less than <see cref="RenewFraction"/> of its lifetime remains, when it has ended,
    /// or when it is not valid yet (a clock that jumped back, or a certificate made elsewhere).
    /// </summary>
    public bool RenewalDue(DateTimeOffset now, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var lifetime = notAfter - notBefore;
        if (lifetime <= TimeSpan.Zero || now < notBefore || now >= notAfter)
        {
            return true;
        }

        return notAfter - now < lifetime * RenewFraction;
    }
}

/// <summary>The DNS names a cluster's server certificate covers.</summary>
public static class TlsNames
{
    /// <summary>Every ordinal a cluster can have (the CRD allows 3 or 5 instances): a scale never needs a new certificate.</summary>
    public const int MaxInstances = 5;

    /// <summary>
    /// The names clients and peers use: each pod through the headless Service
    /// (<c>NAME-N.NAME-hl.NS.svc</c> and <c>.svc.cluster.local</c>; replication and pg_rewind connect there), and
    /// the <c>-rw</c>, <c>-ro</c>, <c>-r</c> Services as <c>SVC</c>, <c>SVC.NS</c>, <c>SVC.NS.svc</c> and
    /// <c>SVC.NS.svc.cluster.local</c>.
    /// </summary>
    public static ServerIdentity ServerIdentityOf(ClusterNames names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var dns = new List<string>();
        foreach (var service in new[] { names.ReadWrite, names.ReadOnly, names.Read })
        {
            dns.Add(service);
            dns.Add($"{service}.{names.Namespace}");
            dns.Add($"{service}.{names.Namespace}.svc");
            dns.Add($"{service}.{names.Namespace}.svc.cluster.local");
        }

        for (var ordinal = 0; ordinal < MaxInstances; ordinal++)
        {
            dns.Add(names.PodHost(ordinal));
            dns.Add(names.PodHost(ordinal) + ".cluster.local");
        }

        return new ServerIdentity(names.ReadWriteHost, dns, []);
    }
}

/// <summary>What the executor read from the server certificate Secret, as plain facts.</summary>
/// <param name="NotBefore">Start of validity.</param>
/// <param name="NotAfter">End of validity.</param>
/// <param name="DnsNames">The certificate's DNS SANs.</param>
/// <param name="ChainsToCa">Whether it chains to the cluster's current CA now.</param>
/// <param name="KeyMatches">Whether <c>tls.key</c> is the certificate's private key.</param>
/// <param name="CaBundleCurrent">Whether <c>ca.crt</c> is the current CA certificate.</param>
public sealed record ServerCertificateFacts(
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    IReadOnlyList<string> DnsNames,
    bool ChainsToCa,
    bool KeyMatches,
    bool CaBundleCurrent)
{
    /// <summary>
    /// The facts of a Secret's <c>tls.crt</c>, <c>tls.key</c> and <c>ca.crt</c> judged against <paramref name="ca"/>;
    /// null with the reason when they cannot be read (the Secret is then issued again).
    /// </summary>
    public static (ServerCertificateFacts? Facts, string? Unreadable) Read(string? certificatePem, string? keyPem, string? caPem, CertificateAuthority ca, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(ca);
        if (string.IsNullOrWhiteSpace(certificatePem) || string.IsNullOrWhiteSpace(keyPem))
        {
            return (null, "tls.crt or tls.key is missing");
        }

        try
        {
            using var certificate = X509Certificate2.CreateFromPem(certificatePem);
            using var key = ECDsa.Create();
            key.ImportFromPem(keyPem);
            using var pub = certificate.GetECDsaPublicKey();
            var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames()).ToList();
            return (new ServerCertificateFacts(
                new DateTimeOffset(certificate.NotBefore.ToUniversalTime()),
                new DateTimeOffset(certificate.NotAfter.ToUniversalTime()),
                names,
                ca.Issued(certificate, now),
                pub is not null && pub.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()),
                string.Equals(caPem?.Trim(), ca.CertificatePem.Trim(), StringComparison.Ordinal)), null);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return (null, "tls.crt or tls.key does not parse as a PEM certificate and ECDSA key");
        }
    }
}

/// <summary>What to do about one certificate.</summary>
/// <param name="Issue">Issue (or renew) it now.</param>
/// <param name="Reason">Why, for the log and the Event; "valid until ..." when nothing is due.</param>
public sealed record CertificateDecision(bool Issue, string Reason);

/// <summary>The pure decisions about a cluster's certificates; the executor reads facts and writes Secrets.</summary>
public static class CertificatePlanner
{
    /// <summary>Whether the CA certificate is to be renewed (same key, new validity).</summary>
    public static CertificateDecision Ca(TlsPolicy policy, DateTimeOffset notBefore, DateTimeOffset notAfter, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return policy.RenewalDue(now, notBefore, notAfter)
            ? new CertificateDecision(true, string.Create(CultureInfo.InvariantCulture, $"the CA certificate ends {notAfter:O}: less than {policy.RenewFraction:0.##} of its lifetime remains"))
            : new CertificateDecision(false, string.Create(CultureInfo.InvariantCulture, $"the CA certificate is valid until {notAfter:O}"));
    }

    /// <summary>
    /// Whether the server certificate is to be issued: none yet or unreadable, not from the current CA, a key that is
    /// not its own, a CA bundle that is not the current CA, a name missing, or the renewal rule.
    /// </summary>
    public static CertificateDecision Server(TlsPolicy policy, ServerIdentity wanted, ServerCertificateFacts? facts, string? unreadable, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(wanted);
        if (facts is null)
        {
            return new CertificateDecision(true, unreadable ?? "no server certificate yet");
        }

        var missing = wanted.DnsNames.Except(facts.DnsNames, StringComparer.OrdinalIgnoreCase).ToList();
        return facts switch
        {
            { KeyMatches: false } => new CertificateDecision(true, "tls.key is not the private key of tls.crt"),
            { ChainsToCa: false } => new CertificateDecision(true, "tls.crt does not chain to the cluster's CA"),
            { CaBundleCurrent: false } => new CertificateDecision(true, "ca.crt is not the cluster's current CA certificate"),
            _ when missing.Count > 0 => new CertificateDecision(true, $"tls.crt does not cover {string.Join(", ", missing)}"),
            _ when policy.RenewalDue(now, facts.NotBefore, facts.NotAfter) => new CertificateDecision(true, string.Create(CultureInfo.InvariantCulture, $"tls.crt ends {facts.NotAfter:O}: less than {policy.RenewFraction:0.##} of its lifetime remains")),
            _ => new CertificateDecision(false, string.Create(CultureInfo.InvariantCulture, $"tls.crt is valid until {facts.NotAfter:O}")),
        };
    }
}
