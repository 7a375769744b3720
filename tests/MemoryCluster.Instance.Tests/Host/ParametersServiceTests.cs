using System.Globalization;
using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Tests.Postgres;
using Npgsql;

namespace MemoryCluster.Instance.Tests.Host;

/// <summary>The user's parameters file applied to a real PostgreSQL 15: reloaded in place, or reported pending a restart.</summary>
[Trait("Category", "Integration")]
public sealed class ParametersServiceTests
{
    private static InstanceOptions OptionsFor(TestNode node, string? superuserPasswordFile = null) => new()
    {
        Id = 1,
        DataRoot = node.Root,
        Peers =
        [
            new Peer(1, node.Name, "127.0.0.1", node.Port, 1, 2),
            new Peer(2, "peer-b", "127.0.0.1", 3, 4, 5),
            new Peer(3, "peer-c", "127.0.0.1", 6, 7, 8),
        ],
        ClusterKeyFile = "/unused",
        ReplicationPasswordFile = WriteFile(node, "replication.password", TestNode.ReplicationPassword),
        SuperuserPasswordFile = superuserPasswordFile,
        ParametersFile = Path.Combine(node.Root, "user-postgresql.conf"),
    };

    private static string WriteFile(TestNode node, string name, string text)
    {
        var path = Path.Combine(node.Root, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static async Task<string> ShowAsync(TestNode node, string parameter)
    {
        // A new session each time: a reload reaches new sessions once the postmaster has read the files.
        await using var connection = node.Connect();
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"show {parameter}", connection);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<DateTime> StartedAtAsync(TestNode node)
    {
        await using var connection = node.Connect();
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select pg_postmaster_start_time()", connection);
        return Convert.ToDateTime(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TestNode node, CapturingLogger log)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}\n{log.Tail()}\n{node.Log.Tail()}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Reload_only_change_takes_effect_without_a_restart_and_a_postmaster_change_is_reported_pending_restart()
    {
        await using var node = TestNode.Create("params");
        var options = OptionsFor(node);
        var log = new CapturingLogger("parameters");
        var service = new ParametersService(options, node.Binaries, node.Tools, node.Client, () => node.Pid, TimeProvider.System, log);

        // Before the first start: the copy is written, and PostgreSQL starts with it (a postmaster parameter included).
        File.WriteAllText(options.ParametersFile!, "work_mem = '8MB'\nshared_buffers = '32MB'\n");
        await node.Tools.InitDbAsync(node.DataDirectory, CancellationToken.None);
        await service.PrepareAsync(CancellationToken.None);
        Assert.True(File.Exists(options.ParametersInForce), log.Tail());
        node.WriteConfig(upstream: null, parametersInclude: options.ParametersInForce);
        await node.StartAsync();
        Assert.Equal("8MB", await ShowAsync(node, "work_mem"));
        Assert.Equal("32MB", await ShowAsync(node, "shared_buffers"));
        var startedAt = await StartedAtAsync(node);
        var pid = node.Pid;

        // A reload-only change and a postmaster one; a managed parameter in the file is left out.
        File.WriteAllText(options.ParametersFile!, "work_mem = '16MB'\nshared_buffers = '64MB'\nport = '1'\n");
        await WaitUntilAsync(
            async () =>
            {
                await service.PassAsync(CancellationToken.None);
                return await ShowAsync(node, "work_mem") == "16MB" && service.Status!.PendingRestart;
            },
            "work_mem is reloaded and shared_buffers waits for a restart",
            node,
            log);
        var status = service.Status!;
        Assert.Equal(["shared_buffers"], status.PendingRestartNames);
        Assert.Equal(["port"], status.Ignored);
        Assert.Null(status.Error);
        Assert.Equal("32MB", await ShowAsync(node, "shared_buffers"));
        Assert.Equal(node.Port.ToString(CultureInfo.InvariantCulture), await ShowAsync(node, "port"));
        Assert.Equal(startedAt, await StartedAtAsync(node));
        Assert.Equal(pid, node.Pid);

        // A value PostgreSQL refuses: the copy in force stays, and the status says why.
        var inForce = await File.ReadAllTextAsync(options.ParametersInForce);
        File.WriteAllText(options.ParametersFile!, "work_mem = 'lots'\nshared_buffers = '64MB'\n");
        await service.PassAsync(CancellationToken.None);
        Assert.Contains("invalid value for parameter \"work_mem\": \"lots\"", service.Status!.Error, StringComparison.Ordinal);
        Assert.Equal(inForce, await File.ReadAllTextAsync(options.ParametersInForce));
        Assert.Equal("16MB", await ShowAsync(node, "work_mem"));

        // The restart the operator orders: the new value is in force and nothing is pending any more.
        await node.StopAsync();
        await node.StartAsync();
        await WaitUntilAsync(
            async () =>
            {
                await service.PassAsync(CancellationToken.None);
                return !service.Status!.PendingRestart;
            },
            "nothing waits for a restart",
            node,
            log);
        Assert.Equal("64MB", await ShowAsync(node, "shared_buffers"));
        Assert.Equal("16MB", await ShowAsync(node, "work_mem"));
    }

    [Fact]
    public async Task Superuser_password_from_its_file_lets_an_admin_connect_over_tcp_on_a_new_primary()
    {
        await using var node = TestNode.Create("superuser");
        var password = "admin-" + Guid.NewGuid().ToString("N");
        var options = OptionsFor(node, WriteFile(node, "superuser.password", password + "\n"));
        await node.Tools.InitDbAsync(node.DataDirectory, CancellationToken.None);
        node.WriteConfig(upstream: null);
        await node.StartAsync();

        var files = new PostgresFiles(options, node.Binaries, new MemberDirectory(options));
        await files.EnsurePrimaryObjectsAsync(node.Client, CancellationToken.None);
        await files.EnsurePrimaryObjectsAsync(node.Client, CancellationToken.None); // idempotent, as on every new primary

        var tcp = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = node.Port, Username = "postgres", Password = password, Database = "postgres", Pooling = false };
        await using (var connection = new NpgsqlConnection(tcp.ConnectionString))
        {
            await connection.OpenAsync();
        }

        tcp.Password = "wrong";
        await using var refused = new NpgsqlConnection(tcp.ConnectionString);
        var error = await Assert.ThrowsAsync<PostgresException>(() => refused.OpenAsync());
        Assert.Equal("28P01", error.SqlState);
    }
}
