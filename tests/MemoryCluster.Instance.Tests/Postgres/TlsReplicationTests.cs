using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Operator.Tls;
using Npgsql;

namespace MemoryCluster.Instance.Tests.Postgres;

/// <summary>
/// Real PostgreSQL 15 servers serving TLS with certificates from the operator's certificate module, set up as the
/// manager sets them up: the mounted files (here root-owned 0400, which PostgreSQL could not even read) copied by
/// <see cref="TlsFiles"/>, postgresql.conf and pg_hba.conf from <see cref="PostgresConfigFiles"/>, replication with
/// <c>sslmode=verify-full</c>.
/// </summary>
[Trait("Category", "Integration")]
public sealed class TlsReplicationTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private const string PostmasterStarted = "select (extract(epoch from pg_postmaster_start_time()) * 1000000)::bigint";

    private static readonly ServerIdentity Loopback = new("localhost", ["localhost"], [IPAddress.Loopback]);

    private readonly DirectoryInfo _mounted = Directory.CreateTempSubdirectory("mc-tls-mount-");

    private TlsFileSettings Mounted => new(Path.Combine(_mounted.FullName, "tls.crt"), Path.Combine(_mounted.FullName, "tls.key"), Path.Combine(_mounted.FullName, "ca.crt"));

    public void Dispose() => _mounted.Delete(recursive: true);

    /// <summary>Writes what the Secret volume would hold, each file 0400 and owned by whoever runs the tests.</summary>
    private void Mount(CertificateAuthority ca, PemPair server)
    {
        foreach (var (path, text) in new[] { (Mounted.CaFile, ca.CertificatePem), (Mounted.CertificateFile, server.CertificatePem), (Mounted.KeyFile, server.KeyPem) })
        {
            var temp = path + ".new";
            File.WriteAllText(temp, text);
            File.SetUnixFileMode(temp, UnixFileMode.UserRead);
            File.Move(temp, path, overwrite: true);
        }
    }

    /// <summary>
    /// The certificate the server at <paramref name="port"/> presents: PostgreSQL's SSLRequest, then a TLS handshake
    /// that accepts anything and keeps what it was shown (the test judges it).
    /// </summary>
    private static async Task<X509Certificate2> ServedCertificateAsync(int port)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        var request = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(request, 8);
        BinaryPrimitives.WriteInt32BigEndian(request.AsSpan(4), 80877103);
        await stream.WriteAsync(request);
        var answer = new byte[1];
        await stream.ReadExactlyAsync(answer);
        Assert.Equal((byte)'S', answer[0]);
        X509Certificate2? served = null;
        await using var tls = new SslStream(stream, leaveInnerStreamOpen: false, (_, certificate, _, _) =>
        {
            served = X509CertificateLoader.LoadCertificate(certificate!.GetRawCertData());
            return true;
        });
        await tls.AuthenticateAsClientAsync("localhost");
        return served!;
    }

    private static NpgsqlConnection Tcp(TestNode node, string sslMode, string? rootCertificate = null) =>
        new(new NpgsqlConnectionStringBuilder
        {
            Host = "localhost",
            Port = node.Port,
            Username = TestNode.ReplicationUser,
            Password = TestNode.ReplicationPassword,
            Database = "postgres",
            Pooling = false,
            SslMode = Enum.Parse<SslMode>(sslMode),
            RootCertificate = rootCertificate,
        }.ConnectionString);

    [Fact]
    public async Task Postgres_serves_the_operators_certificate_replicates_over_verified_tls_and_serves_a_renewed_one_after_a_reload()
    {
        using var ca = CertificateAuthority.Create("test/demo CA", Now, TimeSpan.FromDays(365));
        var first = ca.Issue(Loopback, Now, TimeSpan.FromDays(90));
        Mount(ca, first);

        await using var primary = TestNode.Create("a");
        var primaryTls = new TlsFiles(Mounted, Path.Combine(primary.Root, "tls"), primary.Binaries);
        Assert.True(primaryTls.Sync());
        Assert.False(primaryTls.Sync(), "nothing changed, nothing copied");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(primaryTls.Copies.KeyFile));
        await primary.Tools.InitDbAsync(primary.DataDirectory, CancellationToken.None);
        primary.WriteConfig(upstream: null, tls: primaryTls.Copies);
        await primary.StartAsync();
        await primary.Client.EnsureRoleAsync(TestNode.ReplicationUser, TestNode.ReplicationPassword, replication: true, CancellationToken.None);
        await primary.Client.EnsureSlotsAsync(["b"], dropOthers: false, CancellationToken.None);

        // The server presents the issued certificate, which chains to the cluster's CA; a client verifying name and
        // chain (verify-full) gets in, one without TLS matches no pg_hba.conf line.
        using (var served = await ServedCertificateAsync(primary.Port))
        {
            using var issued = X509Certificate2.CreateFromPem(first.CertificatePem);
            Assert.Equal(issued.SerialNumber, served.SerialNumber);
            Assert.True(ca.Issued(served, DateTimeOffset.UtcNow));
        }

        await using (var verified = Tcp(primary, nameof(SslMode.VerifyFull), primaryTls.Copies.CaFile))
        {
            await verified.OpenAsync();
            await using var command = new NpgsqlCommand("select ssl from pg_stat_ssl where pid = pg_backend_pid()", verified);
            Assert.Equal(true, await command.ExecuteScalarAsync());
        }

        await using (var plain = Tcp(primary, nameof(SslMode.Disable)))
        {
            var refused = await Assert.ThrowsAsync<PostgresException>(() => plain.OpenAsync());
            Assert.Equal("28000", refused.SqlState);
        }

        // The replica clones and streams with sslmode=verify-full against the host name in the certificate.
        await using var replica = TestNode.Create("b");
        var replicaTls = new TlsFiles(Mounted, Path.Combine(replica.Root, "tls"), replica.Binaries);
        replicaTls.Sync();
        var source = primary.SourceFor(replica) with { Host = "localhost", SslRootCert = replicaTls.Copies.CaFile };
        Assert.Contains("sslmode=verify-full", source.ConnInfo, StringComparison.Ordinal);
        await replica.Tools.BaseBackupAsync(replica.DataDirectory, source, CancellationToken.None);
        replica.WriteConfig(source, tls: replicaTls.Copies);
        await replica.StartAsync();
        const string walsenderOverTls = "select count(*) from pg_stat_replication r join pg_stat_ssl s using (pid) where r.application_name = 'b' and r.state = 'streaming' and s.ssl";
        await ReplicationLifecycleTests.WaitUntilAsync(async () => await primary.ScalarAsync(walsenderOverTls) == 1, "the walsender streams to b over TLS", primary, replica);
        await primary.ExecuteAsync("create table t (id int primary key); insert into t select generate_series(1, 10)");
        await ReplicationLifecycleTests.WaitUntilAsync(async () => await replica.ScalarAsync("select count(*) from pg_class where relname = 't'") == 1 && await replica.ScalarAsync("select count(*) from t") == 10, "the rows reach b", primary, replica);

        // A renewed certificate (the Secret changed): copied, reloaded, served; the postmaster never restarted.
        var started = await primary.ScalarAsync(PostmasterStarted);
        var renewed = ca.Issue(Loopback, DateTimeOffset.UtcNow, TimeSpan.FromDays(90));
        Mount(ca, renewed);
        Assert.True(primaryTls.Sync());
        await primary.Client.ReloadAsync(CancellationToken.None);
        using var renewedCertificate = X509Certificate2.CreateFromPem(renewed.CertificatePem);
        await ReplicationLifecycleTests.WaitUntilAsync(
            async () =>
            {
                using var served = await ServedCertificateAsync(primary.Port);
                return served.SerialNumber == renewedCertificate.SerialNumber;
            },
            "the renewed certificate is served",
            primary);
        Assert.Equal(started, await primary.ScalarAsync(PostmasterStarted));
        Assert.Equal(1, await primary.ScalarAsync(walsenderOverTls));

        // A pair that does not match (a certificate with another's key) is refused at the reload; the last good one stays.
        Mount(ca, first with { KeyPem = renewed.KeyPem });
        Assert.True(primaryTls.Sync());
        await primary.Client.ReloadAsync(CancellationToken.None);
        await ReplicationLifecycleTests.WaitUntilAsync(() => Task.FromResult(primary.Log.Tail(400).Contains("SSL configuration was not reloaded", StringComparison.Ordinal)), "PostgreSQL refuses the broken pair", primary);
        using var stillServed = await ServedCertificateAsync(primary.Port);
        Assert.Equal(renewedCertificate.SerialNumber, stillServed.SerialNumber);
    }
}
