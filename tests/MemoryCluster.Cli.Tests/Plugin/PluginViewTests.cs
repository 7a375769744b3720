using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Cli.Plugin;

namespace MemoryCluster.Cli.Tests.Plugin;

public sealed class PluginViewTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    private static MemoryClusterResource Cluster(string? primary = "demo-1", long epoch = 4, IReadOnlyDictionary<string, string>? annotations = null) => new()
    {
        Metadata = new ObjectMeta { Name = "demo", Namespace = "apps", Generation = 3, Annotations = annotations },
        Spec = new MemoryClusterSpec { Instances = 3, Replication = new ReplicationSpec { Mode = "quorum" } },
        Status = new MemoryClusterStatus
        {
            Phase = "Healthy",
            CurrentPrimary = primary,
            Epoch = epoch,
            RaftLeader = "demo-0",
            ReadyInstances = 2,
            ObservedGeneration = 2,
            Instances =
            [
                new InstanceStatus { Name = "demo-0", Role = "replica", Timeline = 4, Lsn = "0/5000060", LagBytes = 0, Healthy = true },
                new InstanceStatus { Name = "demo-1", Role = "primary", Timeline = 4, Lsn = "0/5000060", LagBytes = 0, Healthy = true },
                new InstanceStatus { Name = "demo-2", Role = "replica", Timeline = 3, Lsn = "0/4F00000", LagBytes = 3 * 1024 * 1024, Healthy = false, Message = "diverged", PendingRestart = ["shared_buffers"] },
            ],
            Conditions =
            [
                new Condition { Type = "Ready", Status = "False", Reason = "InstancesNotReady", Message = "demo-2 is not ready", LastTransitionTime = Now.AddSeconds(-75) },
            ],
        },
    };

    [Fact]
    public void Status_shows_the_cluster_its_instances_conditions_and_the_last_events_in_order()
    {
        var events = Enumerable.Range(0, 12).Select(i => new ClusterEvent(Now.AddSeconds(-40 + i), "Normal", "R" + i, "note " + i, i == 11 ? 3 : 1)).Reverse().ToList();
        var text = ClusterStatusView.Render(Cluster(annotations: new Dictionary<string, string> { ["memorycluster.io/switchover-to"] = "demo-0" }), events, Now);
        var expected = """
            Cluster:   apps/demo
            Phase:     Healthy
            Primary:   demo-1 (epoch 4)
            Instances: 2 of 3 ready; replication quorum; Raft leader demo-0
            Note:      the operator has not seen the latest spec yet (generation 3, status of 2)
            Requested: switchover to demo-0

            INSTANCE  ROLE     TIMELINE  LSN        LAG   READY  MESSAGE
            demo-0    replica  4         0/5000060  0 B   yes    
            demo-1    primary  4         0/5000060  0 B   yes    
            demo-2    replica  3         0/4F00000  3 MB  no     diverged (restart pending: shared_buffers)

            CONDITION  STATUS  REASON             SINCE  MESSAGE
            Ready      False   InstancesNotReady  1m15s  demo-2 is not ready

            AGE  TYPE    REASON  MESSAGE
            38s  Normal  R2      note 2
            37s  Normal  R3      note 3
            36s  Normal  R4      note 4
            35s  Normal  R5      note 5
            34s  Normal  R6      note 6
            33s  Normal  R7      note 7
            32s  Normal  R8      note 8
            31s  Normal  R9      note 9
            30s  Normal  R10     note 10
            29s  Normal  R11     note 11 (x3)

            """;
        Assert.Equal(expected.ReplaceLineEndings("\n"), text);
    }

    [Fact]
    public void Status_of_a_cluster_with_no_status_yet_says_so()
    {
        var text = ClusterStatusView.Render(Cluster() with { Status = null }, [], Now);
        Assert.Contains("Phase:     (no status yet)", text, StringComparison.Ordinal);
        Assert.Contains("Primary:   none\n", text, StringComparison.Ordinal);
        Assert.Contains("No instance has reported yet.", text, StringComparison.Ordinal);
        Assert.Contains("No recent events.", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(59, "59s")]
    [InlineData(61, "1m1s")]
    [InlineData(3 * 3600 + 120, "3h2m")]
    [InlineData(2 * 86400 + 3600, "2d1h")]
    [InlineData(-5, "0s")]
    public void Ages_read_as_kubectl_shows_them(int seconds, string age) => Assert.Equal(age, ClusterStatusView.Age(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData("demo-0", null)]
    [InlineData("demo-1", "demo-1 is the primary already")]
    [InlineData("demo-7", "demo-7 is not an instance of demo (instances: demo-0, demo-1, demo-2)")]
    public void A_switchover_is_asked_only_for_another_instance(string to, string? refusal) =>
        Assert.Equal(refusal, SwitchoverRequest.Refusal(Cluster(), to));

    [Fact]
    public void A_switchover_is_not_asked_of_a_cluster_without_a_primary() =>
        Assert.Equal("demo has no primary now: a switchover needs one (see `kubectl memorycluster status demo`)", SwitchoverRequest.Refusal(Cluster(primary: null), "demo-0"));

    [Fact]
    public void A_switchover_is_done_at_a_higher_epoch_refused_once_the_request_is_gone_with_a_refusal_else_waiting()
    {
        var asked = new Dictionary<string, string> { ["memorycluster.io/switchover-to"] = "demo-0" };
        Assert.Equal(SwitchoverState.Waiting, SwitchoverRequest.State(Cluster(annotations: asked), "demo-0", 4, null));
        Assert.Equal(SwitchoverState.Done, SwitchoverRequest.State(Cluster(primary: "demo-0", epoch: 5), "demo-0", 4, null));

        // The same primary at the same epoch is not a switchover that happened.
        Assert.Equal(SwitchoverState.Waiting, SwitchoverRequest.State(Cluster(primary: "demo-0", epoch: 4), "demo-0", 4, null));
        Assert.Equal(SwitchoverState.Refused, SwitchoverRequest.State(Cluster(), "demo-0", 4, "switchover to demo-0 refused: demo-0 is not ready as a replica"));

        // A refusal Event while the request still stands is an older one's: keep waiting.
        Assert.Equal(SwitchoverState.Waiting, SwitchoverRequest.State(Cluster(annotations: asked), "demo-0", 4, "an old refusal"));
    }
}
