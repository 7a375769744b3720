using MemoryCluster.Cli.Local;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;

namespace MemoryCluster.Cli.Tests.Local;

public sealed class HistoryTableTests
{
    [Fact]
    public void The_history_table_lists_each_change_oldest_first_and_says_what_it_does_not_know()
    {
        var history = new HistoryDocument(42, new Epoch(4),
        [
            new PrimaryChangeDocument(new Epoch(1), null, null, "mc-1", PrimaryChangeReason.Unknown),
            new PrimaryChangeDocument(new Epoch(2), DateTimeOffset.FromUnixTimeMilliseconds(1_796_300_000_123), "mc-1", "mc-2", PrimaryChangeReason.Failover),
            new PrimaryChangeDocument(new Epoch(3), DateTimeOffset.FromUnixTimeMilliseconds(1_796_300_060_000), "mc-2", "mc-3", PrimaryChangeReason.Switchover),
            new PrimaryChangeDocument(new Epoch(4), DateTimeOffset.FromUnixTimeMilliseconds(1_796_300_120_000), "mc-3", "mc-3", PrimaryChangeReason.SwitchoverAborted),
        ]);

        var lines = LocalCluster.HistoryTable(history).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(
        [
            "EPOCH  TIME (UTC)               FROM  TO    REASON",
            "1      -                        -     mc-1  unknown (proposed by an older manager)",
            "2      2026-12-03 12:13:20.123  mc-1  mc-2  failover",
            "3      2026-12-03 12:14:20.000  mc-2  mc-3  switchover",
            "4      2026-12-03 12:15:20.000  mc-3  mc-3  switchover aborted (resumed at a new epoch)",
            "epoch 4 now",
        ],
        lines);
    }

    [Fact]
    public void A_full_history_says_only_the_last_hundred_are_kept()
    {
        var changes = Enumerable.Range(1, ControlState.HistoryLimit).Select(i => new PrimaryChangeDocument(new Epoch((ulong)i), null, "mc-1", "mc-2", PrimaryChangeReason.Failover)).ToList();

        var table = LocalCluster.HistoryTable(new HistoryDocument(500, new Epoch(100), changes));

        Assert.EndsWith("epoch 100 now; the control state keeps the last 100\n", table, StringComparison.Ordinal);
    }
}
