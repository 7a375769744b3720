using k8s.Models;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Instance.Tests.Host;

public sealed class PodRoleLabelTests
{
    private static NodeStatus Status(InstanceRole role, bool ready, FollowState follow = FollowState.None, bool waiting = false) => new(
        role, ready, true, ControlState.Initial, new RaftView(Raft.RaftRole.Follower, new Raft.Term(1), MemberId.None, false, false),
        null, Lsn.Zero, Lsn.Zero, Lsn.Zero, true, follow, null, MemberId.None, null, [], "", null, null, null, 0, Epoch.Zero, null, null, false, role == InstanceRole.Primary, null, null, false, WaitingForStandbys: waiting);

    [Theory]
    [InlineData(InstanceRole.Primary, true, FollowState.None, "primary")]
    [InlineData(InstanceRole.Primary, false, FollowState.None, null)]
    [InlineData(InstanceRole.Replica, true, FollowState.Streaming, "replica")]
    [InlineData(InstanceRole.Replica, false, FollowState.Connecting, null)]
    [InlineData(InstanceRole.Replica, false, FollowState.Diverged, null)]
    [InlineData(InstanceRole.Unknown, false, FollowState.None, null)]
    public void Only_a_member_ready_for_its_role_gets_the_label_the_services_select(InstanceRole role, bool ready, FollowState follow, string? label) =>
        Assert.Equal(label, PodRole.Of(Status(role, ready, follow)));

    [Fact]
    public void A_quorum_primary_whose_commits_wait_for_standbys_keeps_the_primary_label() =>
        Assert.Equal("primary", PodRole.Of(Status(InstanceRole.Primary, false, waiting: true)));

    [Fact]
    public async Task The_pods_label_is_set_changed_and_removed_through_the_api_leaving_other_labels()
    {
        await using var server = await FakeApiServer.StartAsync(null, CancellationToken.None);
        using var client = new KubeApiClient(new KubeClientSettings { Server = server.Url });
        await client.CreateAsync(ResourceTypes.Pod, new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "demo-1", NamespaceProperty = "memory", Labels = new Dictionary<string, string> { ["memorycluster.io/cluster"] = "demo" } },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "instance", Image = "memorycluster-instance" }] },
        }, CancellationToken.None);
        var labeler = new KubePodRoleLabeler(client, "memory", "demo-1");

        async Task<IDictionary<string, string>> LabelsAsync() => (await client.GetAsync(ResourceTypes.Pod, "memory", "demo-1", CancellationToken.None)).Metadata.Labels;

        await labeler.SetRoleAsync("primary", CancellationToken.None);
        Assert.Equal("primary", (await LabelsAsync())[KubePodRoleLabeler.Label]);
        await labeler.SetRoleAsync("replica", CancellationToken.None);
        Assert.Equal("replica", (await LabelsAsync())[KubePodRoleLabeler.Label]);
        await labeler.SetRoleAsync(null, CancellationToken.None);
        var labels = await LabelsAsync();
        Assert.False(labels.ContainsKey(KubePodRoleLabeler.Label));
        Assert.Equal("demo", labels["memorycluster.io/cluster"]);

        // A pod that is gone is a clear failure the labeler logs and retries, not a crash of the manager.
        var missing = new KubePodRoleLabeler(client, "memory", "demo-9");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => missing.SetRoleAsync("primary", CancellationToken.None));
        Assert.Contains("memory/demo-9", error.Message, StringComparison.Ordinal);
    }
}
