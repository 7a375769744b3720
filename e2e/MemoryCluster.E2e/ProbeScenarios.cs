using System.Diagnostics;
using System.Globalization;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.E2e;

/// <summary>
/// Probes of the quorum-mode detach (docs/failover.md, "Choosing the replacement", 6) made by an adversarial review:
/// not in the default set (`make e2e SCENARIO=name` runs one). Each combines a primary whose manager and watchdog
/// are frozen (its backends go on committing) with a second fault aimed at the detach itself; the runner's
/// invariants (no acknowledged write lost, no dual primary, full strength after healing) are what they check.
/// </summary>
internal static class ProbeScenarios
{
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(20);

    public static IReadOnlyList<Scenario> All { get; } =
    [
        Quorum(new("probe-freeze-leader-during-detach", 3, false, "freeze the primary's manager and watchdog; as soon as the Raft leader asks the replicas to stop streaming, SIGSTOP the leader's manager for 8 s; continue the primary first, the leader once writes resume (at most 20 s)", FreezeLeaderDuringDetachAsync)),
        Quorum(new("probe-freeze-replica-after-detach", 3, false, "freeze the primary's manager and watchdog; SIGSTOP a replica's manager as soon as its walreceiver is gone (detached, not yet reported) for 10 s; continue the primary, then the replica once writes resume (at most 20 s)", FreezeReplicaAfterDetachAsync)),
        Quorum(new("probe-freeze-primary-and-replica-startup", 3, false, "SIGSTOP a replica's startup process (its walreceiver cannot be stopped by a reload) and the primary's manager and watchdog until writes resume elsewhere (at most 20 s); continue the primary, then the startup process", FreezePrimaryAndReplicaStartupAsync)),
        Quorum(new("probe-leader-change-during-detach-5", 5, false, "5 instances: freeze the primary's manager and watchdog; as soon as the Raft leader asks the replicas to stop streaming, kill -9 the leader's node; continue the primary once writes resume (at most 20 s); restart", LeaderChangeDuringDetachAsync)),
        Quorum(new("probe-leader-cut-from-replica-during-detach", 3, true, "in a replica's namespace drop TCP from the Raft leader to its manager API, then freeze the primary's manager and watchdog for 12 s; continue the primary, remove the rule", LeaderCutFromReplicaAsync)),
        Quorum(new("probe-switchover-target-thaws-during-detach", 3, false, "switchover to the replica that is not the Raft leader; its manager stopped as soon as the epoch moves; once the leader asks the replicas to stop streaming from it, the third member's manager stopped for 3 s and the target's continued: the target gets its first lease after the ask", SwitchoverTargetThawsDuringDetachAsync)),
        Quorum(new("probe-switchover-asked-of-frozen-primary", 3, false, "freeze the primary's manager and watchdog, then ask a switchover to the lowest-id replica (the primary cannot hand over); continue the primary once writes resume elsewhere (at most 20 s)", SwitchoverAskedOfFrozenPrimaryAsync)),
        new("probe-repeated-switchovers", 3, false, "five switchovers in a row, each to the replica of lowest id, each as soon as the last one finished", RepeatedSwitchoversAsync) { InDefaultSet = false },
    ];

    private static Scenario Quorum(Scenario s) => s with { Modes = ["quorum"], SkipWhy = "quorum mode only (the detach)", InDefaultSet = false, WritableMeansCanAcknowledge = true };

    /// <summary>The primary's manager and watchdog stopped (the fault instant); continued by <see cref="Frozen.Continue"/> or on disposal.</summary>
    private static Frozen FreezePrimary(FaultContext context)
    {
        var node = context.Node(context.Primary);
        var watchdogs = node.WatchdogPids;
        if (watchdogs.Count == 0 || !node.SignalManagerAndWatchdogs(watchdogs, NodeProcesses.SigStop))
        {
            throw new InvalidOperationException($"{context.Primary.Name}: no manager or no watchdog to stop");
        }

        context.Fault();
        return new Frozen(node, watchdogs);
    }

    private sealed class Frozen(NodeProcesses node, IReadOnlyList<int> watchdogs) : IDisposable
    {
        public void Continue() => node.SignalManagerAndWatchdogs(watchdogs, NodeProcesses.SigCont);

        public void Dispose() => Continue();
    }

    private static async Task<StatusSample?> DetachAskedAsync(FaultContext context, TimeSpan limit) =>
        await context.Statuses.WaitForAsync(s => s.DetachFrom != 0 && s.RaftRole == "leader", limit, context.CancellationToken);

    private static async Task FreezeLeaderDuringDetachAsync(FaultContext context)
    {
        using var frozen = FreezePrimary(context);
        NodeProcesses? leaderNode = null;
        try
        {
            var asked = await DetachAskedAsync(context, TimeSpan.FromSeconds(15)) ?? throw new InvalidOperationException("no Raft leader asked the replicas to detach within 15 s");
            var leader = context.Members.Single(m => m.Name == asked.Member);
            leaderNode = context.Node(leader);
            leaderNode.SignalManager(NodeProcesses.SigStop);
            context.Note(string.Create(CultureInfo.InvariantCulture, $"leader {leader.Name} asked to detach from epoch {asked.DetachFrom} {Stopwatch.GetElapsedTime(context.FaultAt, asked.AnsweredAt).TotalSeconds:0.00} s after the freeze; its manager stopped"));
            await Task.Delay(TimeSpan.FromSeconds(8), context.CancellationToken);
            frozen.Continue();
            var moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
            context.Note($"after continuing {context.Primary.Name}: writes {(moved ? "resumed elsewhere" : "did not resume elsewhere")}; {Detached(context)}");
        }
        finally
        {
            leaderNode?.SignalManager(NodeProcesses.SigCont);
        }
    }

    private static async Task FreezeReplicaAfterDetachAsync(FaultContext context)
    {
        var replica = context.Members.First(m => m.Name != context.Primary.Name);
        var replicaNode = context.Node(replica);
        using var frozen = FreezePrimary(context);
        try
        {
            var gone = await context.WaitUntilAsync(() => replicaNode.PostgresProcess("walreceiver") is null, TimeSpan.FromSeconds(15));
            replicaNode.SignalManager(NodeProcesses.SigStop);
            context.Note(string.Create(CultureInfo.InvariantCulture, $"{replica.Name}: walreceiver {(gone ? "gone" : "still there")} {Stopwatch.GetElapsedTime(context.FaultAt).TotalSeconds:0.00} s after the freeze; its manager stopped; its last report: detachedFrom {context.Statuses.Latest(replica.Name)?.DetachedFrom}"));
            await Task.Delay(TimeSpan.FromSeconds(10), context.CancellationToken);
            frozen.Continue();
            var moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
            context.Note($"after continuing {context.Primary.Name}: writes {(moved ? "resumed elsewhere" : "did not resume elsewhere")}; {Detached(context)}");
        }
        finally
        {
            replicaNode.SignalManager(NodeProcesses.SigCont);
        }
    }

    private static async Task FreezePrimaryAndReplicaStartupAsync(FaultContext context)
    {
        var replica = context.Members.First(m => m.Name != context.Primary.Name);
        var replicaNode = context.Node(replica);
        var startup = replicaNode.PostgresProcess("startup") ?? throw new InvalidOperationException($"{replica.Name}: no startup process");
        NodeProcesses.SignalProcess(startup, NodeProcesses.SigStop);
        try
        {
            using var frozen = FreezePrimary(context);
            var moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
            var first = context.FirstWriteAwayFrom(context.Primary);
            context.Note(string.Create(CultureInfo.InvariantCulture, $"{replica.Name}'s startup process and {context.Primary.Name}'s manager and watchdog stopped: writes {(moved ? $"resumed elsewhere ({first?.Member} after {first?.Seconds:0.00} s)" : "did NOT resume elsewhere within 20 s")}; writes acknowledged by {context.Primary.Name} after the freeze: {context.AckedBy(context.Primary)}; {Detached(context)}; leader says: {context.Statuses.Samples(context.FaultAt).LastOrDefault(s => s.RaftRole == "leader")?.Failover}"));
            frozen.Continue();
            moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
            context.Note($"after continuing {context.Primary.Name}: writes {(moved ? "resumed elsewhere" : "did not resume elsewhere")}");
        }
        finally
        {
            NodeProcesses.SignalProcess(startup, NodeProcesses.SigCont);
        }
    }

    private static async Task LeaderChangeDuringDetachAsync(FaultContext context)
    {
        using (var frozen = FreezePrimary(context))
        {
            var asked = await DetachAskedAsync(context, TimeSpan.FromSeconds(15)) ?? throw new InvalidOperationException("no Raft leader asked the replicas to detach within 15 s");
            var leader = context.Members.Single(m => m.Name == asked.Member);
            context.Node(leader).KillNode();
            context.Note(string.Create(CultureInfo.InvariantCulture, $"leader {leader.Name} asked to detach {Stopwatch.GetElapsedTime(context.FaultAt, asked.AnsweredAt).TotalSeconds:0.00} s after the freeze; its node killed"));
            var moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
            var first = context.FirstWriteAwayFrom(context.Primary);
            context.Note(string.Create(CultureInfo.InvariantCulture, $"writes {(moved ? $"resumed on {first?.Member} {first?.Seconds:0.00} s after the freeze" : "did NOT resume elsewhere")}; {Detached(context)}"));
        }

        await context.RestartAsync();
    }

    private static async Task LeaderCutFromReplicaAsync(FaultContext context)
    {
        var network = context.Cluster.Layout.Network ?? throw new InvalidOperationException("needs --netns");
        var leader = await context.Statuses.WaitForAsync(s => s.RaftRole == "leader" && s.Member != context.Primary.Name, TimeSpan.FromSeconds(20), context.CancellationToken)
            ?? throw new InvalidOperationException("no replica is the Raft leader");
        var b = context.Members.Single(m => m.Name == leader.Member);
        var a = context.Members.Single(m => m.Name != b.Name && m.Name != context.Primary.Name);
        var ns = network.Namespace(a);
        HostTools.ApplyRules(ns, [$"ip saddr {b.Host} tcp dport {a.HttpPort} drop"], []);
        try
        {
            using var frozen = FreezePrimary(context);
            var moved = await context.WaitForWritesAwayFromAsync(context.Primary, TimeSpan.FromSeconds(12));
            context.Note($"leader {b.Name} cannot read {a.Name}'s report: writes {(moved ? "resumed elsewhere" : "did not resume elsewhere")} within 12 s; {Detached(context)}; leader says: {context.Statuses.Latest(b.Name)?.Failover}");
            frozen.Continue();
            moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
            context.Note($"after continuing {context.Primary.Name}: writes {(moved ? "resumed elsewhere" : "did not resume elsewhere")}; leader says: {context.Statuses.Latest(b.Name)?.Failover}");
        }
        finally
        {
            HostTools.RemoveRules(ns);
        }
    }

    /// <summary>
    /// A primary that had not started writing at its epoch may be granted a lease after the leader asked the replicas
    /// to stop streaming from it; they resume only once it reports itself ready, which in quorum mode needs k of them
    /// streaming. What happens then (a step-down and another failover, or a stuck cluster) is what this looks at.
    /// </summary>
    private static async Task SwitchoverTargetThawsDuringDetachAsync(FaultContext context)
    {
        var old = context.Primary;
        var leader = await context.RaftLeaderOrNullAsync();
        var target = context.Members.Where(m => m.Name != old.Name).OrderBy(m => m.Name == leader?.Name ? 1 : 0).ThenBy(m => m.Id).First();
        var third = context.Members.Single(m => m.Name != old.Name && m.Name != target.Name);
        var before = await context.MaxEpochAsync();
        var answer = await context.AskSwitchoverAsync(target);
        if (!answer.Accepted)
        {
            throw new InvalidOperationException($"switchover to {target.Name} refused: {answer.Message}");
        }

        _ = await context.WaitForEpochAsync(before, TimeSpan.FromSeconds(20)) ?? throw new InvalidOperationException("the epoch did not move");
        var targetNode = context.Node(target);
        var thirdNode = context.Node(third);
        targetNode.SignalManager(NodeProcesses.SigStop);
        context.Fault();
        try
        {
            var asked = await DetachAskedAsync(context, TimeSpan.FromSeconds(15));
            thirdNode.SignalManager(NodeProcesses.SigStop);
            targetNode.SignalManager(NodeProcesses.SigCont);
            context.Note(string.Create(CultureInfo.InvariantCulture, $"switchover {old.Name} -> {target.Name}; leader {asked?.Member ?? "(none asked)"} asked to detach {(asked is null ? "-" : Stopwatch.GetElapsedTime(context.FaultAt, asked.AnsweredAt).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture))} s after {target.Name}'s manager stopped; then {third.Name}'s manager stopped for 3 s and {target.Name}'s continued"));
            await Task.Delay(TimeSpan.FromSeconds(3), context.CancellationToken);
        }
        finally
        {
            targetNode.SignalManager(NodeProcesses.SigCont);
            thirdNode.SignalManager(NodeProcesses.SigCont);
        }

        var any = await context.WaitUntilAsync(() => context.FirstWriteAwayFrom(third) is not null || context.AckedBy(third) > 0, TimeSpan.FromSeconds(60));
        var samples = context.Statuses.Samples(context.FaultAt);
        var named = samples.Where(s => s.Epoch > before && s.Primary is not null).GroupBy(s => s.Epoch).OrderBy(g => g.Key).Select(g => $"epoch {g.Key}: {g.First().Primary}");
        var down = samples.FirstOrDefault(s => s.SteppingDown);
        var first = samples.Where(s => s.Role == InstanceRole.Primary && s.Ready).Select(s => $"{s.Member} at epoch {s.Epoch} ready {Stopwatch.GetElapsedTime(context.FaultAt, s.AnsweredAt).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s after the stop").FirstOrDefault();
        context.Note($"writes {(any ? "resumed" : "did NOT resume within 60 s")}; primaries named: {string.Join(", ", named)}; first ready primary: {first ?? "none"}; " +
            $"{(down is null ? "no member reported steppingDown" : $"{down.Member} reported steppingDown {Stopwatch.GetElapsedTime(context.FaultAt, down.AnsweredAt).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s after the stop")}; {Detached(context)}");
    }

    private static async Task SwitchoverAskedOfFrozenPrimaryAsync(FaultContext context)
    {
        var target = context.Members.Where(m => m.Name != context.Primary.Name).OrderBy(m => m.Id).First();
        using var frozen = FreezePrimary(context);
        var answer = await context.AskSwitchoverAsync(target);
        var moved = await context.WaitForWritesAwayFromAsync(context.Primary, Hold);
        var first = context.FirstWriteAwayFrom(context.Primary);
        context.Note(string.Create(CultureInfo.InvariantCulture, $"switchover to {target.Name} asked of the frozen primary: {(answer.Accepted ? "accepted" : "refused")} ({answer.Message}); writes {(moved ? $"resumed on {first?.Member} {first?.Seconds:0.00} s after the freeze" : "did NOT resume elsewhere within 20 s")}; {Detached(context)}"));
    }

    private static async Task RepeatedSwitchoversAsync(FaultContext context)
    {
        var primary = context.Primary;
        context.Fault();
        var times = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var target = context.Members.Where(m => m.Name != primary.Name).OrderBy(m => m.Id).First();
            var watch = Stopwatch.StartNew();
            var (code, output) = await context.CliAsync("local", "switchover", "--to", target.Name, "--timeout", "40");
            times.Add(string.Create(CultureInfo.InvariantCulture, $"{primary.Name}->{target.Name} {(code == 0 ? "ok" : "FAILED")} {watch.Elapsed.TotalSeconds:0.0} s"));
            if (code != 0)
            {
                context.Note($"switchover {i + 1} failed: {output}");
                break;
            }

            primary = target;
        }

        context.Note(string.Join("; ", times));
    }

    private static string Detached(FaultContext context) =>
        "detachedFrom seen: " + string.Join(", ", context.Statuses.Samples(context.FaultAt).Where(s => s.DetachedFrom != 0).Select(s => s.Member).Distinct());
}
