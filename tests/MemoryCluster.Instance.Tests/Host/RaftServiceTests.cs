using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Instance.Tests.Host;

public sealed class RaftServiceTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mc-raft-service-");

    private InstanceOptions Options(string peers)
    {
        var key = Path.Combine(_dir.FullName, "key");
        var password = Path.Combine(_dir.FullName, "password");
        File.WriteAllBytes(key, new byte[32]);
        File.WriteAllText(password, "secret");
        var (options, errors) = InstanceOptionsParser.Parse(new Dictionary<string, string>
        {
            ["id"] = "1",
            ["data-dir"] = Path.Combine(_dir.FullName, "data"),
            ["peers"] = peers,
            ["cluster-key-file"] = key,
            ["replication-password-file"] = password,
        });
        Assert.Empty(errors);
        Directory.CreateDirectory(options!.RaftDirectory);
        return options;
    }

    private static RaftService Service(InstanceOptions options)
    {
        var clock = new ManagerClock(TimeProvider.System);
        var driver = new NodeDriver(new InstanceNode(InstanceHost.NodeConfigFor(options)), clock, TimeProvider.System, NullLogger<NodeDriver>.Instance);
        return new RaftService(options, driver, new ClusterKey(new byte[32]), TimeProvider.System, NullLogger<RaftService>.Instance);
    }

    private static string Peers(int firstRaftPort) =>
        $"1=a@127.0.0.1:{firstRaftPort + 100}:{firstRaftPort}:{firstRaftPort + 200},2=b@127.0.0.1:{firstRaftPort + 101}:{firstRaftPort + 1}:{firstRaftPort + 201},3=c@127.0.0.1:{firstRaftPort + 102}:{firstRaftPort + 2}:{firstRaftPort + 202}";

    [Fact]
    public async Task A_manager_started_with_other_peers_than_its_raft_state_holds_refuses_to_start()
    {
        var port = 20000 + Random.Shared.Next(20000);
        var first = Options(Peers(port));
        var service = Service(first);
        await service.StartAsync(CancellationToken.None);
        await service.StopAsync(CancellationToken.None);
        service.Dispose();

        // The same members start again; other addresses do not.
        var again = Service(Options(Peers(port)));
        await again.StartAsync(CancellationToken.None);
        await again.StopAsync(CancellationToken.None);
        again.Dispose();

        var moved = Service(Options(Peers(port + 3)));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => moved.StartAsync(CancellationToken.None));
        Assert.Contains("refusing to start", error.Message, StringComparison.Ordinal);
        Assert.Contains($"1@127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
