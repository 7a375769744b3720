using MemoryCluster.Cli.Local;

namespace MemoryCluster.Cli.Tests.Local;

public sealed class PortCandidateTests
{
    [Theory]
    [InlineData(32768, 60999, 1)]
    [InlineData(32768, 60999, 2)]
    [InlineData(10000, 65535, 3)]
    [InlineData(1024, 20000, 4)]
    public void Candidates_are_every_port_from_10000_outside_the_ephemeral_range_once_each(int low, int high, int seed)
    {
        var ports = LocalLayout.PortCandidates((low, high), new Random(seed)).ToList();
        var expected = Enumerable.Range(10000, 65536 - 10000).Where(p => p < low || p > high).ToList();
        Assert.Equal(expected.Count, ports.Count);
        Assert.Equal(expected, ports.Order());
    }

    [Fact]
    public void Two_draws_order_the_ports_differently()
    {
        var first = LocalLayout.PortCandidates((32768, 60999), new Random(1)).Take(20).ToList();
        var second = LocalLayout.PortCandidates((32768, 60999), new Random(2)).Take(20).ToList();
        Assert.NotEqual(first, second);
    }
}
