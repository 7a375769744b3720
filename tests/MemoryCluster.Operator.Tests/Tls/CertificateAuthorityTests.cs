using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tls;

namespace MemoryCluster.Operator.Tests.Tls;

public sealed class CertificateAuthorityTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    private static readonly ServerIdentity Identity = TlsNames.ServerIdentityOf(new ClusterNames("demo", "memory"));

    [Fact]
    public void A_new_ca_is_an_ecdsa_p256_ca_that_survives_its_pem_round_trip()
    {
        using var ca = CertificateAuthority.Create("memory/demo CA", Now, TimeSpan.FromDays(365));
        var pem = ca.ToPem();
        using var loaded = CertificateAuthority.FromPem(pem.CertificatePem, pem.KeyPem);

        Assert.Equal(ca.CertificatePem, loaded.CertificatePem);
        Assert.Equal(Now - CertificateAuthority.ClockSkew, ca.NotBefore);
        Assert.Equal(Now + TimeSpan.FromDays(365), ca.NotAfter);
        var constraints = Assert.Single(ca.Certificate.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.True(constraints.CertificateAuthority);
        Assert.Equal(ECCurve.NamedCurves.nistP256.Oid.Value, ca.Certificate.GetECDsaPublicKey()!.ExportParameters(false).Curve.Oid.Value);
        Assert.DoesNotContain("PRIVATE", pem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_server_certificate_covers_every_name_chains_to_its_ca_only_and_holds_its_own_key()
    {
        using var ca = CertificateAuthority.Create("memory/demo CA", Now, TimeSpan.FromDays(365));
        using var other = CertificateAuthority.Create("memory/other CA", Now, TimeSpan.FromDays(365));
        var identity = Identity with { IpAddresses = [IPAddress.Loopback] };
        var pair = ca.Issue(identity, Now, TimeSpan.FromDays(90));

        using var cert = X509Certificate2.CreateFromPem(pair.CertificatePem, pair.KeyPem);
        Assert.True(cert.HasPrivateKey);
        var san = Assert.Single(cert.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Equal(Identity.DnsNames, san.EnumerateDnsNames());
        Assert.Equal([IPAddress.Loopback], san.EnumerateIPAddresses());
        Assert.Contains(cert.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.1");
        Assert.False(Assert.Single(cert.Extensions.OfType<X509BasicConstraintsExtension>()).CertificateAuthority);
        Assert.True(ca.Issued(cert, Now));
        Assert.False(other.Issued(cert, Now));
        Assert.False(ca.Issued(cert, Now + TimeSpan.FromDays(91)), "an ended certificate does not chain");
        Assert.Equal(Now + TimeSpan.FromDays(90), new DateTimeOffset(cert.NotAfter.ToUniversalTime()));
    }

    [Fact]
    public void A_server_certificate_never_outlives_its_ca()
    {
        using var ca = CertificateAuthority.Create("memory/demo CA", Now, TimeSpan.FromDays(30));
        using var cert = X509Certificate2.CreateFromPem(ca.Issue(Identity, Now, TimeSpan.FromDays(90)).CertificatePem);
        Assert.Equal(ca.NotAfter, new DateTimeOffset(cert.NotAfter.ToUniversalTime()));
    }

    [Fact]
    public void A_renewed_ca_keeps_its_key_so_what_it_issued_before_still_chains_to_it()
    {
        using var ca = CertificateAuthority.Create("memory/demo CA", Now, TimeSpan.FromDays(30));
        using var cert = X509Certificate2.CreateFromPem(ca.Issue(Identity, Now, TimeSpan.FromDays(20)).CertificatePem);
        var later = Now + TimeSpan.FromDays(25);
        using var renewed = ca.Renew(later, TimeSpan.FromDays(365));

        Assert.Equal(later + TimeSpan.FromDays(365), renewed.NotAfter);
        Assert.Equal(ca.NotBefore, renewed.NotBefore);
        Assert.Equal(ca.ToPem().KeyPem, renewed.ToPem().KeyPem);
        Assert.NotEqual(ca.CertificatePem, renewed.CertificatePem);
        Assert.True(renewed.Issued(cert, Now + TimeSpan.FromDays(10)));
    }

    public static TheoryData<string, string?, string?> BrokenCas()
    {
        using var ca = CertificateAuthority.Create("memory/demo CA", Now, TimeSpan.FromDays(365));
        using var other = CertificateAuthority.Create("memory/other CA", Now, TimeSpan.FromDays(365));
        var pem = ca.ToPem();
        var leaf = ca.Issue(Identity, Now, TimeSpan.FromDays(90));
        using var rsa = RSA.Create(2048);
        return new TheoryData<string, string?, string?>
        {
            { "ca.crt is missing or empty", null, pem.KeyPem },
            { "ca.key is missing or empty", pem.CertificatePem, " " },
            { "ca.crt is not a PEM certificate", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", pem.KeyPem },
            { "ca.key is not a PEM ECDSA private key", pem.CertificatePem, "garbage" },
            { "ca.key is not a PEM ECDSA private key", pem.CertificatePem, rsa.ExportPkcs8PrivateKeyPem() },
            { "ca.key is not the private key of ca.crt", pem.CertificatePem, other.ToPem().KeyPem },
            { "ca.crt is not a CA certificate (basic constraints)", leaf.CertificatePem, leaf.KeyPem },
        };
    }

    [Theory]
    [MemberData(nameof(BrokenCas))]
    public void A_ca_that_cannot_be_used_is_refused_with_what_is_wrong(string expected, string? certificatePem, string? keyPem)
    {
        var error = Assert.Throws<TlsMaterialException>(() => CertificateAuthority.FromPem(certificatePem, keyPem));
        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void The_server_names_cover_every_pod_of_a_five_member_cluster_and_every_service_form()
    {
        var names = Identity.DnsNames;
        for (var ordinal = 0; ordinal < 5; ordinal++)
        {
            Assert.Contains($"demo-{ordinal}.demo-hl.memory.svc", names);
            Assert.Contains($"demo-{ordinal}.demo-hl.memory.svc.cluster.local", names);
        }

        foreach (var service in new[] { "demo-rw", "demo-ro", "demo-r" })
        {
            Assert.Contains(service, names);
            Assert.Contains($"{service}.memory", names);
            Assert.Contains($"{service}.memory.svc", names);
            Assert.Contains($"{service}.memory.svc.cluster.local", names);
        }

        Assert.Equal(22, names.Count);
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
    }
}
