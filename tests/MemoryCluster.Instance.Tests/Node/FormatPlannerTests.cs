using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Raft;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class FormatPlannerTests
{
    /// <summary>Members 1 and 2 voters, 3 a learner (joining); the cluster writes format <paramref name="format"/>.</summary>
    private static ControlState Cluster(int format) => State(0, 0) with
    {
        Format = format,
        Members = [new Member(new NodeId(1), "a:1", true), new Member(new NodeId(2), "b:1", true), new Member(new NodeId(3), "c:1", false)],
    };

    private static Dictionary<MemberId, PeerView> Views(params (int Id, bool Reachable, int Format)[] views) =>
        views.ToDictionary(v => Id(v.Id), v => (v.Reachable ? Peer(v.Id, InstanceRole.Replica) : PeerView.Unreachable(Id(v.Id))) with { ControlFormat = v.Format });

    public static TheoryData<string, int, (int, bool, int)[], int?> Cases() => new()
    {
        { "every member reads 1: raised", 0, [(1, true, 1), (2, true, 1), (3, true, 1)], 1 },
        { "a learner of an older release (it applies the log too): not raised", 0, [(1, true, 1), (2, true, 1), (3, true, 0)], null },
        { "a member not heard: not raised", 0, [(1, true, 1), (2, true, 1)], null },
        { "a member unreachable: not raised", 0, [(1, true, 1), (2, true, 1), (3, false, 1)], null },
        { "already written: nothing to do", 1, [(1, true, 1), (2, true, 1), (3, true, 1)], null },
        { "every member reads 2, the cluster writes 1: raised to 2", 1, [(1, true, 2), (2, true, 2), (3, true, 2)], 2 },
        { "the lowest counts", 0, [(1, true, 2), (2, true, 1), (3, true, 2)], 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_leader_raises_the_control_format_only_to_what_every_member_reads(string name, int format, (int, bool, int)[] views, int? expected) =>
        Assert.True(FormatPlanner.Raise(Cluster(format), Views(views)) == expected, name);

    [Fact]
    public void The_first_primary_waits_for_the_format_a_short_while_then_goes_ahead()
    {
        var everyone = Views((1, true, 1), (2, true, 1), (3, true, 1));
        var oneDown = Views((1, true, 1), (2, true, 1));
        Assert.False(FormatPlanner.BootstrapMayProceed(Cluster(0), everyone, ledForMs: 60_000));
        Assert.True(FormatPlanner.BootstrapMayProceed(Cluster(1), everyone, ledForMs: 0));
        Assert.False(FormatPlanner.BootstrapMayProceed(Cluster(0), oneDown, ledForMs: FormatPlanner.BootstrapWaitMs - 1));
        Assert.True(FormatPlanner.BootstrapMayProceed(Cluster(0), oneDown, ledForMs: FormatPlanner.BootstrapWaitMs));
    }
}
