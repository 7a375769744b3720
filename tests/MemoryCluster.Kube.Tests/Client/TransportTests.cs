using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.Tests.Controller;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.Client;

/// <summary>
/// How the client reaches and authenticates to a server: tls-server-name, exec plugins that return a client
/// certificate, the in-cluster token's re-reads, and HTTP/2 pings on a connection that died silently.
/// </summary>
[Trait("Category", "Integration")]
public sealed class TransportTests() : TempDirectoryTest("memorycluster-transport-")
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static string Port(FakeApiServer server) => server.Url.Port.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Tls_server_name_checks_the_certificate_against_that_name_instead_of_the_address()
    {
        using var ca = TestCertificates.CreateCa("cluster-ca");
        using var serverCert = TestCertificates.Issue(ca, "apiserver", server: true, "api.memorycluster.test");
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { ServerCertificate = serverCert }, None);
        string Config(string extra) => $"""
            clusters:
            - name: c
              cluster:
                server: https://127.0.0.1:{Port(server)}
                certificate-authority-data: {TestCertificates.Base64(ca.ExportCertificatePem())}
            {extra}
            contexts:
            - name: c
              context: {"{cluster: c}"}
            current-context: c
            """;

        using (var named = new KubeApiClient(KubeConfigLoader.Load([Write("named", Config("    tls-server-name: api.memorycluster.test"))])))
        {
            Assert.Empty((await named.ListAsync(ResourceTypes.ConfigMap, "default", null, None)).Items);
        }

        // The certificate does not name 127.0.0.1: without tls-server-name the handshake must fail.
        using var unnamed = new KubeApiClient(KubeConfigLoader.Load([Write("unnamed", Config(""))]));
        await Assert.ThrowsAsync<HttpRequestException>(() => unnamed.ListAsync(ResourceTypes.ConfigMap, "default", null, None));

        using var wrongName = new KubeApiClient(KubeConfigLoader.Load([Write("wrong", Config("    tls-server-name: other.memorycluster.test"))]));
        await Assert.ThrowsAsync<HttpRequestException>(() => wrongName.ListAsync(ResourceTypes.ConfigMap, "default", null, None));
    }

    [Fact]
    public async Task An_exec_plugin_client_certificate_authenticates_and_a_new_one_is_presented_after_expiry()
    {
        using var ca = TestCertificates.CreateCa("cluster-ca");
        using var serverCert = TestCertificates.Issue(ca, "apiserver", server: true);
        using var first = TestCertificates.Issue(ca, "operator-1", server: false);
        using var second = TestCertificates.Issue(ca, "operator-2", server: false);
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            ServerCertificate = serverCert,
            ClientCertificateAuthority = ca,
            AcceptedTokens = [],
        }, None);
        var time = new ManualTime(DateTimeOffset.UtcNow);
        string Credential(System.Security.Cryptography.X509Certificates.X509Certificate2 cert) => new JsonObject
        {
            ["apiVersion"] = "client.authentication.k8s.io/v1",
            ["kind"] = "ExecCredential",
            ["status"] = new JsonObject
            {
                ["clientCertificateData"] = cert.ExportCertificatePem(),
                ["clientKeyData"] = TestCertificates.KeyPem(cert),
                ["expirationTimestamp"] = time.GetUtcNow().AddMinutes(10).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            },
        }.ToJsonString();
        var current = Write("credential.json", Credential(first));
        var script = Write("plugin.sh", $"""
            #!/bin/sh
            test -n "$KUBERNETES_EXEC_INFO" || exit 3
            cat '{current}'
            """);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var path = Write("exec", $"""
            clusters:
            - name: c
              cluster:
                server: {server.Url.ToString().TrimEnd('/')}
                certificate-authority-data: {TestCertificates.Base64(ca.ExportCertificatePem())}
            users:
            - name: u
              user:
                exec: {"{apiVersion: client.authentication.k8s.io/v1, command: ./plugin.sh}"}
            contexts:
            - name: c
              context: {"{cluster: c, user: u}"}
            current-context: c
            """);
        var settings = KubeConfigLoader.Load([path], time: time);
        var plugin = Assert.IsType<ExecCredentialProvider>(settings.Credentials);
        using var client = new KubeApiClient(settings);
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal(1, plugin.Runs);
        Assert.All(server.ClientCertificates, s => Assert.Equal("CN=operator-1", s));

        // The certificate expires: the plugin runs again and new connections present the new certificate.
        File.WriteAllText(current, Credential(second));
        time.Advance(TimeSpan.FromMinutes(11));
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal(2, plugin.Runs);
        Assert.Equal("CN=operator-2", server.ClientCertificates[^1]);
    }

    [Fact]
    public async Task In_cluster_the_token_is_read_again_after_the_refresh_interval_and_after_a_401()
    {
        using var ca = TestCertificates.CreateCa("cluster-ca");
        using var serverCert = TestCertificates.Issue(ca, "apiserver", server: true);
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            ServerCertificate = serverCert,
            AcceptedTokens = ["first", "second"],
        }, None);
        var sa = Directory.CreateDirectory(Path.Combine(Dir, "sa")).FullName;
        var token = Path.Combine(sa, "token");
        File.WriteAllText(token, "first");
        File.WriteAllText(Path.Combine(sa, "ca.crt"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(sa, "namespace"), "default");
        Assert.Equal(TimeSpan.FromMinutes(1),
            Assert.IsType<TokenFileCredentialProvider>(InClusterConfig.Load("127.0.0.1", "443", sa).Credentials).RefreshInterval);

        var time = new ManualTime(DateTimeOffset.UtcNow);
        var settings = InClusterConfig.Load("127.0.0.1", Port(server), sa, time, tokenRefreshInterval: TimeSpan.FromSeconds(5));
        using var client = new KubeApiClient(settings);
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal("first", server.BearerTokens[^1]);

        // The kubelet rotates the file: within the interval the cached token is still used, after it the new one.
        File.WriteAllText(token, "second");
        time.Advance(TimeSpan.FromSeconds(4));
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal("first", server.BearerTokens[^1]);
        time.Advance(TimeSpan.FromSeconds(2));
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal("second", server.BearerTokens[^1]);

        // The server stops accepting the cached token before the interval is up: the 401 makes the client re-read.
        server.SetAcceptedTokens("third");
        File.WriteAllText(token, "third");
        await client.ListAsync(ResourceTypes.ConfigMap, "default", null, None);
        Assert.Equal(["second", "third"], server.BearerTokens.TakeLast(2));
    }

    [Fact]
    public async Task Http2_pings_fail_a_watch_whose_connection_died_silently_long_before_the_idle_watchdog()
    {
        using var ca = TestCertificates.CreateCa("cluster-ca");
        using var serverCert = TestCertificates.Issue(ca, "apiserver", server: true);
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { ServerCertificate = serverCert }, None);
        await using var proxy = await BlackholeProxy.StartAsync(server.Url.Port);
        using var client = new KubeApiClient(new KubeClientSettings
        {
            Server = new Uri($"https://127.0.0.1:{proxy.Port}"),
            CertificateAuthorities = [ca],
            KeepAlivePingDelay = TimeSpan.FromSeconds(1),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(2),
        });
        using var giveUp = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var options = new WatchOptions { AllowWatchBookmarks = true, IdleTimeout = TimeSpan.FromMinutes(10) };
        var watch = Task.Run(async () =>
        {
            await foreach (var _ in client.WatchAsync(ResourceTypes.ConfigMap, "default", options, giveUp.Token))
            {
            }
        });
        await Eventually.TrueAsync(() => server.OpenWatches == 1, "the watch to open", 30_000);

        // The network drops everything from now on, but no side sees the TCP connection close.
        proxy.Blackhole();
        var failure = await Record.ExceptionAsync(() => watch.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(failure is HttpRequestException or IOException, $"the watch should fail on the missed ping, not with {failure}");
        Assert.False(giveUp.IsCancellationRequested);
    }
}

/// <summary>
/// A TCP proxy on 127.0.0.1 that can start dropping every byte in both directions while keeping the connections
/// open: a network that died without a FIN or RST.
/// </summary>
internal sealed class BlackholeProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _pumps = [];
    private readonly Task _accepting;
    private volatile bool _blackholed;

    private BlackholeProxy(TcpListener listener, int target)
    {
        _listener = listener;
        _target = target;
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public static Task<BlackholeProxy> StartAsync(int targetPort)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return Task.FromResult(new BlackholeProxy(listener, targetPort));
    }

    public void Blackhole() => _blackholed = true;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        List<Task> pumps;
        lock (_pumps)
        {
            pumps = [.. _pumps];
        }

        await Task.WhenAll(pumps).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            var outbound = new TcpClient();
            await outbound.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            lock (_pumps)
            {
                _pumps.Add(PumpAsync(inbound, outbound));
            }
        }
    }

    private async Task PumpAsync(TcpClient inbound, TcpClient outbound)
    {
        using (inbound)
        using (outbound)
        {
            var a = CopyAsync(inbound.GetStream(), outbound.GetStream());
            var b = CopyAsync(outbound.GetStream(), inbound.GetStream());
            await Task.WhenAny(a, b);
        }
    }

    private async Task CopyAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                if (!_blackholed)
                {
                    await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The connection ended or the proxy is stopping.
        }
    }
}
