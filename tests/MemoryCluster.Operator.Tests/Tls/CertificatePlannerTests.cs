using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tls;

namespace MemoryCluster.Operator.Tests.Tls;

public sealed class CertificatePlannerTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly TlsPolicy Policy = TlsPolicy.Default;

    private static readonly ServerIdentity Wanted = TlsNames.ServerIdentityOf(new ClusterNames("demo", "memory"));

    /// <summary>Days after <see cref="Start"/> of a 90-day certificate; whether it is to be renewed (a third: 30 days before its end).</summary>
    [Theory]
    [InlineData(-1, true)] // not valid yet: a clock that jumped back
    [InlineData(0, false)]
    [InlineData(30, false)]
    [InlineData(59, false)]
    [InlineData(60.01, true)] // less than 30 of 90 days remain
    [InlineData(89, true)]
    [InlineData(90, true)] // ended
    [InlineData(400, true)]
    public void A_certificate_is_renewed_once_less_than_a_third_of_its_lifetime_remains(double days, bool due) =>
        Assert.Equal(due, Policy.RenewalDue(Start + TimeSpan.FromDays(days), Start, Start + TimeSpan.FromDays(90)));

    [Theory]
    [InlineData(0.5, 49, false)]
    [InlineData(0.5, 51, true)]
    [InlineData(0.1, 89, false)]
    [InlineData(0.1, 91, true)]
    public void The_renewal_share_is_a_setting(double fraction, double daysOf100, bool due) =>
        Assert.Equal(due, (Policy with { RenewFraction = fraction }).RenewalDue(Start + TimeSpan.FromDays(daysOf100), Start, Start + TimeSpan.FromDays(100)));

    [Fact]
    public void A_certificate_with_no_lifetime_is_always_due() =>
        Assert.True(Policy.RenewalDue(Start, Start, Start));

    [Theory]
    [InlineData(100, false)]
    [InlineData(1300, true)] // 5 years: due once less than ~608 days remain
    public void The_ca_follows_the_same_rule(double days, bool due) =>
        Assert.Equal(due, CertificatePlanner.Ca(Policy, Start, Start + Policy.CaLifetime, Start + TimeSpan.FromDays(days)).Issue);

    private static ServerCertificateFacts Valid => new(Start, Start + TimeSpan.FromDays(90), Wanted.DnsNames, ChainsToCa: true, KeyMatches: true, CaBundleCurrent: true);

    public static TheoryData<string, ServerCertificateFacts?, string?, double, bool, string> Cases => new()
    {
        { "none yet", null, null, 1, true, "no server certificate yet" },
        { "unreadable", null, "tls.crt or tls.key is missing", 1, true, "tls.crt or tls.key is missing" },
        { "valid", Valid, null, 1, false, "tls.crt is valid until" },
        { "another key", Valid with { KeyMatches = false }, null, 1, true, "tls.key is not the private key of tls.crt" },
        { "another CA", Valid with { ChainsToCa = false }, null, 1, true, "tls.crt does not chain to the cluster's CA" },
        { "stale CA bundle", Valid with { CaBundleCurrent = false }, null, 1, true, "ca.crt is not the cluster's current CA certificate" },
        { "a name missing", Valid with { DnsNames = [.. Wanted.DnsNames.Where(n => n != "demo-4.demo-hl.memory.svc")] }, null, 1, true, "tls.crt does not cover demo-4.demo-hl.memory.svc" },
        { "extra names are fine", Valid with { DnsNames = [.. Wanted.DnsNames, "extra.example"] }, null, 1, false, "tls.crt is valid until" },
        { "names compare without case", Valid with { DnsNames = [.. Wanted.DnsNames.Select(n => n.ToUpperInvariant())] }, null, 1, false, "tls.crt is valid until" },
        { "due", Valid, null, 61, true, "tls.crt ends 2026-04-01" },
        { "ended", Valid, null, 95, true, "tls.crt ends" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_server_certificate_is_issued_when_missing_unusable_or_due(string what, ServerCertificateFacts? facts, string? unreadable, double day, bool issue, string reason)
    {
        var decision = CertificatePlanner.Server(Policy, Wanted, facts, unreadable, Start + TimeSpan.FromDays(day));
        Assert.True(issue == decision.Issue, what);
        Assert.StartsWith(reason, decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Facts_are_read_from_the_secrets_pem_text_and_judged_against_the_ca()
    {
        using var ca = CertificateAuthority.Create("memory/demo CA", Start, TimeSpan.FromDays(365));
        using var other = CertificateAuthority.Create("memory/other CA", Start, TimeSpan.FromDays(365));
        var pair = ca.Issue(Wanted, Start, TimeSpan.FromDays(90));
        var stranger = other.Issue(Wanted, Start, TimeSpan.FromDays(90));

        var (facts, unreadable) = ServerCertificateFacts.Read(pair.CertificatePem, pair.KeyPem, ca.CertificatePem, ca, Start);
        Assert.Null(unreadable);
        Assert.Equal((true, true, true), (facts!.ChainsToCa, facts.KeyMatches, facts.CaBundleCurrent));
        Assert.False(CertificatePlanner.Server(Policy, Wanted, facts, null, Start).Issue);

        var (mixed, _) = ServerCertificateFacts.Read(pair.CertificatePem, stranger.KeyPem, other.CertificatePem, ca, Start);
        Assert.Equal((true, false, false), (mixed!.ChainsToCa, mixed.KeyMatches, mixed.CaBundleCurrent));
        var (foreign, _) = ServerCertificateFacts.Read(stranger.CertificatePem, stranger.KeyPem, ca.CertificatePem, ca, Start);
        Assert.False(foreign!.ChainsToCa);

        Assert.Equal("tls.crt or tls.key is missing", ServerCertificateFacts.Read(null, pair.KeyPem, null, ca, Start).Unreadable);
        Assert.Equal("tls.crt or tls.key does not parse as a PEM certificate and ECDSA key", ServerCertificateFacts.Read("garbage", pair.KeyPem, null, ca, Start).Unreadable);
    }
}
