using System.Text.Json.Nodes;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>kubectl get pods through the double shows what it shows on a real cluster.</summary>
public class PodTableTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("""{"running":{}}""", true, 0, null, "1/1 Running 0 90s 127.10.0.4 node-0")]
    [InlineData("""{"waiting":{"reason":"CrashLoopBackOff"}}""", false, 4, null, "0/1 CrashLoopBackOff 4 90s 127.10.0.4 node-0")]
    [InlineData("""{"running":{}}""", true, 1, "2026-12-06T12:00:30Z", "1/1 Terminating 1 90s 127.10.0.4 node-0")]
    public void A_pod_row_has_ready_status_restarts_age_ip_and_node(string state, bool ready, int restarts, string? deleting, string row)
    {
        var metadata = new JsonObject { ["name"] = "demo-0", ["creationTimestamp"] = "2026-12-06T11:58:30Z" };
        if (deleting is not null)
        {
            metadata["deletionTimestamp"] = deleting;
        }

        var pod = new JsonObject
        {
            ["metadata"] = metadata,
            ["spec"] = JsonNode.Parse("""{"nodeName":"node-0","containers":[{"name":"instance"}]}"""),
            ["status"] = new JsonObject
            {
                ["phase"] = "Running",
                ["podIP"] = "127.10.0.4",
                ["containerStatuses"] = new JsonArray(new JsonObject { ["name"] = "instance", ["ready"] = ready, ["restartCount"] = restarts, ["state"] = JsonNode.Parse(state) }),
            },
        };
        Assert.Equal(row, string.Join(' ', Tables.PodCells(pod, Now)));
    }

    [Fact]
    public void A_pod_just_made_is_pending_with_none_for_what_it_lacks() =>
        Assert.Equal("0/1 Pending 0 90s <none> <none>",
            string.Join(' ', Tables.PodCells(JsonNode.Parse("""{"metadata":{"creationTimestamp":"2026-12-06T11:58:30Z"},"spec":{"containers":[{"name":"a"}]}}""")!.AsObject(), Now)));
}
