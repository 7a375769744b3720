using System.Net;
using System.Net.Sockets;
using MemoryCluster.Instance.Postgres;
using Npgsql;

namespace MemoryCluster.Instance.Tests.Postgres;

/// <summary>
/// One real PostgreSQL 15 server for a test: its own temp folder, data directory, socket folder and free
/// loopback port, run as the postgres user when the tests run as root. Disposing stops it and deletes it.
/// </summary>
internal sealed class TestNode : IAsyncDisposable
{
    public const string ReplicationUser = "replicator";
    public const string ReplicationPassword = "test-replication-secret";

    private PostgresProcess? _process;

    private TestNode(string name, string root)
    {
        Name = name;
        Root = root;
        Binaries = PgBinaries.Locate(null, null);
        Tools = new PgTools(Binaries);
        Port = FreePort();
        Client = new PgClient(SocketDirectory, Port);
        Log = new CapturingLogger(name);
    }

    public string Name { get; }

    public string Root { get; }

    public string DataDirectory => Path.Combine(Root, "data");

    public string SocketDirectory => Path.Combine(Root, "run");

    public string PassFile => Path.Combine(Root, "replication.pass");

    public int Port { get; }

    public PgBinaries Binaries { get; }

    public PgTools Tools { get; }

    public PgClient Client { get; }

    /// <summary>PostgreSQL's own log lines, for failure messages.</summary>
    public CapturingLogger Log { get; }

    public PostgresProcess Process => _process ?? throw new InvalidOperationException($"{Name} is not running");

    /// <summary>The postmaster's pid while it runs.</summary>
    public int? Pid => _process is { HasExited: false } process ? process.Pid : null;

    public static TestNode Create(string name)
    {
        var root = Directory.CreateTempSubdirectory($"mc-{name}-").FullName;
        var node = new TestNode(name, root);
        Directory.CreateDirectory(node.SocketDirectory);
        File.WriteAllText(node.PassFile, $"*:*:*:{ReplicationUser}:{ReplicationPassword}\n");
        File.SetUnixFileMode(node.PassFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        node.Binaries.GiveToPostgres(root);
        return node;
    }

    public ReplicationSource SourceFor(TestNode replica) =>
        new("127.0.0.1", Port, ReplicationUser, replica.PassFile, replica.Name, replica.Name);

    public void WriteConfig(ReplicationSource? upstream, string? parametersInclude = null, PostgresTls? tls = null)
    {
        var settings = new PostgresSettings(Port, "127.0.0.1", SocketDirectory, Name, upstream, string.Empty, parametersInclude, tls);
        File.WriteAllText(Path.Combine(DataDirectory, "postgresql.conf"), PostgresConfigFiles.PostgresqlConf(settings));
        File.WriteAllText(Path.Combine(DataDirectory, "postgresql.auto.conf"), string.Empty);
        File.WriteAllText(Path.Combine(DataDirectory, "pg_hba.conf"), PostgresConfigFiles.PgHbaConf(ReplicationUser, tls is not null));
        var standby = Path.Combine(DataDirectory, "standby.signal");
        if (upstream is null)
        {
            File.Delete(standby);
        }
        else
        {
            File.WriteAllText(standby, string.Empty);
        }

        Binaries.GiveToPostgres(DataDirectory);
    }

    public async Task StartAsync()
    {
        _process = PostgresProcess.Start(Binaries, DataDirectory, Log);
        await Client.WaitReadyAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
    }

    public async Task StopAsync(ShutdownMode mode = ShutdownMode.Fast)
    {
        if (_process is not null)
        {
            await _process.StopAsync(mode, TimeSpan.FromSeconds(10), CancellationToken.None);
            await _process.DisposeAsync();
            _process = null;
        }
    }

    /// <summary>A TCP connection as the superuser would need a password; tests use the socket instead.</summary>
    public NpgsqlConnection Connect() =>
        new(new NpgsqlConnectionStringBuilder { Host = SocketDirectory, Port = Port, Username = "postgres", Database = "postgres", Pooling = false }.ConnectionString);

    public async Task<long> ScalarAsync(string sql)
    {
        await using var connection = Connect();
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task ExecuteAsync(string sql) => await Client.ExecuteAsync(sql, CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(ShutdownMode.Immediate);
        }
        finally
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
