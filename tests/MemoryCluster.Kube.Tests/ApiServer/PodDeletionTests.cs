using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>The double deletes pods as the real server does: gracefully when a node runs them, at once otherwise.</summary>
public class PodDeletionTests
{
    [Fact]
    public async Task A_pod_on_a_node_is_marked_terminating_until_deleted_with_grace_zero()
    {
        await using var harness = await Harness.StartAsync(installCrd: false);
        var client = harness.Client;
        await client.CreateAsync(ResourceTypes.Pod, Pod("on-node", "node-0", grace: 45), CancellationToken.None);
        var before = DateTime.UtcNow;

        var marked = await client.DeleteAsync(ResourceTypes.Pod, "default", "on-node", null, CancellationToken.None);
        Assert.NotNull(marked);
        Assert.Equal(45, marked.Metadata.DeletionGracePeriodSeconds);
        Assert.InRange(marked.Metadata.DeletionTimestamp!.Value, before.AddSeconds(44), DateTime.UtcNow.AddSeconds(46));
        Assert.NotNull(await client.GetAsync(ResourceTypes.Pod, "default", "on-node", CancellationToken.None));

        // A longer grace never extends it; a shorter one shortens it.
        var longer = await client.DeleteAsync(ResourceTypes.Pod, "default", "on-node", new V1DeleteOptions { GracePeriodSeconds = 100 }, CancellationToken.None);
        Assert.Equal(45, longer!.Metadata.DeletionGracePeriodSeconds);
        var shorter = await client.DeleteAsync(ResourceTypes.Pod, "default", "on-node", new V1DeleteOptions { GracePeriodSeconds = 5 }, CancellationToken.None);
        Assert.Equal(5, shorter!.Metadata.DeletionGracePeriodSeconds);

        // Its node reports on it meanwhile: still there.
        await client.PatchAsync(ResourceTypes.Pod, "default", "on-node", new MergePatch(new System.Text.Json.Nodes.JsonObject { ["status"] = new System.Text.Json.Nodes.JsonObject { ["phase"] = "Running" } }), "status", CancellationToken.None);
        Assert.NotNull(await client.GetAsync(ResourceTypes.Pod, "default", "on-node", CancellationToken.None));

        // The node's agent, once the containers stopped.
        await client.DeleteAsync(ResourceTypes.Pod, "default", "on-node", new V1DeleteOptions { GracePeriodSeconds = 0 }, CancellationToken.None);
        await Assert.ThrowsAsync<NotFoundException>(() => client.GetAsync(ResourceTypes.Pod, "default", "on-node", CancellationToken.None));
    }

    [Theory]
    [InlineData(null, "Running", "on no node")]
    [InlineData("node-0", "Failed", "ended")]
    [InlineData("node-0", "Succeeded", "ended")]
    public async Task A_pod_no_node_runs_goes_at_once(string? node, string phase, string why)
    {
        await using var harness = await Harness.StartAsync(installCrd: false);
        var client = harness.Client;
        var pod = Pod("p", node, grace: 30);
        await client.CreateAsync(ResourceTypes.Pod, pod, CancellationToken.None);
        await client.PatchAsync(ResourceTypes.Pod, "default", "p", new MergePatch(new System.Text.Json.Nodes.JsonObject { ["status"] = new System.Text.Json.Nodes.JsonObject { ["phase"] = phase } }), "status", CancellationToken.None);

        await client.DeleteAsync(ResourceTypes.Pod, "default", "p", null, CancellationToken.None);
        var gone = await Record.ExceptionAsync(() => client.GetAsync(ResourceTypes.Pod, "default", "p", CancellationToken.None));
        Assert.True(gone is NotFoundException, $"a pod {why} should be gone");
    }

    private static V1Pod Pod(string name, string? node, long grace) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1PodSpec { NodeName = node, TerminationGracePeriodSeconds = grace, Containers = [new V1Container { Name = "main", Image = "x" }] },
    };
}
