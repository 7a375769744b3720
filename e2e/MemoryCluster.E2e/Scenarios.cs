using System.Diagnostics;
using MemoryCluster.Instance;

namespace MemoryCluster.E2e;

/// <summary>
/// A fault scenario: what cluster it needs and how it breaks (and heals) it. <see cref="Inject"/> injects the
/// fault, marks the instant it took effect with <see cref="FaultContext.Fault"/> (so no write sent after it can
/// have been acknowledged before it), heals when the scenario says so, and returns; the runner then checks the
/// invariants.
/// </summary>
internal sealed record Scenario(string Name, int Instances, bool NetworkNamespaces, string Description, Func<FaultContext, Task> Inject);

/// <summary>The catalogue, by the names the reports use.</summary>
internal static class Scenarios
{
    /// <summary>How long a killed, stopped or cut-off node stays so at most, waiting for writes to resume elsewhere.</summary>
    public static readonly TimeSpan FaultHold = TimeSpan.FromSeconds(20);

    /// <summary>How long hang-postgres keeps the primary's PostgreSQL stopped.</summary>
    public static readonly TimeSpan HangPostgres = TimeSpan.FromSeconds(30);

    /// <summary>How long a killed replica or Raft leader stays down before it "reboots".</summary>
    public static readonly TimeSpan ReplicaDowntime = TimeSpan.FromSeconds(5);

    public static IReadOnlyList<Scenario> All { get; } =
    [
        new("kill-postgres", 3, false, "kill -9 the primary's postmaster", KillPostgresAsync),
        new("kill-node", 3, false, "kill -9 the primary's manager process group and its PostgreSQL; restart the node with `local up`", KillNodeAsync),
        new("hang-postgres", 3, false, "SIGSTOP every process of the primary's PostgreSQL for 30 s, then SIGCONT", HangPostgresAsync),
        new("hang-manager", 3, false, "SIGSTOP the primary's manager (pid only) until writes resume elsewhere (at most 20 s), then SIGCONT", HangManagerAsync),
        new("isolate-primary", 3, true, "cut the primary's veth link until writes resume elsewhere (at most 20 s), then restore it", IsolatePrimaryAsync),
        new("kill-replica", 3, false, "kill -9 a replica's manager process group and its PostgreSQL; restart it after 5 s", KillReplicaAsync),
        new("kill-raft-leader", 3, false, "kill -9 the Raft leader's node (moving the primary off it first if needed); restart it", KillRaftLeaderAsync),
        new("double-failure-5", 5, false, "kill -9 the primary's node and a replica's node at once (5 instances); restart both", DoubleFailureAsync),
        new("full-restart", 3, false, "`local down` (data kept), then `local up`; timed from the moment everything stopped", FullRestartAsync),
    ];

    public static Scenario Named(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"no scenario '{name}' (scenarios: {string.Join(", ", All.Select(s => s.Name))})", nameof(name));

    private static Task KillPostgresAsync(FaultContext context)
    {
        if (!context.Node(context.Primary).KillPostmaster())
        {
            throw new InvalidOperationException($"{context.Primary.Name}: no postmaster to kill");
        }

        context.Fault();
        return Task.CompletedTask;
    }

    private static async Task KillNodeAsync(FaultContext context)
    {
        context.Node(context.Primary).KillNode();
        context.Fault();
        await context.WaitForWritesAwayFromAsync(context.Primary, FaultHold);
        await context.RestartAsync();
    }

    private static async Task HangPostgresAsync(FaultContext context)
    {
        var node = context.Node(context.Primary);
        if (node.SignalPostgres(NodeProcesses.SigStop) == 0)
        {
            throw new InvalidOperationException($"{context.Primary.Name}: no PostgreSQL process to stop");
        }

        context.Fault();
        try
        {
            await Task.Delay(HangPostgres, context.CancellationToken);
        }
        finally
        {
            node.SignalPostgres(NodeProcesses.SigCont);
        }
    }

    private static async Task HangManagerAsync(FaultContext context)
    {
        var node = context.Node(context.Primary);
        if (!node.SignalManager(NodeProcesses.SigStop))
        {
            throw new InvalidOperationException($"{context.Primary.Name}: its manager is not running");
        }

        context.Fault();
        try
        {
            await context.WaitForWritesAwayFromAsync(context.Primary, FaultHold);
        }
        finally
        {
            node.SignalManager(NodeProcesses.SigCont);
        }
    }

    private static async Task IsolatePrimaryAsync(FaultContext context)
    {
        var network = context.Cluster.Layout.Network ?? throw new InvalidOperationException("isolate-primary needs a cluster made with --netns");
        network.SetLink(context.Primary, up: false);
        try
        {
            context.Fault();
            await context.WaitForWritesAwayFromAsync(context.Primary, FaultHold);
        }
        finally
        {
            network.SetLink(context.Primary, up: true);
        }
    }

    private static async Task KillReplicaAsync(FaultContext context)
    {
        var replica = context.Members.First(m => m.Name != context.Primary.Name);
        context.Node(replica).KillNode();
        context.Fault();
        await Task.Delay(ReplicaDowntime, context.CancellationToken);
        await context.RestartAsync();
    }

    private static async Task KillRaftLeaderAsync(FaultContext context)
    {
        // The scenario is about the leader when it is not the primary: move the primary off it first.
        var leader = await context.RaftLeaderAsync();
        if (leader.Name == context.Primary.Name)
        {
            var target = context.Members.First(m => m.Name != leader.Name);
            await context.SwitchoverAsync(target);
            leader = await context.RaftLeaderAsync();
            if (leader.Name == context.Primary.Name)
            {
                throw new InvalidOperationException($"the Raft leader {leader.Name} is the primary again after a switchover to {target.Name}");
            }
        }

        context.Node(leader).KillNode();
        context.Fault();
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < FaultHold)
        {
            if (await context.RaftLeaderOrNullAsync() is { } now && now.Name != leader.Name)
            {
                break;
            }

            await Task.Delay(100, context.CancellationToken);
        }

        await Task.Delay(ReplicaDowntime, context.CancellationToken);
        await context.RestartAsync();
    }

    private static async Task DoubleFailureAsync(FaultContext context)
    {
        var replica = context.Members.First(m => m.Name != context.Primary.Name);
        context.Node(context.Primary).KillNode();
        context.Node(replica).KillNode();
        context.Fault();
        await context.WaitForWritesAwayFromAsync(context.Primary, FaultHold);
        await context.RestartAsync();
    }

    private static async Task FullRestartAsync(FaultContext context)
    {
        // The fault instant is when everything has stopped: the clean shutdown itself is not downtime to measure.
        await context.CliAsync("local", "down");
        context.Fault();
        await context.RestartAsync();
    }
}

/// <summary>What a scenario can see and do while it runs: the cluster, the writer's progress, the fault instant.</summary>
internal sealed class FaultContext(E2eCluster cluster, AckedWriter writer, Peer primary, TextWriter log, CancellationToken cancellationToken)
{
    public E2eCluster Cluster => cluster;

    public IReadOnlyList<Peer> Members => cluster.Layout.Members;

    /// <summary>The primary the fault is aimed at (after any preparation, such as a switchover).</summary>
    public Peer Primary { get; private set; } = primary;

    public CancellationToken CancellationToken => cancellationToken;

    /// <summary>The fault instant (Stopwatch ticks); 0 until <see cref="Fault"/>.</summary>
    public long FaultAt { get; private set; }

    public NodeProcesses Node(Peer member) => new(cluster.Layout, member);

    public void Fault()
    {
        FaultAt = Stopwatch.GetTimestamp();
        log.WriteLine($"    fault at primary {Primary.Name}");
    }

    /// <summary>Waits until a write sent after the fault is acknowledged by another instance than <paramref name="old"/>; false on timeout.</summary>
    public Task<bool> WaitForWritesAwayFromAsync(Peer old, TimeSpan limit) =>
        writer.WaitForAsync(w => w.Count > 0 && w[^1].SentAt >= FaultAt && w[^1].ServerPort != old.PgPort, limit);

    /// <summary><c>local up</c>: starts every manager that is not running (a node reboot) and waits for health.</summary>
    public async Task RestartAsync()
    {
        var (code, output) = await CliAsync("local", "up", "--timeout", "150");
        if (code != 0)
        {
            log.WriteLine($"    local up exited {code}:\n{output}");
        }
    }

    public Task<(int Code, string Output)> CliAsync(params string[] args) => cluster.CliAsync(args, cancellationToken);

    public async Task<Peer> RaftLeaderAsync() =>
        await RaftLeaderOrNullAsync() ?? throw new InvalidOperationException("no instance reports itself Raft leader");

    public async Task<Peer?> RaftLeaderOrNullAsync() =>
        (await cluster.StatusAsync(cancellationToken)).FirstOrDefault(s => s.Status?.Raft.Role == "leader").Member;

    /// <summary>A planned switchover, as preparation; the fault then aims at the new primary.</summary>
    public async Task SwitchoverAsync(Peer target)
    {
        var (code, output) = await CliAsync("local", "switchover", "--to", target.Name);
        if (code != 0)
        {
            throw new InvalidOperationException($"switchover to {target.Name} (preparation) failed:\n{output}");
        }

        Primary = target;
        log.WriteLine($"    switched the primary over to {target.Name} first");
    }
}
