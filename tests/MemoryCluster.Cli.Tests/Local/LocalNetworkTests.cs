using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;

namespace MemoryCluster.Cli.Tests.Local;

public sealed class LocalNetworkTests
{
    [Fact]
    public void Names_and_addresses_follow_the_subnet_octet_and_fit_interface_name_limits()
    {
        var network = new LocalNetwork(213);
        var member = new Peer(5, "mc-5", LocalNetwork.MemberAddress(213, 5), 1, 2, 3);

        Assert.Equal("10.213.213.0/24", network.Subnet);
        Assert.Equal("10.213.213.1", network.BridgeAddress);
        Assert.Equal("10.213.213.15", member.Host);
        Assert.Equal("mc213-5", network.Namespace(member));
        Assert.True(network.Veth(member).Length <= 15 && network.Bridge.Length <= 15, "Linux interface names are at most 15 characters");
    }

    [Fact]
    public void The_network_is_stored_in_cluster_json_and_read_back()
    {
        var dir = Directory.CreateTempSubdirectory("mc-layout-").FullName;
        try
        {
            var created = LocalLayout.Create(dir, 3, "quorum", new LocalNetwork(42));
            var loaded = LocalLayout.Load(dir)!;

            Assert.Equal(new LocalNetwork(42), loaded.Network);
            Assert.Equal(created.Members, loaded.Members);
            Assert.All(loaded.Members, m => Assert.StartsWith("10.213.42.", m.Host, StringComparison.Ordinal));
            Assert.Null(LocalLayout.Create(Path.Combine(dir, "plain"), 3, "async").Network);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Needs root (CAP_NET_ADMIN), as the local cluster's PostgreSQL does on CI.</summary>
    [Fact]
    [Trait("Category", "Integration")]
    public async Task Up_with_netns_puts_each_member_in_its_namespace_isolate_cuts_its_link_and_down_removes_everything()
    {
        var dir = Directory.CreateTempSubdirectory("mc-netns-").FullName;
        LocalLayout? layout = null;
        try
        {
            var (code, stdout, stderr) = Cli.Run("local", "up", "--dir", dir, "--netns", "--timeout", "120", "--no-compute");
            layout = LocalLayout.Load(dir)!;
            var network = layout.Network!;
            Assert.True(code == 0, $"local up --netns failed:\n{stdout}\n{stderr}");
            Assert.Contains("blackhole 10.213.0.0/16", Ip("route"), StringComparison.Ordinal);
            var namespaces = Ip("netns", "list");
            Assert.All(layout.Members, m => Assert.Contains(network.Namespace(m), namespaces, StringComparison.Ordinal));

            // The manager runs inside its member's namespace: its network namespace differs from ours.
            var cluster = new LocalCluster(layout, TextWriter.Null);
            var pid = cluster.RunningPid(layout.Members[0])!.Value;
            Assert.NotEqual(new FileInfo("/proc/self/ns/net").LinkTarget, new FileInfo($"/proc/{pid}/ns/net").LinkTarget);

            Assert.Equal(0, Cli.Run("local", "isolate", layout.Members[0].Name, "--dir", dir).ExitCode);
            Assert.Contains("state DOWN", Ip("link", "show", network.Veth(layout.Members[0])), StringComparison.Ordinal);
            Assert.Equal(0, Cli.Run("local", "heal", layout.Members[0].Name, "--dir", dir).ExitCode);
            Assert.True(await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None), LocalCluster.Table(await cluster.StatusAsync(CancellationToken.None)));
        }
        finally
        {
            Cli.Run("local", "down", "--dir", dir, "--purge");
        }

        // Other clusters may have networks of their own: only this one's pieces must be gone.
        var links = Ip("-o", "link");
        var left = Ip("netns", "list").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).ToList();
        Assert.DoesNotContain($": {layout!.Network!.Bridge}:", links, StringComparison.Ordinal);
        Assert.All(layout.Members, m => Assert.DoesNotContain($": {layout.Network.Veth(m)}@", links, StringComparison.Ordinal));
        Assert.All(layout.Members, m => Assert.DoesNotContain(layout.Network.Namespace(m), left));
        Assert.False(Directory.Exists(dir));
    }

    private static string Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }
}
