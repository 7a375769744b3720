using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Node;

public enum ContainerRun
{
    /// <summary>Never started (or waiting for its first start).</summary>
    Waiting,
    Running,
    Exited,
}

public enum ProbeKind
{
    Startup,
    Liveness,
    Readiness,
}

/// <summary>A probe's record: consecutive results, when it last ran, and whether it counts as passed.</summary>
public sealed record ProbeState(int Successes = 0, int Failures = 0, DateTimeOffset? LastRun = null, bool Passed = false)
{
    public static ProbeState None { get; } = new();

    /// <summary>
    /// The record after one result: passed after <c>successThreshold</c> successes in a row (1 for startup and
    /// liveness), failed after <c>failureThreshold</c> failures in a row (3 by default).
    /// </summary>
    public ProbeState Record(bool ok, V1Probe probe, DateTimeOffset at)
    {
        var successes = ok ? Successes + 1 : 0;
        var failures = ok ? 0 : Failures + 1;
        var passed = ok ? Passed || successes >= (probe.SuccessThreshold ?? 1) : Passed && failures < (probe.FailureThreshold ?? 3);
        return new ProbeState(successes, failures, at, passed);
    }
}

/// <summary>What the node knows of one container of a pod.</summary>
/// <param name="Name">The container's name in the pod's spec.</param>
/// <param name="Run">Whether it runs, ran, or has not started.</param>
/// <param name="StartedAt">When it last started.</param>
/// <param name="FinishedAt">When it last exited.</param>
/// <param name="ExitCode">How it last exited (128 + the signal when killed by one).</param>
/// <param name="Restarts">How often it was started again after exiting.</param>
/// <param name="StopSentAt">When it was asked to stop (SIGTERM), if it was.</param>
/// <param name="StopReason">Why it was stopped (a failed probe), shown in its last state.</param>
/// <param name="Pid">Its process (the first process of the pod's PID namespace) while it runs.</param>
public sealed record ContainerRuntime(
    string Name,
    ContainerRun Run = ContainerRun.Waiting,
    DateTimeOffset? StartedAt = null,
    DateTimeOffset? FinishedAt = null,
    int? ExitCode = null,
    int Restarts = 0,
    DateTimeOffset? StopSentAt = null,
    string? StopReason = null,
    int? Pid = null)
{
    public ProbeState Startup { get; init; } = ProbeState.None;

    public ProbeState Liveness { get; init; } = ProbeState.None;

    public ProbeState Readiness { get; init; } = ProbeState.None;

    /// <summary>How this container ended last time (for <c>lastState</c>), kept across a restart.</summary>
    public V1ContainerStateTerminated? LastTermination { get; init; }

    public ProbeState Probe(ProbeKind kind) => kind switch
    {
        ProbeKind.Startup => Startup,
        ProbeKind.Liveness => Liveness,
        _ => Readiness,
    };

    public ContainerRuntime WithProbe(ProbeKind kind, ProbeState state) => kind switch
    {
        ProbeKind.Startup => this with { Startup = state },
        ProbeKind.Liveness => this with { Liveness = state },
        _ => this with { Readiness = state },
    };
}

public abstract record NodeAction;

/// <summary>Start the container (again).</summary>
public sealed record StartContainer(string Container) : NodeAction;

/// <summary>Ask it to stop (SIGTERM), or make it (SIGKILL).</summary>
public sealed record StopContainer(string Container, bool Kill, string Why) : NodeAction;

public sealed record RunProbe(string Container, ProbeKind Kind, V1Probe Probe) : NodeAction;

/// <summary>Every container has stopped after the pod's deletion: delete it for good (grace 0).</summary>
public sealed record RemovePod : NodeAction;

/// <summary>One round of the node for one pod: what to do, the status to report, and when to look again at the latest.</summary>
public sealed record PodPlan(IReadOnlyList<NodeAction> Actions, V1PodStatus Status, DateTimeOffset WakeAt);

/// <summary>Settings of the node's restarts.</summary>
/// <param name="BackoffBase">The wait before the second restart (the first is immediate); doubled for each later one.</param>
/// <param name="BackoffMax">The longest wait between restarts.</param>
public sealed record NodeTimings(TimeSpan BackoffBase, TimeSpan BackoffMax)
{
    /// <summary>The kubelet's: 10 s doubling up to 5 minutes.</summary>
    public static NodeTimings Kubelet { get; } = new(TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5));
}

/// <summary>
/// The kubelet's decisions for one pod, pure: start each container (unless its environment or volumes cannot be
/// made: <c>CreateContainerConfigError</c>); restart an exited one as the restart policy says (Always; OnFailure
/// when it failed; Never) after a back-off (the first restart at once, then base, doubling, up to the maximum:
/// <c>CrashLoopBackOff</c> meanwhile); run the startup probe until it passes, then liveness and readiness, each when
/// due (<c>initialDelaySeconds</c>, <c>periodSeconds</c>); stop a container whose startup or liveness probe failed
/// <c>failureThreshold</c> times (SIGTERM, SIGKILL after the grace period; it is restarted by policy). A pod being
/// deleted gets SIGTERM in every container, SIGKILL when its grace period ends, no restart, and is removed once all
/// have stopped. The status says all of it: phase, conditions (Ready when every container is ready), each
/// container's state, last state, restarts and readiness.
/// </summary>
public static class PodPlanner
{
    public static PodPlan Plan(V1Pod pod, IReadOnlyDictionary<string, ContainerRuntime> runtimes, IReadOnlyDictionary<string, string> configErrors,
        string podIp, string hostIp, DateTimeOffset now, NodeTimings timings)
    {
        var actions = new List<NodeAction>();
        var wake = now.AddSeconds(1);
        void WakeBy(DateTimeOffset at) => wake = at < wake ? (at < now ? now : at) : wake;

        var containers = pod.Spec.Containers ?? [];
        var grace = TimeSpan.FromSeconds(pod.Metadata.DeletionGracePeriodSeconds ?? pod.Spec.TerminationGracePeriodSeconds ?? 30);
        var deleting = pod.Metadata.DeletionTimestamp is { } deadline ? new DateTimeOffset(DateTime.SpecifyKind(deadline, DateTimeKind.Utc)) : (DateTimeOffset?)null;
        var policy = pod.Spec.RestartPolicy ?? "Always";
        var states = containers.Select(c => runtimes.GetValueOrDefault(c.Name) ?? new ContainerRuntime(c.Name)).ToList();

        if (deleting is { } end)
        {
            foreach (var state in states.Where(s => s.Run == ContainerRun.Running))
            {
                if (state.StopSentAt is null)
                {
                    actions.Add(new StopContainer(state.Name, Kill: false, "the pod is being deleted"));
                }
                else if (now >= end || now >= state.StopSentAt.Value + grace)
                {
                    actions.Add(new StopContainer(state.Name, Kill: true, "the pod's grace period ended"));
                }

                WakeBy(end);
            }

            if (states.All(s => s.Run != ContainerRun.Running))
            {
                actions.Add(new RemovePod());
            }

            return new PodPlan(actions, Status(pod, containers, states, configErrors, podIp, hostIp, now, policy, timings), wake);
        }

        foreach (var (container, state) in containers.Zip(states))
        {
            switch (state.Run)
            {
                case ContainerRun.Waiting when !configErrors.ContainsKey(container.Name):
                    actions.Add(new StartContainer(container.Name));
                    break;
                case ContainerRun.Exited when Restarts(policy, state.ExitCode):
                    var at = state.FinishedAt!.Value + Backoff(state.Restarts, timings);
                    if (now >= at)
                    {
                        actions.Add(new StartContainer(container.Name));
                    }
                    else
                    {
                        WakeBy(at);
                    }

                    break;
                case ContainerRun.Running:
                    Probes(container, state, now, grace, actions, WakeBy);
                    break;
            }
        }

        return new PodPlan(actions, Status(pod, containers, states, configErrors, podIp, hostIp, now, policy, timings), wake);
    }

    /// <summary>The wait before restart number <paramref name="restarts"/> + 1: none for the first, then base doubling up to the maximum.</summary>
    public static TimeSpan Backoff(int restarts, NodeTimings timings) =>
        restarts == 0 ? TimeSpan.Zero : TimeSpan.FromTicks(Math.Min(timings.BackoffMax.Ticks, timings.BackoffBase.Ticks << Math.Min(restarts - 1, 20)));

    public static bool Restarts(string policy, int? exitCode) => policy switch
    {
        "Never" => false,
        "OnFailure" => exitCode != 0,
        _ => true,
    };

    private static void Probes(V1Container container, ContainerRuntime state, DateTimeOffset now, TimeSpan grace, List<NodeAction> actions, Action<DateTimeOffset> wakeBy)
    {
        if (state.StopSentAt is { } sent)
        {
            if (now >= sent + grace)
            {
                actions.Add(new StopContainer(container.Name, Kill: true, "it did not stop within the grace period"));
            }
            else
            {
                wakeBy(sent + grace);
            }

            return;
        }

        var started = container.StartupProbe is null || state.Startup.Passed;
        if (container.StartupProbe is { } startup && !started)
        {
            if (state.Startup.Failures >= (startup.FailureThreshold ?? 3))
            {
                actions.Add(new StopContainer(container.Name, Kill: false, $"Startup probe failed {state.Startup.Failures} times"));
                return;
            }

            Due(container.Name, ProbeKind.Startup, startup, state, now, actions, wakeBy);
            return;
        }

        if (container.LivenessProbe is { } liveness)
        {
            if (state.Liveness.Failures >= (liveness.FailureThreshold ?? 3))
            {
                actions.Add(new StopContainer(container.Name, Kill: false, $"Liveness probe failed {state.Liveness.Failures} times"));
                return;
            }

            Due(container.Name, ProbeKind.Liveness, liveness, state, now, actions, wakeBy);
        }

        if (container.ReadinessProbe is { } readiness)
        {
            Due(container.Name, ProbeKind.Readiness, readiness, state, now, actions, wakeBy);
        }
    }

    private static void Due(string name, ProbeKind kind, V1Probe probe, ContainerRuntime state, DateTimeOffset now, List<NodeAction> actions, Action<DateTimeOffset> wakeBy)
    {
        var record = state.Probe(kind);
        var at = record.LastRun is { } last
            ? last.AddSeconds(probe.PeriodSeconds ?? 10)
            : state.StartedAt!.Value.AddSeconds(probe.InitialDelaySeconds ?? 0);
        if (now >= at)
        {
            actions.Add(new RunProbe(name, kind, probe));
        }
        else
        {
            wakeBy(at);
        }
    }

    private static bool IsReady(V1Container container, ContainerRuntime state) =>
        state.Run == ContainerRun.Running && state.StopSentAt is null
        && (container.StartupProbe is null || state.Startup.Passed)
        && (container.ReadinessProbe is null || state.Readiness.Passed);

    private static V1PodStatus Status(V1Pod pod, IList<V1Container> containers, List<ContainerRuntime> states, IReadOnlyDictionary<string, string> configErrors,
        string podIp, string hostIp, DateTimeOffset now, string policy, NodeTimings timings)
    {
        var statuses = containers.Zip(states).Select(p => ContainerStatus(p.First, p.Second, configErrors, policy, now, timings)).ToList();
        var ended = states.All(s => s.Run == ContainerRun.Exited && !Restarts(policy, s.ExitCode));
        var phase = ended
            ? states.All(s => s.ExitCode == 0) ? "Succeeded" : "Failed"
            : states.All(s => s.StartedAt is not null) ? "Running" : "Pending";
        var ready = containers.Count > 0 && containers.Zip(states).All(p => IsReady(p.First, p.Second));
        var old = pod.Status?.Conditions ?? [];
        return new V1PodStatus
        {
            Phase = phase,
            PodIP = podIp,
            PodIPs = [new V1PodIP { Ip = podIp }],
            HostIP = hostIp,
            HostIPs = [new V1HostIP { Ip = hostIp }],
            StartTime = pod.Status?.StartTime ?? now.UtcDateTime,
            QosClass = "BestEffort",
            Conditions =
            [
                Condition(old, "PodScheduled", true, now),
                Condition(old, "Initialized", true, now),
                Condition(old, "ContainersReady", ready, now),
                Condition(old, "Ready", ready, now),
            ],
            ContainerStatuses = statuses,
        };
    }

    private static V1ContainerStatus ContainerStatus(V1Container container, ContainerRuntime state, IReadOnlyDictionary<string, string> configErrors,
        string policy, DateTimeOffset now, NodeTimings timings)
    {
        V1ContainerState current;
        if (state.Run == ContainerRun.Running)
        {
            current = new V1ContainerState { Running = new V1ContainerStateRunning { StartedAt = state.StartedAt!.Value.UtcDateTime } };
        }
        else if (state.Run == ContainerRun.Exited && !(Restarts(policy, state.ExitCode) && state.FinishedAt + Backoff(state.Restarts, timings) > now))
        {
            current = new V1ContainerState { Terminated = Terminated(state) };
        }
        else if (state.Run == ContainerRun.Exited)
        {
            current = new V1ContainerState
            {
                Waiting = new V1ContainerStateWaiting
                {
                    Reason = "CrashLoopBackOff",
                    Message = $"back-off {Backoff(state.Restarts, timings).TotalSeconds:0}s restarting failed container={container.Name}",
                },
            };
        }
        else
        {
            current = new V1ContainerState
            {
                Waiting = configErrors.TryGetValue(container.Name, out var error)
                    ? new V1ContainerStateWaiting { Reason = "CreateContainerConfigError", Message = error }
                    : new V1ContainerStateWaiting { Reason = "ContainerCreating" },
            };
        }

        // Waiting to restart, the exit just seen is the last state; running again, the one before.
        var last = state.Run == ContainerRun.Exited ? current.Terminated is null ? Terminated(state) : state.LastTermination : state.LastTermination;
        return new V1ContainerStatus
        {
            Name = container.Name,
            Image = container.Image,
            ImageID = container.Image,
            ContainerID = state.Pid is { } pid ? $"process://{pid}" : null,
            Ready = IsReady(container, state),
            Started = state.Run == ContainerRun.Running && (container.StartupProbe is null || state.Startup.Passed),
            RestartCount = state.Restarts,
            State = current,
            LastState = last is null ? new V1ContainerState() : new V1ContainerState { Terminated = last },
        };
    }

    /// <summary>How a container ended, as its status shows it.</summary>
    public static V1ContainerStateTerminated Terminated(ContainerRuntime state) => new()
    {
        ExitCode = state.ExitCode ?? 0,
        Reason = state.ExitCode == 0 ? "Completed" : "Error",
        Message = state.StopReason,
        StartedAt = state.StartedAt?.UtcDateTime,
        FinishedAt = state.FinishedAt?.UtcDateTime,
    };

    private static V1PodCondition Condition(IList<V1PodCondition> old, string type, bool ok, DateTimeOffset now)
    {
        var status = ok ? "True" : "False";
        var before = old.FirstOrDefault(c => c.Type == type);
        return new V1PodCondition
        {
            Type = type,
            Status = status,
            LastTransitionTime = before?.Status == status ? before.LastTransitionTime : now.UtcDateTime,
            Reason = ok ? null : type is "Ready" or "ContainersReady" ? "ContainersNotReady" : null,
        };
    }
}
