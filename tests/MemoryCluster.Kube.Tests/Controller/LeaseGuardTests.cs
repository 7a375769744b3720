using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.Controller;

public sealed class LeaseGuardTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(true, 0.0, true)]
    [InlineData(true, 9.99, true)]
    [InlineData(true, 10.0, false)] // the renew deadline reached: the others may be about to take over
    [InlineData(true, 17.6, false)] // thawed after a freeze longer than the deadline
    [InlineData(false, 1.0, false)] // not leading
    [InlineData(true, -1.0, false)] // a clock that went back is not trusted
    public void A_leader_holds_its_lease_for_the_renew_deadline_from_the_start_of_its_last_renewal(bool leading, double seconds, bool holds) =>
        Assert.Equal(holds, LeaseValidity.Holds(leading, TimeSpan.FromSeconds(seconds), Deadline));

    [Fact]
    public void Never_renewed_is_not_held() => Assert.False(LeaseValidity.Holds(true, null, Deadline));

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Writes_through_the_guarded_client_are_refused_without_the_lease_and_reads_go_on()
    {
        await using var h = await Harness.StartAsync(installCrd: false);
        var holds = true;
        var guarded = new LeaseGuardedClient(h.Client, () => holds);
        var map = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "m", NamespaceProperty = "default" }, Data = new Dictionary<string, string> { ["a"] = "1" } };
        await guarded.CreateAsync(ResourceTypes.ConfigMap, map, CancellationToken.None);

        holds = false;
        var patch = new MergePatch(new System.Text.Json.Nodes.JsonObject { ["data"] = new System.Text.Json.Nodes.JsonObject { ["a"] = "2" } });
        await Assert.ThrowsAsync<LeaseLostException>(() => guarded.PatchAsync(ResourceTypes.ConfigMap, "default", "m", patch, null, CancellationToken.None));
        await Assert.ThrowsAsync<LeaseLostException>(() => guarded.DeleteAsync(ResourceTypes.ConfigMap, "default", "m", null, CancellationToken.None));
        await Assert.ThrowsAsync<LeaseLostException>(() => guarded.CreateAsync(ResourceTypes.ConfigMap, map with { Metadata = new V1ObjectMeta { Name = "n", NamespaceProperty = "default" } }, CancellationToken.None));

        // Nothing reached the server; reads still work.
        var read = await guarded.GetAsync(ResourceTypes.ConfigMap, "default", "m", CancellationToken.None);
        Assert.Equal("1", read.Data["a"]);
        Assert.Single((await guarded.ListAsync(ResourceTypes.ConfigMap, "default", null, CancellationToken.None)).Items);
    }
}
