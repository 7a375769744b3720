using MemoryCluster.Cli.Local;

namespace MemoryCluster.Cli.Tests.Local;

public sealed class ManagerLogTests
{
    [Fact]
    public void A_json_entry_reads_as_time_level_source_and_message()
    {
        const string line = "{\"Timestamp\":\"2026-12-03T17:49:29.022Z\",\"EventId\":5,\"LogLevel\":\"Information\",\"Category\":\"MemoryCluster.Instance.Host.PostgresSupervisor\",\"Message\":\"postgres: 2026-12-03 17:49:29.011 GMT [16562] LOG:  starting PostgreSQL 15.18\",\"State\":{}}";
        Assert.Equal("17:49:29.022 INFO PostgresSupervisor: postgres: 2026-12-03 17:49:29.011 GMT [16562] LOG:  starting PostgreSQL 15.18", ManagerLog.Readable(line));
    }

    [Fact]
    public void Warnings_and_exceptions_show_and_other_lines_pass_through()
    {
        const string line = "{\"Timestamp\":\"2026-12-03T17:49:22.904Z\",\"LogLevel\":\"Error\",\"Category\":\"X.Y.RaftService\",\"Message\":\"raft failed\",\"Exception\":\"System.IO.IOException: disk full\"}";
        Assert.Equal("17:49:22.904 FAIL RaftService: raft failed\nSystem.IO.IOException: disk full", ManagerLog.Readable(line));
        Assert.Equal("Unhandled exception. System.Exception: boom", ManagerLog.Readable("Unhandled exception. System.Exception: boom"));
        Assert.Equal("{not json", ManagerLog.Readable("{not json"));
    }

    [Fact]
    public void A_kubectl_prefix_is_kept_and_the_line_after_it_made_readable()
    {
        const string entry = "{\"Timestamp\":\"2026-12-07T05:31:02.250Z\",\"LogLevel\":\"Warning\",\"Category\":\"MemoryCluster.Instance.Host.NodeDriver\",\"Message\":\"lease lost\"}";
        Assert.Equal("[pod/demo-0/instance] 05:31:02.250 WARN NodeDriver: lease lost", ManagerLog.ReadablePrefixed("[pod/demo-0/instance] " + entry));
        Assert.Equal("[pod/demo-1/instance] LOG:  checkpoint starting", ManagerLog.ReadablePrefixed("[pod/demo-1/instance] LOG:  checkpoint starting"));
        Assert.Equal("05:31:02.250 WARN NodeDriver: lease lost", ManagerLog.ReadablePrefixed(entry));
        Assert.Equal("[no closing bracket", ManagerLog.ReadablePrefixed("[no closing bracket"));
    }
}
