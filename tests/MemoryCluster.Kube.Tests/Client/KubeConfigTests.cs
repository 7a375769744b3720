using System.Security.Cryptography.X509Certificates;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.Client;

[Trait("Category", "Integration")]
public sealed class KubeConfigTests() : TempDirectoryTest("memorycluster-kubeconfig-")
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task A_token_user_authenticates_and_a_wrong_token_is_Unauthorized()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { AcceptedTokens = ["s3cret"] }, None);
        var good = KubeConfigLoader.Load([Write("good", server.KubeconfigYaml("s3cret", ns: "team"))]);
        Assert.Equal("team", good.Namespace);
        using (var client = new KubeApiClient(good))
        {
            Assert.Empty((await client.ListAsync(ResourceTypes.ConfigMap, "team", null, None)).Items);
        }

        using var wrong = new KubeApiClient(KubeConfigLoader.Load([Write("bad", server.KubeconfigYaml("nope"))]));
        await Assert.ThrowsAsync<UnauthorizedException>(() => wrong.ListAsync(ResourceTypes.ConfigMap, "default", null, None));
    }

    [Fact]
    public async Task A_KUBECONFIG_path_list_is_merged_with_the_first_definition_winning_and_relative_paths_resolved()
    {
        var first = Write("first", """
            clusters:
            - name: c
              cluster: {server: "https://first:6443", insecure-skip-tls-verify: true}
            users:
            - name: u
              user: {tokenFile: token.txt}
            contexts:
            - name: ctx
              context: {cluster: c, user: u, namespace: one}
            current-context: ctx
            """);
        File.WriteAllText(Path.Combine(Dir, "token.txt"), "from-file\n");
        var second = Write("second", """
            clusters:
            - name: c
              cluster: {server: "https://second:6443"}
            - name: other
              cluster: {server: "https://other:6443", tls-server-name: api.example}
            contexts:
            - name: ctx2
              context: {cluster: other, user: u}
            current-context: ctx2
            """);
        var settings = KubeConfigLoader.Load([first, Path.Combine(Dir, "missing"), second]);
        Assert.Equal(new Uri("https://first:6443"), settings.Server);
        Assert.Equal("one", settings.Namespace);
        Assert.True(settings.InsecureSkipTlsVerify);
        Assert.Equal("from-file", (await settings.Credentials.GetAsync(None)).Token);

        var other = KubeConfigLoader.Load([first, second], context: "ctx2");
        Assert.Equal("api.example", other.TlsServerName);
        Assert.Equal("default", other.Namespace);
        Assert.Throws<KubeConfigException>(() => KubeConfigLoader.Load([first], context: "nope"));
    }

    [Fact]
    public async Task A_client_certificate_authenticates_over_TLS_that_trusts_only_the_cluster_CA()
    {
        using var ca = CreateCa("memorycluster-test-ca");
        using var serverCert = Issue(ca, "127.0.0.1", server: true);
        using var clientCert = Issue(ca, "operator", server: false);
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            ServerCertificate = serverCert,
            ClientCertificateAuthority = ca,
            AcceptedTokens = [],
        }, None);
        Assert.Equal("https", server.Url.Scheme);
        var config = $"""
            clusters:
            - name: tls
              cluster:
                server: {server.Url.ToString().TrimEnd('/')}
                certificate-authority-data: {Base64(ca.ExportCertificatePem())}
            users:
            - name: cert
              user:
                client-certificate-data: {Base64(clientCert.ExportCertificatePem())}
                client-key-data: {Base64(clientCert.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem())}
            - name: anonymous
              user: {"{}"}
            contexts:
            - name: cert
              context: {"{cluster: tls, user: cert}"}
            - name: anonymous
              context: {"{cluster: tls, user: anonymous}"}
            current-context: cert
            """;
        var path = Write("tls", config);
        using (var client = new KubeApiClient(KubeConfigLoader.Load([path])))
        {
            Assert.Empty((await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None)).Items);
        }

        using (var anonymous = new KubeApiClient(KubeConfigLoader.Load([path], context: "anonymous")))
        {
            await Assert.ThrowsAsync<UnauthorizedException>(() => anonymous.ListAsync(ResourceTypes.ConfigMap, "default", null, None));
        }

        // Another CA is not trusted, even though the system store is not consulted either.
        using var otherCa = CreateCa("someone-else");
        var untrusting = KubeConfigLoader.Load([path]) with { CertificateAuthorities = [otherCa] };
        using var wrongTrust = new KubeApiClient(untrusting);
        await Assert.ThrowsAsync<HttpRequestException>(() => wrongTrust.ListAsync(ResourceTypes.ConfigMap, "default", null, None));
    }

    [Fact]
    public async Task An_exec_plugin_token_is_cached_until_expiry_and_the_plugin_runs_again_after_a_401()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { AcceptedTokens = ["token-1"] }, None);
        var tokenFile = Write("current-token", "token-1");
        var script = Write("plugin.sh", $$$"""
            #!/bin/sh
            # A client-go credential plugin: prints an ExecCredential with the token in {{{tokenFile}}}.
            test -n "$KUBERNETES_EXEC_INFO" || exit 3
            echo "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"$(cat '{{{tokenFile}}}')\",\"expirationTimestamp\":\"2999-01-01T00:00:00.123456789Z\"}}"
            """);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var path = Write("exec", $"""
            clusters:
            - name: c
              cluster: {"{"}server: "{server.Url.ToString().TrimEnd('/')}"{"}"}
            users:
            - name: u
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: ./plugin.sh
                  env:
                  - name: EXTRA
                    value: "1"
            contexts:
            - name: c
              context: {"{cluster: c, user: u}"}
            current-context: c
            """);
        var settings = KubeConfigLoader.Load([path]);
        var plugin = Assert.IsType<ExecCredentialProvider>(settings.Credentials);
        using var client = new KubeApiClient(settings);
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal(1, plugin.Runs);

        // The credential rotates: the server stops accepting the old token, the plugin now prints the new one.
        server.SetAcceptedTokens("token-2");
        File.WriteAllText(tokenFile, "token-2");
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal(2, plugin.Runs);
    }

    [Fact]
    public async Task In_cluster_configuration_reads_the_service_account_and_rereads_a_rotated_token()
    {
        var sa = Directory.CreateDirectory(Path.Combine(Dir, "sa")).FullName;
        File.WriteAllText(Path.Combine(sa, "token"), "first");
        File.WriteAllText(Path.Combine(sa, "namespace"), "memory-system\n");
        using var ca = CreateCa("cluster-ca");
        File.WriteAllText(Path.Combine(sa, "ca.crt"), ca.ExportCertificatePem());
        var settings = InClusterConfig.Load("fd00::1", "6443", sa);
        Assert.Equal(new Uri("https://[fd00::1]:6443"), settings.Server);
        Assert.Equal("memory-system", settings.Namespace);
        Assert.Equal(ca.Thumbprint, Assert.Single(settings.CertificateAuthorities).Thumbprint);
        Assert.Equal("first", (await settings.Credentials.GetAsync(None)).Token);
        File.WriteAllText(Path.Combine(sa, "token"), "second");
        Assert.Equal("first", (await settings.Credentials.GetAsync(None)).Token);
        settings.Credentials.Invalidate();
        Assert.Equal("second", (await settings.Credentials.GetAsync(None)).Token);
    }

    private static string Base64(string pem) => TestCertificates.Base64(pem);

    private static X509Certificate2 CreateCa(string name) => TestCertificates.CreateCa(name);

    private static X509Certificate2 Issue(X509Certificate2 ca, string name, bool server) => TestCertificates.Issue(ca, name, server);
}
