using System.Diagnostics;
using MemoryCluster.Kube.Cluster.Node;

namespace MemoryCluster.Kube.Tests.Cluster;

public class ProcessTreeTests
{
    [Theory]
    [InlineData("77 (postgres) S 12 77 12 0 -1 4194560 1385", 77, 12, "postgres")]
    [InlineData("4012 (my (odd) name) R 1 4012 4012 0", 4012, 1, "my (odd) name")]
    [InlineData("9 (a b) Z 3 0", 9, 3, "a b")]
    public void A_stat_line_gives_pid_parent_and_command_even_with_spaces_and_parentheses(string line, int pid, int parent, string command) =>
        Assert.Equal(new ProcessEntry(pid, parent, command), ProcessTree.ParseStat(line));

    [Theory]
    [InlineData("")]
    [InlineData("77 postgres S 12")]
    [InlineData("x (postgres) S 12")]
    [InlineData("77 (postgres) S")]
    public void A_line_of_another_shape_is_not_a_process(string line) => Assert.Null(ProcessTree.ParseStat(line));

    [Fact]
    public void Below_a_process_are_its_children_and_theirs_but_not_itself_nor_its_siblings()
    {
        var all = new[]
        {
            new ProcessEntry(1, 0, "init"),
            new ProcessEntry(10, 1, "unshare"),
            new ProcessEntry(11, 10, "memorycluster"),
            new ProcessEntry(12, 11, "postgres"),
            new ProcessEntry(13, 12, "postgres"),
            new ProcessEntry(20, 1, "unshare"),
            new ProcessEntry(21, 20, "postgres"),
        };

        Assert.Equal([11, 12, 13], ProcessTree.Below(all, 10).Select(p => p.Pid).Order());
        Assert.Empty(ProcessTree.Below(all, 13));
    }

    [Fact]
    public void The_topmost_postgres_is_the_postmaster_not_its_backends()
    {
        var inside = new[]
        {
            new ProcessEntry(11, 10, "memorycluster"),
            new ProcessEntry(12, 11, "postgres"),
            new ProcessEntry(13, 12, "postgres"),
            new ProcessEntry(14, 12, "postgres"),
            new ProcessEntry(15, 11, "pg_rewind"),
        };

        Assert.Equal([12], ProcessTree.Topmost(inside, "postgres").Select(p => p.Pid));
        Assert.Empty(ProcessTree.Topmost(inside, "initdb"));
    }

    [Fact]
    public void Read_finds_a_real_child_below_this_process()
    {
        using var child = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        try
        {
            var below = ProcessTree.Below(ProcessTree.Read(), Environment.ProcessId);
            Assert.Contains(below, p => p.Pid == child.Id && p.Command == "sleep");
        }
        finally
        {
            child.Kill();
            child.WaitForExit();
        }
    }
}
