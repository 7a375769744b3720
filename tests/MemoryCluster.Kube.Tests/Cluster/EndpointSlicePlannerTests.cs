using k8s.Models;
using MemoryCluster.Kube.Cluster.Controllers;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

public class EndpointSlicePlannerTests
{
    /// <summary>Pods as "name:state:role"; the endpoints of the -rw Service (selector role=primary) as "ip ready/serving/terminating".</summary>
    [Theory]
    [InlineData("a:ready:primary,b:ready:replica", false, "10.0.0.1 R S -", "only the pods its selector picks")]
    [InlineData("a:running:primary", false, "10.0.0.1 - - -", "a pod not ready is listed, not ready")]
    [InlineData("a:running:primary", true, "10.0.0.1 R - -", "publishNotReadyAddresses: ready whatever the pod")]
    [InlineData("a:terminating:primary", false, "10.0.0.1 - S T", "a terminating pod serves until it ends, never ready")]
    [InlineData("a:pending:primary", false, "", "a pod without an IP is no endpoint")]
    [InlineData("a:failed:primary", false, "", "an ended pod is no endpoint")]
    [InlineData("a:ready:primary,b:ready:primary", false, "10.0.0.1 R S -;10.0.0.2 R S -", "two primaries: both listed (the Service does not judge)")]
    public void Endpoints_follow_the_selected_pods_and_their_readiness(string pods, bool publishNotReady, string endpoints, string why)
    {
        var service = Service(publishNotReady);
        var plan = EndpointSlicePlanner.Plan(service, Pods(pods), []);

        var slice = Assert.Single(plan.Create);
        var seen = string.Join(";", slice.Endpoints.Select(e =>
            $"{e.Addresses.Single()} {(e.Conditions.Ready == true ? "R" : "-")} {(e.Conditions.Serving == true ? "S" : "-")} {(e.Conditions.Terminating == true ? "T" : "-")}"));
        Assert.True(endpoints == seen, $"{why}: {seen}");
        Assert.Equal(endpoints.Length == 0 ? "" : "postgres/5432", string.Join(",", slice.Ports.Select(p => $"{p.Name}/{p.Port}")));
        Assert.Equal("demo-rw", slice.Metadata.Labels[EndpointSlicePlanner.ServiceNameLabel]);
        Assert.Equal(EndpointSlicePlanner.Manager, slice.Metadata.Labels[EndpointSlicePlanner.ManagedByLabel]);
        Assert.Equal("svc-uid", slice.Metadata.OwnerReferences.Single().Uid);
    }

    [Fact]
    public void A_named_target_port_resolves_per_pod_and_pods_without_it_are_left_out()
    {
        var pods = Pods("a:ready:primary,b:ready:primary,c:ready:primary");
        pods[1].Spec.Containers[0].Ports[0].ContainerPort = 6432;
        pods[2].Spec.Containers[0].Ports = [];
        var plan = EndpointSlicePlanner.Plan(Service(), pods, []);

        Assert.Equal(["10.0.0.1:5432", "10.0.0.2:6432"],
            plan.Create.SelectMany(s => s.Endpoints.Select(e => $"{e.Addresses[0]}:{s.Ports[0].Port}")).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Pods_under_a_headless_service_keep_their_hostnames()
    {
        var service = Service();
        service.Metadata.Name = "demo-hl";
        var pod = Pods("a:ready:primary")[0];
        pod.Spec.Hostname = "demo-0";
        pod.Spec.Subdomain = "demo-hl";
        Assert.Equal("demo-0", EndpointSlicePlanner.Plan(service, [pod], []).Create.Single().Endpoints.Single().Hostname);

        pod.Spec.Subdomain = "other";
        Assert.Null(EndpointSlicePlanner.Plan(service, [pod], []).Create.Single().Endpoints.Single().Hostname);
    }

    [Fact]
    public void A_slice_is_written_only_when_it_changed_and_removed_when_no_longer_wanted()
    {
        var service = Service();
        var first = EndpointSlicePlanner.Plan(service, Pods("a:ready:primary"), []).Create.Single();
        first.Metadata.ResourceVersion = "7";

        var same = EndpointSlicePlanner.Plan(service, Pods("a:ready:primary"), [first]);
        Assert.True(same.Create.Count == 0 && same.Update.Count == 0 && same.Delete.Count == 0);

        // The primary moves: the same slice, new endpoints, written over the version read.
        var moved = EndpointSlicePlanner.Plan(service, Pods("a:ready:replica,b:ready:primary"), [first]);
        var update = Assert.Single(moved.Update);
        Assert.Equal(("7", "10.0.0.2"), (update.Metadata.ResourceVersion, update.Endpoints.Single().Addresses.Single()));

        var stale = Workloads.Copy(first);
        stale.Metadata.Name = "demo-rw-old";
        Assert.Equal("demo-rw-old", EndpointSlicePlanner.Plan(service, Pods("a:ready:primary"), [first, stale]).Delete.Single().Metadata.Name);
    }

    [Fact]
    public void The_placeholder_slice_is_rewritten_when_pods_appear_so_the_service_never_has_two_or_none()
    {
        var service = Service();
        var placeholder = EndpointSlicePlanner.Plan(service, [], []).Create.Single();

        var plan = EndpointSlicePlanner.Plan(service, Pods("a:ready:primary"), [placeholder]);
        Assert.True(plan.Create.Count == 0 && plan.Delete.Count == 0, "recycled, not replaced");
        var update = Assert.Single(plan.Update);
        Assert.Equal((placeholder.Metadata.Name, "postgres/5432", "10.0.0.1"),
            (update.Metadata.Name, string.Join(",", update.Ports.Select(p => $"{p.Name}/{p.Port}")), update.Endpoints.Single().Addresses.Single()));
    }

    [Fact]
    public void A_service_selecting_nothing_has_one_empty_slice_and_one_without_selector_none()
    {
        var empty = EndpointSlicePlanner.Plan(Service(), [], []).Create.Single();
        Assert.Empty(empty.Endpoints);
        Assert.Empty(empty.Ports);

        var manual = Service();
        manual.Spec.Selector = null;
        Assert.Empty(EndpointSlicePlanner.Plan(manual, Pods("a:ready:primary"), []).Create);
    }

    private static V1Service Service(bool publishNotReady = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = "demo-rw", NamespaceProperty = "default", Uid = "svc-uid", Labels = Labels("app=db") },
        Spec = new V1ServiceSpec
        {
            Selector = Labels("app=db", "role=primary"),
            PublishNotReadyAddresses = publishNotReady,
            Ports = [new V1ServicePort { Name = "postgres", Port = 5432, TargetPort = "postgres", Protocol = "TCP" }],
        },
    };

    private static List<V1Pod> Pods(string pods) =>
        [.. pods.Split(',', StringSplitOptions.RemoveEmptyEntries).Select((p, i) =>
        {
            var parts = p.Split(':');
            var pod = WithState(new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = parts[0], NamespaceProperty = "default", Uid = "uid-" + parts[0], Labels = Labels("app=db", "role=" + parts[2]) },
                Spec = Workloads.Copy(Template().Spec),
            }, parts[1], $"10.0.0.{i + 1}");
            return pod;
        })];
}
