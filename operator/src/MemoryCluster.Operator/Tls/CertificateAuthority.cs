using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MemoryCluster.Operator.Tls;

/// <summary>TLS material that cannot be used: the message names what is wrong (never a key's bytes).</summary>
public sealed class TlsMaterialException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A certificate and its private key, both PEM text, as a Secret holds them.</summary>
/// <param name="CertificatePem">The certificate (<c>-----BEGIN CERTIFICATE-----</c>).</param>
/// <param name="KeyPem">The private key, PKCS#8 (<c>-----BEGIN PRIVATE KEY-----</c>).</param>
public sealed record PemPair(string CertificatePem, string KeyPem)
{
    /// <summary>Never prints the key.</summary>
    public override string ToString() => "PemPair { key redacted }";
}

/// <summary>The names and addresses a server certificate is valid for.</summary>
/// <param name="CommonName">The subject's CN (informational: clients check the SANs).</param>
/// <param name="DnsNames">DNS subject alternative names, in order.</param>
/// <param name="IpAddresses">IP subject alternative names (tests on loopback; none in a cluster).</param>
public sealed record ServerIdentity(string CommonName, IReadOnlyList<string> DnsNames, IReadOnlyList<IPAddress> IpAddresses);

/// <summary>
/// A cluster's certificate authority: an ECDSA P-256 key and a self-signed CA certificate (SHA-256, path length 0:
/// it signs server certificates only). No I/O: time comes from the caller, the key from the cryptographic RNG; the
/// executor stores <see cref="ToPem"/> in the Secret <c>NAME-ca</c>.
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    private readonly X509Certificate2 _certificate;
    private readonly ECDsa _key;

    private CertificateAuthority(X509Certificate2 certificate, ECDsa key)
    {
        _certificate = certificate;
        _key = key;
    }

    /// <summary>The CA certificate (public part only).</summary>
    public X509Certificate2 Certificate => _certificate;

    public DateTimeOffset NotBefore => new(_certificate.NotBefore.ToUniversalTime());

    public DateTimeOffset NotAfter => new(_certificate.NotAfter.ToUniversalTime());

    public string CertificatePem => _certificate.ExportCertificatePem();

    /// <summary>How far a certificate's start is set back from now, for clocks that run a little behind.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>A new CA named after the cluster, valid from now (less the clock skew) for <paramref name="lifetime"/>.</summary>
    public static CertificateAuthority Create(string commonName, DateTimeOffset now, TimeSpan lifetime)
    {
        ArgumentException.ThrowIfNullOrEmpty(commonName);
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new CertificateAuthority(SelfSign(key, new X500DistinguishedName($"CN={Escape(commonName)}"), now - ClockSkew, now + lifetime), key);
    }

    /// <summary>
    /// The CA of a Secret's <c>ca.crt</c> and <c>ca.key</c>. Throws <see cref="TlsMaterialException"/>, naming the
    /// problem, when either does not parse, the key is not the certificate's, or the certificate is not a CA.
    /// </summary>
    public static CertificateAuthority FromPem(string? certificatePem, string? keyPem)
    {
        if (string.IsNullOrWhiteSpace(certificatePem))
        {
            throw new TlsMaterialException("ca.crt is missing or empty");
        }

        if (string.IsNullOrWhiteSpace(keyPem))
        {
            throw new TlsMaterialException("ca.key is missing or empty");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(certificatePem);
        }
        catch (CryptographicException e)
        {
            throw new TlsMaterialException("ca.crt is not a PEM certificate", e);
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            key.Dispose();
            certificate.Dispose();
            throw new TlsMaterialException("ca.key is not a PEM ECDSA private key", e);
        }

        var problem = certificate.GetECDsaPublicKey() is not { } pub ? "ca.crt does not hold an ECDSA public key"
            : !pub.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()) ? "ca.key is not the private key of ca.crt"
            : certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true } ? "ca.crt is not a CA certificate (basic constraints)"
            : null;
        if (problem is not null)
        {
            key.Dispose();
            certificate.Dispose();
            throw new TlsMaterialException(problem);
        }

        return new CertificateAuthority(certificate, key);
    }

    /// <summary>The CA as the Secret holds it.</summary>
    public PemPair ToPem() => new(CertificatePem, _key.ExportPkcs8PrivateKeyPem());

    /// <summary>
    /// The same CA (subject, key and start of validity) with a later end: certificates it issued before still chain
    /// to it, so a CA renewal needs no re-issue of anything and no client sees a new trust root.
    /// </summary>
    public CertificateAuthority Renew(DateTimeOffset now, TimeSpan lifetime)
    {
        var key = ECDsa.Create();
        key.ImportParameters(_key.ExportParameters(includePrivateParameters: true));
        return new CertificateAuthority(SelfSign(key, _certificate.SubjectName, NotBefore, now + lifetime), key);
    }

    /// <summary>
    /// A server certificate for <paramref name="identity"/> with a new ECDSA P-256 key: serverAuth and clientAuth
    /// (the same pair can identify a member to its peers), valid from now (less the clock skew) for
    /// <paramref name="lifetime"/>, never past the CA's own end.
    /// </summary>
    public PemPair Issue(ServerIdentity identity, DateTimeOffset now, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(identity);
        if (identity.DnsNames.Count == 0 && identity.IpAddresses.Count == 0)
        {
            throw new ArgumentException("a server certificate needs at least one name or address", nameof(identity));
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={Escape(identity.CommonName)}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in identity.DnsNames)
        {
            san.AddDnsName(name);
        }

        foreach (var address in identity.IpAddresses)
        {
            san.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(san.Build(critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var notBefore = now - ClockSkew;
        var notAfter = Min(now + lifetime, NotAfter);
        using var certificate = request.Create(_certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), notBefore, notAfter, Serial());
        return new PemPair(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Whether <paramref name="certificate"/> chains to this CA at <paramref name="now"/> (no revocation, no downloads).</summary>
    public bool Issued(X509Certificate2 certificate, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        return chain.Build(certificate);
    }

    public void Dispose()
    {
        _certificate.Dispose();
        _key.Dispose();
    }

    public override string ToString() => $"CertificateAuthority {{ {_certificate.Subject}, until {NotAfter:O} }}";

    private static X509Certificate2 SelfSign(ECDsa key, X500DistinguishedName subject, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var signed = request.CreateSelfSigned(notBefore, notAfter);

        // The public certificate alone; the key stays in the ECDsa object.
        return X509CertificateLoader.LoadCertificate(signed.RawData);
    }

    private static byte[] Serial()
    {
        // 16 random bytes, the top bit clear so the DER integer is positive.
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        return serial;
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static string Escape(string value) => value.Replace("\"", string.Empty, StringComparison.Ordinal).Replace(",", string.Empty, StringComparison.Ordinal).Replace("=", string.Empty, StringComparison.Ordinal);
}
