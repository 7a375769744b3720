using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class ReplicationLivenessTests
{
    private static StandbyObservation Row(string name, string state = "streaming", double? replyAge = 0.5) =>
        new(name, state, "quorum", new Lsn(100), new Lsn(100), null, replyAge);

    [Theory]
    [InlineData("streaming", 0.0, true)]
    [InlineData("streaming", 2.9, true)]
    [InlineData("streaming", 3.0, true)]
    [InlineData("streaming", 3.1, false)]
    [InlineData("streaming", 600.0, false)]
    [InlineData("streaming", null, false)]
    [InlineData("catchup", 0.1, false)]
    [InlineData("backup", 0.1, false)]
    public void A_standby_replies_when_it_streams_and_its_last_reply_is_at_most_3_s_old(string state, double? age, bool replying) =>
        Assert.Equal(replying, ReplicationLiveness.IsReplying(Row("mc-2", state, age)));

    [Fact]
    public void Replying_members_are_distinct_other_members()
    {
        var config = Config(self: 1, members: 5);
        Assert.Equal(2, ReplicationLiveness.ReplyingMembers([Row("mc-2"), Row("mc-2"), Row("mc-3"), Row("mc-1"), Row("stranger"), Row("mc-4", replyAge: 9)], config));
    }

    [Theory]
    [InlineData(3, 0, "waiting for synchronous standbys: 0 of 1 replying")]
    [InlineData(3, 1, null)]
    [InlineData(5, 1, "waiting for synchronous standbys: 1 of 2 replying")]
    [InlineData(5, 2, null)]
    public void A_quorum_primary_is_blocked_below_k_replying_standbys(int members, int replying, string? why)
    {
        var rows = Enumerable.Range(2, members - 1).Select(i => Row($"mc-{i}", replyAge: i - 2 < replying ? 0.2 : 7)).ToArray();
        Assert.Equal(why, ReplicationLiveness.SynchronousCommitsBlocked(Primary(standbys: rows), Config(members: members)));
        Assert.Null(ReplicationLiveness.SynchronousCommitsBlocked(Primary(), Config(members: members, mode: ReplicationMode.Async)));
    }

    /// <summary>Rows "name:age" (age "-": none yet; state catchup when the name ends in "!"), at now = 100,000 ms; null: nothing dates it.</summary>
    [Theory]
    [InlineData(3, "mc-2:4.5,mc-3:7", 98_500L)]
    [InlineData(3, "mc-2:3.2", 99_800L)]
    [InlineData(3, "mc-2:9,mc-2:4", 99_000L)]
    [InlineData(3, "", null)]
    [InlineData(3, "mc-2:-", null)]
    [InlineData(3, "mc-2!:8", null)]
    [InlineData(3, "mc-1:8,stranger:8", null)]
    [InlineData(5, "mc-2:4,mc-3:6,mc-4:20", 97_000L)]
    [InlineData(5, "mc-2:4", null)]
    public void A_starved_primary_dates_its_starvation_from_when_the_kth_freshest_reply_went_stale(int members, string rows, long? since)
    {
        var standbys = rows.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(r =>
        {
            var (name, age) = (r.Split(':')[0], r.Split(':')[1]);
            return Row(name.TrimEnd('!'), name.EndsWith('!') ? "catchup" : "streaming", age == "-" ? null : double.Parse(age, System.Globalization.CultureInfo.InvariantCulture));
        });
        Assert.Equal(since, ReplicationLiveness.StarvedSince(standbys, Config(members: members), 100_000));
    }

    [Theory]
    [InlineData(WalReceiverStatus.Streaming, 0.3, true)]
    [InlineData(WalReceiverStatus.Streaming, 4.0, true)]
    [InlineData(WalReceiverStatus.Streaming, 4.2, false)]
    [InlineData(WalReceiverStatus.Streaming, null, true)]
    [InlineData(WalReceiverStatus.Waiting, 0.1, false)]
    [InlineData(WalReceiverStatus.None, null, false)]
    public void A_walreceiver_streams_when_postgres_says_so_and_it_heard_from_the_primary_within_4_s(WalReceiverStatus receiver, double? age, bool streaming)
    {
        var pg = Replica() with { Receiver = receiver, ReceiptAgeSeconds = age };
        Assert.Equal(streaming, ReplicationLiveness.ReceiverNotStreaming(pg) is null);
    }
}
