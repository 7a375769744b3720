using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.Client;

public sealed class SerializationTests
{
    private static JsonNode Write<T>(ResourceType<T> type, T obj)
        where T : class => JsonNode.Parse(KubernetesJson.Serialize(obj, type.Json))!;

    [Fact]
    public void MicroTime_fields_are_written_with_exactly_six_fractional_digits_even_on_a_whole_second()
    {
        var at = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        var lease = Write(ResourceTypes.Lease, new V1Lease
        {
            Metadata = new V1ObjectMeta { CreationTimestamp = at },
            Spec = new V1LeaseSpec { RenewTime = at.AddTicks(1234567), AcquireTime = at },
        });
        Assert.Equal("2026-01-02T03:04:05.123456Z", (string?)lease["spec"]!["renewTime"]);
        Assert.Equal("2026-01-02T03:04:05.000000Z", (string?)lease["spec"]!["acquireTime"]);

        // metav1.Time stays as KubernetesJson writes it (the server reads it with or without a fraction).
        Assert.Equal("2026-01-02T03:04:05Z", (string?)lease["metadata"]!["creationTimestamp"]);

        var e = Write(ResourceTypes.Event, new Eventsv1Event { EventTime = at, Series = new Eventsv1EventSeries { Count = 2, LastObservedTime = at } });
        Assert.Equal("2026-01-02T03:04:05.000000Z", (string?)e["eventTime"]);
        Assert.Equal("2026-01-02T03:04:05.000000Z", (string?)e["series"]!["lastObservedTime"]);
    }

    [Theory]
    [InlineData("2026-01-02T03:04:05Z", 0)]
    [InlineData("2026-01-02T03:04:05.1Z", 1_000_000)]
    [InlineData("2026-01-02T03:04:05.123456Z", 1_234_560)]
    [InlineData("2026-01-02T03:04:05.123456789Z", 1_234_567)]
    [InlineData("2026-01-02T05:04:05.5+02:00", 5_000_000)]
    public void Timestamps_are_read_with_zero_to_nine_fractional_digits_as_UTC(string text, long ticksIntoSecond)
    {
        var lease = KubernetesJson.Deserialize<V1Lease>(
            $$$"""{"spec":{"renewTime":"{{{text}}}"},"metadata":{"creationTimestamp":"{{{text}}}"}}""", ResourceTypes.Lease.Json);
        var expected = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(ticksIntoSecond);
        Assert.Equal(expected, lease.Spec.RenewTime);
        Assert.Equal(DateTimeKind.Utc, lease.Spec.RenewTime!.Value.Kind);
        Assert.Equal(expected, lease.Metadata.CreationTimestamp);
    }

    [Fact]
    public void IntOrString_and_quantities_round_trip_exactly()
    {
        const string Original = """
            {"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"p"},
             "spec":{"minAvailable":"50%","maxUnavailable":1}}
            """;
        var pdb = KubernetesJson.Deserialize<V1PodDisruptionBudget>(Original);
        Assert.Equal("50%", pdb.Spec.MinAvailable.Value);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Original), Write(ResourceTypes.PodDisruptionBudget, pdb)));

        var resources = KubernetesJson.Deserialize<V1ResourceRequirements>("""{"limits":{"cpu":"500m","memory":"1Gi"},"requests":{"cpu":"1.5"}}""");
        Assert.Equal(0.5m, resources.Limits["cpu"].ToDecimal());
        Assert.Equal(1L << 30, resources.Limits["memory"].ToInt64());
        Assert.Equal("""{"limits":{"cpu":"500m","memory":"1Gi"},"requests":{"cpu":"1500m"}}""", KubernetesJson.Serialize(resources));
    }

    [Fact]
    public void A_read_modify_write_keeps_every_field_the_models_know_and_drops_fields_newer_than_the_package()
    {
        const string Original = """
            {"apiVersion":"apps/v1","kind":"StatefulSet",
             "metadata":{"name":"s","namespace":"n","managedFields":[{"manager":"x","operation":"Apply"}]},
             "spec":{"replicas":3,"serviceName":"s-hl","minReadySeconds":7,"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain"},
                     "selector":{"matchLabels":{"a":"b"}},"template":{"spec":{"containers":[{"name":"pg","image":"pg:15"}]}}},
             "status":{"replicas":3,"readyReplicas":2,"currentRevision":"r1"}}
            """;
        var set = KubernetesJson.Deserialize<V1StatefulSet>(Original);
        set.Spec.Replicas = 5;
        var expected = JsonNode.Parse(Original)!;
        expected["spec"]!["replicas"] = 5;
        var written = Write(ResourceTypes.StatefulSet, set);
        Assert.True(JsonNode.DeepEquals(expected, written), written.ToJsonString());

        // A field this version of the package does not model is lost: write such objects with a patch or an apply.
        var future = KubernetesJson.Deserialize<V1StatefulSet>("""{"metadata":{"name":"s"},"spec":{"replicas":1,"futureField":true}}""");
        Assert.Null(Write(ResourceTypes.StatefulSet, future)["spec"]!["futureField"]);
    }

    [Fact]
    public void An_apply_body_sends_no_empty_collection_for_what_was_never_set()
    {
        var set = new V1StatefulSet
        {
            Metadata = new V1ObjectMeta { Name = "db", NamespaceProperty = "default", ResourceVersion = "9", ManagedFields = [new V1ManagedFieldsEntry { Manager = "x" }] },
            Spec = new V1StatefulSetSpec
            {
                Replicas = 3,
                ServiceName = "db-hl",
                Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "db" } },
                Template = new V1PodTemplateSpec { Spec = new V1PodSpec { Containers = [new V1Container { Name = "pg", Image = "pg:15" }] } },
            },
            Status = new V1StatefulSetStatus { Replicas = 3 },
        };
        var body = KubeApiClient.ApplyBody(ResourceTypes.StatefulSet, set, null);
        var expected = JsonNode.Parse("""
            {"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":"default"},
             "spec":{"replicas":3,"selector":{"matchLabels":{"app":"db"}},"serviceName":"db-hl","template":{"spec":{"containers":[{"image":"pg:15","name":"pg"}]}}}}
            """);
        Assert.True(JsonNode.DeepEquals(expected, body), body.ToJsonString());
    }

    [Fact]
    public void A_list_page_and_a_watch_event_of_a_model_keep_resourceVersion_continue_and_items()
    {
        var list = KubernetesJson.Deserialize<KubeList<V1ConfigMap>>("""
            {"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"tok","remainingItemCount":3},
             "items":[{"metadata":{"name":"a","resourceVersion":"40"},"data":{"k":"v"}},{"metadata":{"name":"b","resourceVersion":"41"}}]}
            """, ResourceTypes.ConfigMap.Json);
        Assert.Equal("42", list.Metadata.ResourceVersion);
        Assert.Equal("tok", list.Metadata.ContinueProperty);
        Assert.Equal(3, list.Metadata.RemainingItemCount);
        Assert.Equal(["a", "b"], list.Items.Select(i => i.Metadata.Name));
        Assert.Equal("v", list.Items[0].Data["k"]);

        var e = KubeApiClient.ParseEvent(ResourceTypes.ConfigMap, """{"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"43"}}}""");
        Assert.Equal(WatchEventType.Modified, e.Type);
        Assert.Equal("43", e.ResourceVersion);
        var gone = Assert.Throws<GoneException>(() => KubeApiClient.ParseEvent(ResourceTypes.ConfigMap,
            """{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired","message":"too old"}}"""));
        Assert.Equal("Expired", gone.Reason);
    }
}
