using System.Text.RegularExpressions;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.Controller;

[Trait("Category", "Integration")]
public sealed class EventRecorderTests
{
    [Fact]
    public async Task Repeated_events_are_aggregated_into_a_series_and_different_ones_are_new_Events()
    {
        await using var h = await Harness.StartAsync();
        var cluster = await h.Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("demo"), CancellationToken.None);
        var recorder = new EventRecorder(h.Client, "memorycluster.io/operator", "operator-0");
        var regarding = new V1ObjectReference
        {
            ApiVersion = ApiGroup.ApiVersion,
            Kind = ApiGroup.Kind,
            Name = "demo",
            NamespaceProperty = "default",
            Uid = cluster.Metadata.Uid,
        };
        for (var i = 0; i < 3; i++)
        {
            await recorder.RecordAsync(regarding, EventTypes.Warning, "InstancesNotReady", "Reconcile", "2 of 3 instances ready", CancellationToken.None);
        }

        await recorder.RecordAsync(regarding, EventTypes.Normal, "AllInstancesReady", "Reconcile", "3 of 3 instances ready", CancellationToken.None);
        var events = (await h.Client.ListAsync(ResourceTypes.Event, "default", null, CancellationToken.None)).Items;
        Assert.Equal(2, events.Count);
        var repeated = Assert.Single(events, e => e.Reason == "InstancesNotReady");
        Assert.Equal(3, repeated.Series!.Count);
        Assert.Equal("memorycluster.io/operator", repeated.ReportingController);
        Assert.Equal(cluster.Metadata.Uid, repeated.Regarding!.Uid);
        Assert.Null(Assert.Single(events, e => e.Reason == "AllInstancesReady").Series);

        // On the wire, eventTime and series.lastObservedTime are MicroTime: six fractional digits.
        using var http = new HttpClient();
        var raw = await http.GetStringAsync(new Uri(h.Server.Url, "/apis/events.k8s.io/v1/namespaces/default/events/" + repeated.Metadata.Name));
        Assert.Matches(new Regex("\"eventTime\":\"[0-9T:-]+\\.[0-9]{6}Z\""), raw);
        Assert.Matches(new Regex("\"lastObservedTime\":\"[0-9T:-]+\\.[0-9]{6}Z\""), raw);
    }
}
