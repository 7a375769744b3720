using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Raft;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class MembershipPlannerTests
{
    private static readonly Peer[] Configured = [.. Enumerable.Range(1, 3).Select(i => Member(i))];

    private static Peer Member(int i) => new((ulong)i, $"mc-{i}", "127.0.0.1", 5000 + i, 6000 + i, 7000 + i);

    /// <summary>
    /// A cluster as the leader (mc-1, also primary unless said) sees it. <paramref name="members"/>: "1 2 3" voters,
    /// "4L" a learner added through the managers; "R5" among <paramref name="retired"/>.
    /// </summary>
    private static MembershipInput Input(
        string members = "1 2 3",
        string down = "",
        string streaming = "2 3 4 5",
        ulong commit = 100,
        ulong learnerMatch = 100,
        int primary = 1,
        int leader = 1,
        bool pending = false,
        string retired = "")
    {
        var list = members.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(m =>
        {
            var learner = m.EndsWith('L');
            var id = int.Parse(m.TrimEnd('L'), System.Globalization.CultureInfo.InvariantCulture);
            return new Raft.Member(new NodeId((ulong)id), id <= 3 ? Member(id).RaftAddress : Member(id).MemberAddress, !learner);
        }).ToList();
        var downIds = Ids(down);
        var streamingIds = Ids(streaming);
        var reports = list.Where(m => (int)m.Id.Value != leader).ToDictionary(
            m => MemberId.FromNodeId(m.Id),
            m => downIds.Contains((int)m.Id.Value)
                ? PeerView.Unreachable(MemberId.FromNodeId(m.Id))
                : (int)m.Id.Value == primary
                    ? Peer((int)m.Id.Value, Instance.Node.InstanceRole.Primary)
                    : Peer((int)m.Id.Value, Instance.Node.InstanceRole.Replica, streaming: streamingIds.Contains((int)m.Id.Value)));
        var match = list.ToDictionary(m => m.Id, m => new LogIndex(m.IsVoter ? commit : learnerMatch));
        return new MembershipInput(
            new ClusterConfig(list, [.. Ids(retired).Select(i => new NodeId((ulong)i))]),
            pending,
            new LogIndex(commit),
            match,
            Id(leader),
            Id(primary),
            reports,
            Configured);
    }

    private static HashSet<int> Ids(string text) =>
        [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, System.Globalization.CultureInfo.InvariantCulture))];

    private static string Describe(MembershipStep step) => step switch
    {
        MembershipStep.Change c => $"{c.Proposal.Type} {c.Proposal.Node}",
        MembershipStep.Refused r => $"refused {r.Status}",
        MembershipStep.HandOver h => $"hand over to {h.To}",
        _ => step.GetType().Name,
    };

    [Theory]
    [InlineData("1 2 3", "", "AddLearner 4", "a new member joins as a learner")]
    [InlineData("1 2 3 4L", "", "PromoteLearner 4", "a caught-up, streaming learner is promoted")]
    [InlineData("1 2 3 4", "", "Done", "a voter already: a repeated call converges")]
    [InlineData("1 2 3", "pending", "InProgress", "one change at a time")]
    [InlineData("1 2 3 4L", "pending", "InProgress", "one change at a time, for a promotion too")]
    [InlineData("1 2 3 4L", "behind", "InProgress", "a learner whose Raft log lags is not promoted")]
    [InlineData("1 2 3 4L", "not streaming", "InProgress", "a learner whose PostgreSQL does not stream yet is not promoted")]
    [InlineData("1 2 3 4L", "2 3 down", "refused 409", "a promotion with no majority of the new voters answering is refused")]
    [InlineData("1 2 3 4L", "3 down", "PromoteLearner 4", "3 of 4 voters answer: a majority")]
    [InlineData("1 2 3", "retired", "refused 409", "ids are never reused")]
    [InlineData("1 2 3 5 6", "", "refused 409", "at most 5 members")]
    public void Adding_a_member(string members, string condition, string expected, string why)
    {
        var input = Input(
            members,
            down: condition.EndsWith(" down", StringComparison.Ordinal) ? condition[..^5] : "",
            streaming: condition == "not streaming" ? "2 3" : "2 3 4 5",
            learnerMatch: condition == "behind" ? 90UL : 100UL,
            pending: condition == "pending",
            retired: condition == "retired" ? "4" : "");
        Assert.True(expected == Describe(MembershipPlanner.PlanAdd(input, Member(4))), why);
    }

    [Fact]
    public void A_member_whose_id_name_or_address_belongs_to_another_is_refused()
    {
        Assert.Equal("refused 409", Describe(MembershipPlanner.PlanAdd(Input("1 2 3 4"), Member(4) with { Name = "other" })));
        Assert.Equal("refused 409", Describe(MembershipPlanner.PlanAdd(Input(), Member(4) with { Name = "mc-2" })));
        Assert.Equal("refused 409", Describe(MembershipPlanner.PlanAdd(Input(), Member(4) with { PgPort = Member(2).PgPort })));
    }

    [Theory]
    [InlineData("1 2 3 4 5", 5, "", "RemoveNode 5", "the highest id goes")]
    [InlineData("1 2 3 4 5", 1, "", "refused 409", "never the primary: switch over first")]
    [InlineData("1 2 3", 3, "", "refused 409", "never below three voters")]
    [InlineData("1 2 3 4", 4, "2 3 down", "refused 409", "the voters left must make a majority that answers")]
    [InlineData("1 2 3 4 5", 5, "2 down", "RemoveNode 5", "4 voters left, 3 answer")]
    [InlineData("1 2 3 4 5", 5, "pending", "InProgress", "one change at a time")]
    [InlineData("1 2 3 4L", 4, "", "RemoveNode 4", "a learner goes at once")]
    [InlineData("1 2 3", 4, "retired", "Done", "already removed: a repeated call converges")]
    [InlineData("1 2 3", 7, "", "refused 404", "never a member")]
    [InlineData("1 2 3 4 5", 2, "leader 2", "hand over to 3", "the Raft leader hands over first")]
    [InlineData("1 2 3 4 5", 4, "4 not streaming", "refused 409", "quorum mode: k standbys must still stream")]
    public void Removing_a_member(string members, int id, string condition, string expected, string why)
    {
        var input = Input(
            members,
            down: condition.EndsWith(" down", StringComparison.Ordinal) ? condition[..^5] : "",
            streaming: condition == "4 not streaming" ? "3" : "2 3 4 5",
            pending: condition == "pending",
            retired: condition == "retired" ? "4" : "",
            leader: condition == "leader 2" ? 2 : 1);
        Assert.True(expected == Describe(MembershipPlanner.PlanRemove(input, Id(id), quorumMode: true)), $"{why}: {Describe(MembershipPlanner.PlanRemove(input, Id(id), quorumMode: true))}");
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(4, 2)]
    [InlineData(5, 2)]
    public void Quorum_mode_waits_for_half_the_voters_rounded_down(int voters, int k) =>
        Assert.Equal(k, MembershipPlanner.SyncStandbyCount(voters));

    [Fact]
    public void Members_are_named_from_their_raft_address_or_the_peers_setting_and_a_moved_member_is_a_conflict()
    {
        var held = Input("1 2 3 4L").Config.Members;
        Assert.Equal(["mc-1", "mc-2", "mc-3", "mc-4"], MembershipPlanner.Resolve(held, Configured).Select(p => p.Name));
        Assert.Equal(Member(4), MembershipPlanner.Resolve(held, []).Single());
        Assert.Empty(MembershipPlanner.Conflicts(held, [.. Configured, Member(4), Member(5)]));
        Assert.Single(MembershipPlanner.Conflicts(held, [Member(1) with { RaftPort = 9999 }, Member(2), Member(3)]));
        Assert.Equal("127.0.0.1:6004", Peer.TransportAddressOf(Member(4).MemberAddress));
        Assert.Equal("127.0.0.1:6001", Peer.TransportAddressOf(Member(1).RaftAddress));
    }
}
