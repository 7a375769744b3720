using MemoryCluster.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tests.Planning;

public sealed class IdentityPlannerTests
{
    private static readonly ClusterNames Names = new("demo", "memory");

    private static MemoryClusterStatus Recorded(long[] founders, params long[] ids) => new()
    {
        FoundingMembers = founders,
        Members = [.. ids.Select((id, ordinal) => new MemberIdentity { Name = $"demo-{ordinal}", Id = id })],
    };

    private static Dictionary<string, MemberId> Members(params ulong[] ids) =>
        ids.Select((id, ordinal) => (id, ordinal)).ToDictionary(x => $"demo-{x.ordinal}", x => new MemberId(x.id));

    private static ulong[] Ids(MemberIdentities identities) => [.. identities.Ids.Select(i => i.Value)];

    private static ulong[] Founders(MemberIdentities identities) => [.. identities.Founders.Select(i => i.Value)];

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void A_new_cluster_is_founded_by_all_its_pods_the_pod_of_ordinal_n_being_member_n_plus_1(int instances)
    {
        var plan = IdentityPlanner.Plan(Names, new IdentityInput(instances, instances, null, null, null, null));
        Assert.Equal(Enumerable.Range(1, instances).Select(i => (ulong)i), Ids(plan));
        Assert.Equal(Ids(plan), Founders(plan));
    }

    [Fact]
    public void Pods_added_by_a_scale_get_the_next_ids_and_are_not_founders()
    {
        var plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 5, 3, Recorded([1, 2, 3], 1, 2, 3), Members(1, 2, 3), []));
        Assert.Equal([1UL, 2, 3, 4, 5], Ids(plan));
        Assert.Equal([1UL, 2, 3], Founders(plan));
    }

    [Fact]
    public void A_removed_members_pod_that_comes_back_gets_a_new_id_above_every_id_known()
    {
        // 3 -> 5 -> 3: members 4 and 5 were removed; status still records them, or not.
        var plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 5, 3, Recorded([1, 2, 3], 1, 2, 3, 4, 5), Members(1, 2, 3), [new MemberId(4), new MemberId(5)]));
        Assert.Equal([1UL, 2, 3, 6, 7], Ids(plan));
        plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 5, 3, Recorded([1, 2, 3], 1, 2, 3), Members(1, 2, 3), [new MemberId(4), new MemberId(5)]));
        Assert.Equal([1UL, 2, 3, 6, 7], Ids(plan));

        // And again: 6 and 7 removed too.
        plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 5, 3, Recorded([1, 2, 3], 1, 2, 3, 6, 7), Members(1, 2, 3), [new MemberId(4), new MemberId(5), new MemberId(6), new MemberId(7)]));
        Assert.Equal([1UL, 2, 3, 8, 9], Ids(plan));
    }

    [Fact]
    public void A_founder_removed_by_a_scale_down_comes_back_as_a_joining_member()
    {
        // Founded with 5, scaled to 3 (4 and 5 removed), back to 5: founders stay 1-5, the returning pods are 6 and 7.
        var plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 5, 3, Recorded([1, 2, 3, 4, 5], 1, 2, 3), Members(1, 2, 3), [new MemberId(4), new MemberId(5)]));
        Assert.Equal([1UL, 2, 3, 6, 7], Ids(plan));
        Assert.Equal([1UL, 2, 3, 4, 5], Founders(plan));
    }

    [Fact]
    public void A_leaving_pod_keeps_its_id_until_it_is_gone_and_a_given_id_is_kept_while_not_removed()
    {
        // Shrinking 5 -> 3: demo-4 (5) removed already, its pod still there.
        var plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 3, 5, Recorded([1, 2, 3], 1, 2, 3, 4, 5), Members(1, 2, 3, 4), [new MemberId(5)]));
        Assert.Equal([1UL, 2, 3, 4, 5], Ids(plan));

        // Growing, demo-3 given 6 and not added yet: it keeps 6.
        plan = IdentityPlanner.Plan(Names, new IdentityInput(5, 5, 5, Recorded([1, 2, 3], 1, 2, 3, 6, 7), Members(1, 2, 3), [new MemberId(4), new MemberId(5)]));
        Assert.Equal([1UL, 2, 3, 6, 7], Ids(plan));
    }

    [Fact]
    public void Without_a_record_the_existing_pods_founded_the_cluster_and_the_membership_wins()
    {
        // A cluster made before ids were recorded: its StatefulSet's pods are the founders.
        var plan = IdentityPlanner.Plan(Names, new IdentityInput(3, 3, 3, null, null, null));
        Assert.Equal([1UL, 2, 3], Ids(plan));
        Assert.Equal([1UL, 2, 3], Founders(plan));

        // What the managers hold wins over the record.
        plan = IdentityPlanner.Plan(Names, new IdentityInput(4, 5, 4, Recorded([1, 2, 3], 1, 2, 3, 9), Members(1, 2, 3, 6), [new MemberId(4)]));
        Assert.Equal([1UL, 2, 3, 6], Ids(plan));
    }
}
