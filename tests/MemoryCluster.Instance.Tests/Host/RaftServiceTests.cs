using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Instance.Tests.Host;

public sealed class RaftServiceTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mc-raft-service-");

    private InstanceOptions Options(string peers, bool join = false)
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
            ["join"] = join ? "true" : "false",
        });
        Assert.Empty(errors);
        Directory.CreateDirectory(options!.RaftDirectory);
        return options;
    }

    private static RaftService Service(InstanceOptions options)
    {
        var clock = new ManagerClock(TimeProvider.System);
        var driver = new NodeDriver(new InstanceNode(InstanceHost.NodeConfigFor(options)), clock, TimeProvider.System, NullLogger<NodeDriver>.Instance);
        return new RaftService(options, driver, new MemberDirectory(options), new ClusterKey(new byte[32]), TimeProvider.System, NullLogger<RaftService>.Instance);
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

    [Fact]
    public async Task A_joining_manager_founds_nothing_and_a_founder_takes_its_members_from_raft_not_from_a_longer_peers_setting()
    {
        var port = 20000 + Random.Shared.Next(20000);
        var joiner = Service(Options(Peers(port), join: true));
        await joiner.StartAsync(CancellationToken.None);
        Assert.Empty(joiner.Status.Members);
        await joiner.StopAsync(CancellationToken.None);
        joiner.Dispose();

        // Started again without the flag, it still waits to be added: the founding record says it joined.
        var again = Service(Options(Peers(port)));
        await again.StartAsync(CancellationToken.None);
        Assert.Empty(again.Status.Members);
        await again.StopAsync(CancellationToken.None);
        again.Dispose();
        Assert.Equal(string.Empty, File.ReadAllText(Path.Combine(_dir.FullName, "data", "raft", "members")).Trim());
    }

    [Fact]
    public async Task A_founder_restarted_with_two_more_peers_keeps_the_three_members_raft_holds()
    {
        var port = 20000 + Random.Shared.Next(20000);
        var first = Service(Options(Peers(port)));
        await first.StartAsync(CancellationToken.None);
        await first.StopAsync(CancellationToken.None);
        first.Dispose();

        var five = Peers(port) + $",4=d@127.0.0.1:{port + 103}:{port + 3}:{port + 203},5=e@127.0.0.1:{port + 104}:{port + 4}:{port + 204}";
        var again = Service(Options(five));
        await again.StartAsync(CancellationToken.None);
        Assert.Equal([1UL, 2, 3], again.Status.Members.Select(m => m.Id.Value));
        await again.StopAsync(CancellationToken.None);
        again.Dispose();
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
