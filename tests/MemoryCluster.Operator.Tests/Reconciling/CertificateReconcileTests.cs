using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tls;

namespace MemoryCluster.Operator.Tests.Reconciling;

/// <summary>The operator's certificates, against the Kubernetes API double over HTTP.</summary>
[Trait("Category", "Integration")]
public sealed class CertificateReconcileTests
{
    private static async Task<V1Secret?> SecretAsync(OperatorHarness harness, string name)
    {
        try
        {
            return await harness.Client.GetAsync(ResourceTypes.Secret, "default", name, CancellationToken.None);
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    private static string Text(V1Secret secret, string key) => Encoding.ASCII.GetString(secret.Data[key]);

    [Fact]
    public async Task The_operator_makes_a_ca_once_and_issues_from_it_a_server_certificate_for_every_name()
    {
        await using var harness = await OperatorHarness.StartAsync();
        harness.StartOperator();
        var created = await harness.CreateAsync(OperatorHarness.Cluster());
        await OperatorHarness.EventuallyAsync(async () => await SecretAsync(harness, "demo-server-tls") is not null, "the server certificate");

        var caSecret = (await SecretAsync(harness, "demo-ca"))!;
        using var ca = CertificateAuthority.FromPem(Text(caSecret, "ca.crt"), Text(caSecret, "ca.key"));
        var server = (await SecretAsync(harness, "demo-server-tls"))!;
        Assert.Equal("kubernetes.io/tls", server.Type);
        Assert.Equal(["ca.crt", "tls.crt", "tls.key"], server.Data.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(ca.CertificatePem, Text(server, "ca.crt"));
        using var certificate = X509Certificate2.CreateFromPem(Text(server, "tls.crt"), Text(server, "tls.key"));
        Assert.True(ca.Issued(certificate, DateTimeOffset.UtcNow));
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames().ToList();
        Assert.Contains("demo-0.demo-hl.default.svc", names);
        Assert.Contains("demo-rw.default.svc.cluster.local", names);
        Assert.Equal(created.Metadata.Uid, Assert.Single(server.Metadata.OwnerReferences).Uid);
        Assert.Equal(created.Metadata.Uid, Assert.Single(caSecret.Metadata.OwnerReferences).Uid);

        // Valid certificates are left alone: more reconciles write neither Secret again.
        foreach (var observation in Planning.StatusPlannerTests.Healthy(3))
        {
            harness.Statuses[observation.Pod] = observation.Status!;
        }

        await harness.WaitForAsync("demo", c => OperatorHarness.ConditionOf(c, ConditionTypes.Ready)?.Status == ConditionStatus.True, "Ready");
        Assert.Equal(caSecret.Metadata.ResourceVersion, (await SecretAsync(harness, "demo-ca"))!.Metadata.ResourceVersion);
        Assert.Equal(server.Metadata.ResourceVersion, (await SecretAsync(harness, "demo-server-tls"))!.Metadata.ResourceVersion);
        Assert.Equal(0, harness.Server.RequestCount("PUT secrets"));
    }

    [Fact]
    public async Task A_server_certificate_due_for_renewal_is_issued_again_from_the_same_ca()
    {
        await using var harness = await OperatorHarness.StartAsync();

        // A certificate of 4 s (plus the 5 min clock skew) is due when less than 1.5 s remain.
        harness.StartOperator(tls: TlsPolicy.Default with { ServerLifetime = TimeSpan.FromSeconds(4), RenewFraction = 0.005 });
        await harness.CreateAsync(OperatorHarness.Cluster());
        await OperatorHarness.EventuallyAsync(async () => await SecretAsync(harness, "demo-server-tls") is not null, "the server certificate");
        var first = (await SecretAsync(harness, "demo-server-tls"))!;
        var ca = (await SecretAsync(harness, "demo-ca"))!;

        await OperatorHarness.EventuallyAsync(async () => Text((await SecretAsync(harness, "demo-server-tls"))!, "tls.crt") != Text(first, "tls.crt"), "a renewed certificate");
        var renewed = (await SecretAsync(harness, "demo-server-tls"))!;
        using var old = X509Certificate2.CreateFromPem(Text(first, "tls.crt"));
        using var now = X509Certificate2.CreateFromPem(Text(renewed, "tls.crt"));
        Assert.True(now.NotAfter > old.NotAfter);
        Assert.NotEqual(Text(first, "tls.key"), Text(renewed, "tls.key"));
        Assert.Equal(Text(ca, "ca.crt"), Text(renewed, "ca.crt"));
        Assert.Equal(ca.Metadata.ResourceVersion, (await SecretAsync(harness, "demo-ca"))!.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task A_corrupt_ca_secret_is_reported_with_what_is_wrong_and_changes_nothing_else()
    {
        await using var harness = await OperatorHarness.StartAsync();
        var corrupt = new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Metadata = new V1ObjectMeta { Name = "demo-ca", NamespaceProperty = "default", Labels = new Dictionary<string, string> { [ClusterLabels.ManagedBy] = ClusterLabels.Manager } },
            Type = "Opaque",
            Data = new Dictionary<string, byte[]> { ["ca.crt"] = Encoding.ASCII.GetBytes("not a certificate"), ["ca.key"] = Encoding.ASCII.GetBytes("not a key") },
        };
        await harness.Client.CreateAsync(ResourceTypes.Secret, corrupt, CancellationToken.None);
        var before = harness.Server.Writes();
        harness.StartOperator();
        await harness.CreateAsync(OperatorHarness.Cluster());

        await OperatorHarness.EventuallyAsync(
            async () => (await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items.Any(e => e.Type == "Warning" && e.Reason == "InvalidCASecret"),
            "a Warning InvalidCASecret");
        var events = await harness.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None);
        var warning = Assert.Single(events.Items, e => e.Reason == "InvalidCASecret");
        Assert.StartsWith("Secret demo-ca: ca.crt is not a PEM certificate; nothing was changed.", warning.Note, StringComparison.Ordinal);
        Assert.DoesNotContain("not a key", warning.Note, StringComparison.Ordinal);

        // Nothing but the cluster itself (the test's write) and the Event: no Secret, no object, no status.
        var after = harness.Server.Writes();
        Assert.All(after.Where(w => before.GetValueOrDefault(w.Key) != w.Value), w => Assert.Contains(w.Key, new[] { "POST memoryclusters", "POST events", "PATCH events" }));
        Assert.Equal(Encoding.ASCII.GetBytes("not a key"), (await SecretAsync(harness, "demo-ca"))!.Data["ca.key"]);
        Assert.Null(await SecretAsync(harness, "demo-server-tls"));
        Assert.Null((await harness.GetAsync("demo")).Status);

        // Deleted, the CA is made anew at the next reconcile (here, a change of the spec) and the cluster proceeds.
        await harness.Client.DeleteAsync(ResourceTypes.Secret, "default", "demo-ca", null, CancellationToken.None);
        await harness.UpdateSpecAsync("demo", s => s with { Postgres = s.Postgres with { Parameters = new Dictionary<string, string> { ["work_mem"] = "8MB" } } });
        await OperatorHarness.EventuallyAsync(async () => await SecretAsync(harness, "demo-server-tls") is not null, "the server certificate from a new CA");
    }
}
