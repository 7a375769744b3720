using k8s.Models;
using MemoryCluster.Kube.Cluster.Node;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

public class PodPlannerTests
{
    private static readonly NodeTimings Timings = new(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(300));
    private static readonly Dictionary<string, string> NoErrors = [];

    [Fact]
    public void A_new_pod_starts_its_containers_unless_their_configuration_cannot_be_made()
    {
        var pod = Pod();
        Assert.Equal(["start main"], Actions(PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime>(), NoErrors, "127.10.0.1", "127.0.0.1", Now, Timings)));

        var blocked = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime>(), new Dictionary<string, string> { ["main"] = "secret \"x\" not found" }, "127.10.0.1", "127.0.0.1", Now, Timings);
        Assert.Empty(blocked.Actions);
        var waiting = blocked.Status.ContainerStatuses.Single().State.Waiting;
        Assert.Equal(("CreateContainerConfigError", "secret \"x\" not found"), (waiting.Reason, waiting.Message));
        Assert.Equal("Pending", blocked.Status.Phase);
    }

    /// <summary>Restarts by policy and back-off: at once the first time, then 10 s, 20 s, ... up to 300 s.</summary>
    [Theory]
    [InlineData("Always", 1, 0, 0, true, "the first restart is at once")]
    [InlineData("Always", 0, 1, 5, false, "the second waits 10 s")]
    [InlineData("Always", 0, 1, 10, true, "and then goes")]
    [InlineData("Always", 0, 3, 39, false, "the fourth waits 40 s")]
    [InlineData("Always", 0, 30, 299, false, "never more than 300 s")]
    [InlineData("Always", 0, 30, 300, true, "300 s at most")]
    [InlineData("OnFailure", 0, 0, 60, false, "OnFailure: a clean exit ends it")]
    [InlineData("OnFailure", 2, 0, 0, true, "OnFailure: a failure restarts it")]
    [InlineData("Never", 2, 0, 60, false, "Never")]
    public void An_exited_container_restarts_by_policy_after_back_off(string policy, int exitCode, int restarts, int secondsSince, bool starts, string why)
    {
        var pod = Pod();
        pod.Spec.RestartPolicy = policy;
        var exited = new ContainerRuntime("main", ContainerRun.Exited, Now.AddMinutes(-1), Now.AddSeconds(-secondsSince), exitCode, restarts);
        var plan = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime> { ["main"] = exited }, NoErrors, "127.10.0.1", "127.0.0.1", Now, Timings);

        Assert.True(starts == plan.Actions.OfType<StartContainer>().Any(), why);
    }

    [Fact]
    public void Status_shows_crash_loop_and_the_last_exit_and_the_phase_when_all_ended()
    {
        var pod = Pod();
        var exited = new ContainerRuntime("main", ContainerRun.Exited, Now.AddMinutes(-1), Now.AddSeconds(-1), 3, 2);
        var status = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime> { ["main"] = exited }, NoErrors, "127.10.0.1", "127.0.0.1", Now, Timings).Status;
        var container = status.ContainerStatuses.Single();
        Assert.Equal(("CrashLoopBackOff", 3, 2, "Running"), (container.State.Waiting.Reason, container.LastState.Terminated.ExitCode, container.RestartCount, status.Phase));

        pod.Spec.RestartPolicy = "Never";
        var ended = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime> { ["main"] = exited }, NoErrors, "127.10.0.1", "127.0.0.1", Now, Timings).Status;
        Assert.Equal(("Failed", 3), (ended.Phase, ended.ContainerStatuses.Single().State.Terminated.ExitCode));
        var done = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime> { ["main"] = exited with { ExitCode = 0 } }, NoErrors, "127.10.0.1", "127.0.0.1", Now, Timings).Status;
        Assert.Equal("Succeeded", done.Phase);
    }

    /// <summary>Probes: the startup probe gates the others; each runs when due; enough failures stop the container.</summary>
    [Theory]
    [InlineData(0, 0, 0, false, 0, "probe startup", "startup first")]
    [InlineData(0, 1, 0, false, 0, "", "startup: not before its period")]
    [InlineData(0, 0, 0, false, 3, "stop main: Startup probe failed 3 times", "startup failed 3 times: stop")]
    [InlineData(0, 5, 0, true, 0, "probe liveness,probe readiness", "started: liveness and readiness, due at once")]
    [InlineData(0, 5, 5, true, 0, "probe readiness", "readiness every 5 s, liveness every 10 s")]
    [InlineData(0, 5, 1, true, 0, "", "started: not before their periods")]
    [InlineData(6, 5, 10, true, 0, "stop main: Liveness probe failed 6 times", "liveness failed 6 times: stop")]
    public void Probes_run_when_due_and_failures_stop_the_container(int livenessFailures, int sinceStartupProbe, int sinceOthers, bool started, int startupFailures, string actions, string why)
    {
        var pod = Pod(probes: true);
        // 0 seconds since a probe: it never ran.
        DateTimeOffset? Since(int seconds) => seconds == 0 ? null : Now.AddSeconds(-seconds);
        var running = new ContainerRuntime("main", ContainerRun.Running, Now.AddMinutes(-1))
        {
            Startup = new ProbeState(started ? 1 : 0, startupFailures, Since(sinceStartupProbe), started),
            Liveness = new ProbeState(0, livenessFailures, Since(sinceOthers), false),
            Readiness = new ProbeState(0, 0, Since(sinceOthers), false),
        };

        var plan = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime> { ["main"] = running }, NoErrors, "127.10.0.1", "127.0.0.1", Now, Timings);
        Assert.True(actions == string.Join(",", Actions(plan)), $"{why}: {string.Join(",", Actions(plan))}");
    }

    [Fact]
    public void Ready_needs_the_startup_and_readiness_probes_passed()
    {
        var pod = Pod(probes: true);
        var running = new ContainerRuntime("main", ContainerRun.Running, Now.AddMinutes(-1)) { Startup = new ProbeState(1, 0, Now, true) };
        Assert.Equal("False", Ready(pod, running));
        Assert.Equal("True", Ready(pod, running with { Readiness = new ProbeState(1, 0, Now, true) }));

        // Readiness lost only after failureThreshold (3) failures in a row; regained after one success.
        var probe = pod.Spec.Containers[0].ReadinessProbe;
        var state = new ProbeState().Record(true, probe, Now);
        Assert.True(state.Passed);
        state = state.Record(false, probe, Now).Record(false, probe, Now);
        Assert.True(state.Passed);
        state = state.Record(false, probe, Now);
        Assert.False(state.Passed);
        Assert.True(state.Record(true, probe, Now).Passed);
    }

    [Fact]
    public void A_deleted_pod_gets_sigterm_then_sigkill_at_its_deadline_and_is_removed_when_stopped()
    {
        var pod = Pod();
        pod.Metadata.DeletionTimestamp = Now.UtcDateTime.AddSeconds(30);
        pod.Metadata.DeletionGracePeriodSeconds = 30;
        var running = new ContainerRuntime("main", ContainerRun.Running, Now.AddMinutes(-1));
        Assert.Equal(["stop main: the pod is being deleted"], Actions(Plan(pod, running)));
        Assert.Empty(Actions(Plan(pod, running with { StopSentAt = Now.AddSeconds(-5) })));
        Assert.Equal(["kill main: the pod's grace period ended"], Actions(Plan(pod, running with { StopSentAt = Now.AddSeconds(-5) }, Now.AddSeconds(31))));

        // No restart while deleted, even when the policy would.
        var exited = new ContainerRuntime("main", ContainerRun.Exited, Now.AddMinutes(-1), Now, 143, 0);
        Assert.Equal(["remove"], Actions(Plan(pod, exited)));
    }

    private static PodPlan Plan(V1Pod pod, ContainerRuntime state, DateTimeOffset? now = null) =>
        PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime> { [state.Name] = state }, NoErrors, "127.10.0.1", "127.0.0.1", now ?? Now, Timings);

    private static string Ready(V1Pod pod, ContainerRuntime state) => Plan(pod, state).Status.Conditions.Single(c => c.Type == "Ready").Status;

    private static List<string> Actions(PodPlan plan) =>
        [.. plan.Actions.Select(a => a switch
        {
            StartContainer s => "start " + s.Container,
            StopContainer { Kill: true } k => $"kill {k.Container}: {k.Why}",
            StopContainer s => $"stop {s.Container}: {s.Why}",
            RunProbe p => "probe " + p.Kind.ToString().ToLowerInvariant(),
            RemovePod => "remove",
            _ => a.ToString()!,
        })];

    private static V1Pod Pod(bool probes = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = "p", NamespaceProperty = "default", Uid = "uid-p" },
        Spec = new V1PodSpec
        {
            Containers =
            [
                new V1Container
                {
                    Name = "main",
                    Image = "x",
                    StartupProbe = probes ? new V1Probe { HttpGet = new V1HTTPGetAction { Port = "8000" }, PeriodSeconds = 2, FailureThreshold = 3 } : null,
                    LivenessProbe = probes ? new V1Probe { HttpGet = new V1HTTPGetAction { Port = "8000" }, PeriodSeconds = 10, FailureThreshold = 6 } : null,
                    ReadinessProbe = probes ? new V1Probe { HttpGet = new V1HTTPGetAction { Port = "8000" }, PeriodSeconds = 5 } : null,
                },
            ],
        },
    };
}
