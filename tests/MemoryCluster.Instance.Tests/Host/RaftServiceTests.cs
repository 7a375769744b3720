using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Instance.Tests.Host;

public sealed class RaftServiceTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mc-raft-service-");

    private InstanceOptions Options(string peers, bool join = false, string id = "1", string? founders = null)
    {
        var key = Path.Combine(_dir.FullName, "key");
        var password = Path.Combine(_dir.FullName, "password");
        File.WriteAllBytes(key, new byte[32]);
        File.WriteAllText(password, "secret");
        var settings = new Dictionary<string, string>
        {
            ["id"] = id,
            ["data-dir"] = Path.Combine(_dir.FullName, "data"),
            ["peers"] = peers,
            ["cluster-key-file"] = key,
            ["replication-password-file"] = password,
            ["join"] = join ? "true" : "false",
        };
        if (founders is not null)
        {
            settings["founders"] = founders;
        }

        var (options, errors) = InstanceOptionsParser.Parse(settings);
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

    [Fact]
    public async Task With_founders_a_founder_founds_with_the_founders_only_and_a_member_added_later_joins()
    {
        var port = 20000 + Random.Shared.Next(20000);
        var peers = Peers(port) + $",4=d@127.0.0.1:{port + 103}:{port + 3}:{port + 203}";
        var founder = Service(Options(peers, founders: "1,2,3"));
        await founder.StartAsync(CancellationToken.None);
        Assert.Equal(new ulong[] { 1, 2, 3 }, founder.Status.Members.Select(m => m.Id.Value).Order().ToArray());
        await founder.StopAsync(CancellationToken.None);
        founder.Dispose();

        // Restarted with the same config (the pods share one), it starts as before.
        var again = Service(Options(peers, founders: "1,2,3"));
        await again.StartAsync(CancellationToken.None);
        Assert.Equal(3, again.Status.Members.Count);
        await again.StopAsync(CancellationToken.None);
        again.Dispose();
    }

    [Fact]
    public async Task A_removed_members_data_that_comes_back_under_a_new_id_joins_afresh_with_its_old_raft_state_set_aside()
    {
        var port = 20000 + Random.Shared.Next(20000);
        string PeersWith(ulong id) => Peers(port) + $",{id}=d@127.0.0.1:{port + 103}:{port + 3}:{port + 203}";
        // As the host does at start, before any service: the data's owner is recorded (then set aside when it changed).
        string Prepare(InstanceOptions o) => RaftIdentity.Prepare(o.RaftDirectory, o.DataDirectory, o.Id, o.Join, _ => { }).ToString();
        var first = Options(PeersWith(4), id: "4", founders: "1,2,3");
        Assert.Equal("Record", Prepare(first));
        var joiner = Service(first);
        await joiner.StartAsync(CancellationToken.None);
        Assert.Empty(joiner.Status.Members);
        await joiner.StopAsync(CancellationToken.None);
        joiner.Dispose();

        var options = Options(PeersWith(6), id: "6", founders: "1,2,3");
        Assert.Equal("Retire", Prepare(options));
        var back = Service(options);
        await back.StartAsync(CancellationToken.None);
        Assert.Empty(back.Status.Members);
        await back.StopAsync(CancellationToken.None);
        back.Dispose();
        Assert.True(Directory.Exists(Path.Combine(_dir.FullName, "data", "raft.retired-4")), "member 4's Raft state set aside");
        Assert.Equal("6", File.ReadAllText(Path.Combine(_dir.FullName, "data", "raft", "id")).Trim());
    }
}
