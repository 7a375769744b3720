using System.Text.Json;
using System.Text.Json.Nodes;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.Tests.Client;

public sealed class SerializationTests
{
    [Fact]
    public void MicroTime_fields_are_written_with_exactly_six_fractional_digits()
    {
        var at = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567);
        var json = JsonSerializer.SerializeToNode(new Lease { Spec = new LeaseSpec { RenewTime = at, AcquireTime = at } }, KubeJson.Options)!;
        Assert.Equal("2026-01-02T03:04:05.123456Z", (string?)json["spec"]!["renewTime"]);
        var e = JsonSerializer.SerializeToNode(new EventsV1Event { EventTime = at.AddTicks(-1234567) }, KubeJson.Options)!;
        Assert.Equal("2026-01-02T03:04:05.000000Z", (string?)e["eventTime"]);
    }

    [Theory]
    [InlineData("2026-01-02T03:04:05Z", 0)]
    [InlineData("2026-01-02T03:04:05.1Z", 1_000_000)]
    [InlineData("2026-01-02T03:04:05.123456Z", 1_234_560)]
    [InlineData("2026-01-02T03:04:05.123456789Z", 1_234_567)]
    [InlineData("2026-01-02T05:04:05.5+02:00", 5_000_000)]
    public void Timestamps_are_read_with_zero_to_nine_fractional_digits(string text, long ticksIntoSecond)
    {
        var lease = JsonSerializer.Deserialize<Lease>($$$"""{"spec":{"renewTime":"{{{text}}}"},"metadata":{"creationTimestamp":"{{{text}}}"}}""", KubeJson.Options)!;
        var expected = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(ticksIntoSecond);
        Assert.Equal(expected, lease.Spec!.RenewTime);
        Assert.Equal(expected, lease.Metadata.CreationTimestamp);
    }

    [Fact]
    public void Times_are_written_as_whole_seconds_in_UTC()
    {
        var json = JsonSerializer.SerializeToNode(new ConfigMap
        {
            Metadata = new Api.Meta.ObjectMeta { CreationTimestamp = new DateTimeOffset(2026, 1, 2, 5, 4, 5, TimeSpan.FromHours(2)).AddMilliseconds(500) },
        }, KubeJson.Options)!;
        Assert.Equal("2026-01-02T03:04:05Z", (string?)json["metadata"]!["creationTimestamp"]);
    }

    [Fact]
    public void Fields_we_do_not_model_survive_a_read_modify_write_round_trip()
    {
        const string Original = """
            {"apiVersion":"apps/v1","kind":"StatefulSet","futureTopLevel":{"a":1},
             "metadata":{"name":"s","namespace":"n","managedFields":[{"manager":"x"}],"futureMeta":"m"},
             "spec":{"replicas":3,"serviceName":"s-hl","minReadySeconds":7,"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain"},
                     "selector":{"matchLabels":{"a":"b"},"futureSelector":true}},
             "status":{"replicas":3,"readyReplicas":2,"currentRevision":"r1"}}
            """;
        var set = JsonSerializer.Deserialize<StatefulSet>(Original, KubeJson.Options)!;
        var modified = set with { Spec = set.Spec! with { Replicas = 5 } };
        var written = JsonSerializer.SerializeToNode(modified, KubeJson.Options)!;
        var expected = JsonNode.Parse(Original)!;
        expected["spec"]!["replicas"] = 5;
        Assert.True(JsonNode.DeepEquals(expected, written), written.ToJsonString());
    }
}
