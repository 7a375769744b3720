using System.Diagnostics;
using System.Globalization;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.E2e;

/// <summary>The catalogue, by the names the reports use.</summary>
internal static class Scenarios
{
    /// <summary>How long a killed, stopped or cut-off node stays so at most, waiting for writes to resume elsewhere.</summary>
    public static readonly TimeSpan FaultHold = TimeSpan.FromSeconds(20);

    /// <summary>How long hang-postgres keeps the primary's PostgreSQL stopped.</summary>
    public static readonly TimeSpan HangPostgres = TimeSpan.FromSeconds(30);

    /// <summary>How long a killed replica or Raft leader stays down before it "reboots".</summary>
    public static readonly TimeSpan ReplicaDowntime = TimeSpan.FromSeconds(5);

    /// <summary>replica-crash-then-primary-crash: how long the write load runs while the standby's startup process is stopped.</summary>
    public static readonly TimeSpan ReplayBacklogLoad = TimeSpan.FromSeconds(3);

    /// <summary>stop-new-primary-after-promote: how long the new primary's manager stays stopped.</summary>
    public static readonly TimeSpan NewPrimaryStop = TimeSpan.FromSeconds(15);

    /// <summary>primary-cut-from-standbys: how long the cut lasts at most, waiting for writes to resume elsewhere.</summary>
    public static readonly TimeSpan CutHold = TimeSpan.FromSeconds(40);

    /// <summary>kill-raft-leader: how long a primary that also leads Raft may take to hand leadership on (it does after leading 5 s, retrying every 3 s).</summary>
    public static TimeSpan LeaderHandOverWait { get; } = TimeSpan.FromSeconds(15);

    /// <summary>lagging-replica-fork: the WAL the lagging replica must be behind the other before the primary dies.</summary>
    public const long ForkGapBytes = 16 * 1024;

    /// <summary>cpu-stress: how long the load lasts (E2E_STRESS_SECONDS, default 300).</summary>
    public static TimeSpan StressDuration =>
        TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("E2E_STRESS_SECONDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 300);

    public static IReadOnlyList<Scenario> All { get; } =
    [
        new("kill-postgres", 3, false, "kill -9 the primary's postmaster", KillPostgresAsync),
        new("kill-node", 3, false, "kill -9 the primary's manager process group and its PostgreSQL; restart the node with `local up`", KillNodeAsync),
        new("hang-postgres", 3, false, "SIGSTOP every process of the primary's PostgreSQL for 30 s, then SIGCONT", HangPostgresAsync),
        new("hang-manager", 3, false, "SIGSTOP the primary's manager (pid only) until writes resume elsewhere (at most 20 s), then SIGCONT", HangManagerAsync),
        new("hang-primary-group", 3, false, "SIGSTOP the primary manager's process group (manager and postmaster; the backends and the watchdog run in sessions of their own) until writes resume elsewhere (at most 20 s), then SIGCONT", HangPrimaryGroupAsync),
        new("isolate-primary", 3, true, "cut the primary's veth link until writes resume elsewhere (at most 20 s), then restore it", IsolatePrimaryAsync),
        new("kill-replica", 3, false, "kill -9 a replica's manager process group and its PostgreSQL; restart it after 5 s; the primary must keep its epoch", KillReplicaAsync) { KeepsThePrimary = true },
        new("kill-raft-leader", 3, false, "kill -9 the Raft leader's node (moving the primary off it first if needed); restart it; the primary must keep its epoch", KillRaftLeaderAsync) { KeepsThePrimary = true },
        new("double-failure-5", 5, false, "kill -9 the primary's node and a replica's node at once (5 instances); restart both", DoubleFailureAsync),
        new("full-restart", 3, false, "`local down` (data kept), then `local up`; timed from the moment everything stopped", FullRestartAsync),
        new("replica-crash-then-primary-crash", 3, false, "stop a standby's startup process under a heavy write load, kill -9 its postmaster, and while it replays kill -9 the primary's node", ReplicaCrashThenPrimaryCrashAsync),
        new("stop-new-primary-after-promote", 3, false, "kill -9 the primary's node; SIGSTOP the manager of the member promoted in its place for 15 s, rebooting the old node meanwhile", StopNewPrimaryAfterPromoteAsync),
        new("lagging-replica-fork", 3, true, "cut replica A's manager API from the others, stop the primary's walsender to replica B, kill -9 the primary's node: B, with less WAL, is promoted; A must rewind", LaggingReplicaForkAsync)
        {
            Modes = ["async"],
            SkipWhy = "async mode only: in quorum mode the promoted replica holds every acknowledged commit, and a replica with more WAL than it is the normal case the quorum scenarios cover",
        },
        new("primary-cut-from-standbys", 3, true, "drop PostgreSQL traffic between the primary and its standbys (Raft and the managers' API still pass) until writes resume elsewhere", PrimaryCutFromStandbysAsync)
        {
            Modes = ["quorum"],
            SkipWhy = "quorum mode only: an async primary cut from its standbys keeps committing and keeps its lease, as designed",
        },
        new("freeze-standby-receiver", 3, false, "SIGSTOP a standby's walreceiver (its walsender stays 'streaming' until wal_sender_timeout): writes go on through the other standby, the frozen one reports not streaming and not ready; SIGCONT after 8 s", FreezeStandbyReceiverAsync)
        {
            Modes = ["quorum"],
            SkipWhy = "quorum mode only: in async mode no commit waits for a standby",
        },
        new("freeze-primary-manager-and-watchdog", 3, false, "SIGSTOP the primary's manager pid and its watchdog pid (not PostgreSQL: its backends go on) until writes resume elsewhere (at most 25 s), then SIGCONT", FreezePrimaryManagerAndWatchdogAsync)
        {
            Modes = ["quorum"],
            WritableMeansCanAcknowledge = true,
            SkipWhy = "quorum mode only: in async mode the old primary's backends go on acknowledging writes beside the new primary until its manager runs again, and those writes are lost (docs/failover.md, What the modes guarantee)",
        },
        new("freeze-switchover-target", 3, false, "request a switchover and SIGSTOP the target's manager as soon as any member reports the new epoch, until writes resume elsewhere (at most 25 s), then SIGCONT", FreezeSwitchoverTargetAsync),
        new("stall-promotion", 3, false, "SIGSTOP the startup process of the replica likely to be promoted, then kill -9 the primary's node: the stalled promotion must be given up and writes resume within 15 s; restart the node", StallPromotionAsync),
        new("cpu-stress", 3, false, "stress-ng on every core plus an fsync-heavy load (E2E_STRESS_SECONDS, default 300) while the writers write; no fault", CpuStressAsync)
        {
            InDefaultSet = false,
            ExtraTime = StressDuration,
        },
        .. ProbeScenarios.All,
    ];

    /// <summary>What `make e2e` runs when no scenario is named: every scenario but the long cpu-stress (`make e2e-stress`).</summary>
    public static IReadOnlyList<Scenario> Default => [.. All.Where(s => s.InDefaultSet)];

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

    /// <summary>
    /// A stop of the whole process group (kill -STOP -PGID, Ctrl-Z in a terminal): the backends go on committing,
    /// and only the watchdog, in a session of its own, can stop them. With the watchdog in the group, 8–19
    /// acknowledged commits were lost in each of 5 tries by hand.
    /// </summary>
    private static Task HangPrimaryGroupAsync(FaultContext context) =>
        StopPrimaryUntilWritesMoveAsync(context, (node, signal) => node.SignalManagerGroup(signal), FaultHold);

    private static Task HangManagerAsync(FaultContext context) =>
        StopPrimaryUntilWritesMoveAsync(context, (node, signal) => node.SignalManager(signal), FaultHold);

    /// <summary>
    /// SIGSTOP through <paramref name="signal"/> until writes resume elsewhere (at most <paramref name="limit"/>), then
    /// SIGCONT; whether they resumed.
    /// </summary>
    private static async Task<bool> StopPrimaryUntilWritesMoveAsync(FaultContext context, Func<NodeProcesses, int, bool> signal, TimeSpan limit)
    {
        var node = context.Node(context.Primary);
        if (!signal(node, NodeProcesses.SigStop))
        {
            throw new InvalidOperationException($"{context.Primary.Name}: its manager is not running");
        }

        context.Fault();
        try
        {
            return await context.WaitForWritesAwayFromAsync(context.Primary, limit);
        }
        finally
        {
            signal(node, NodeProcesses.SigCont);
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

            // The new primary may lead Raft for a while too (it campaigns first, and may have won an election during
            // the switchover); a primary that leads hands leadership to a streaming replica after 5 s of leading.
            if (!await context.WaitUntilAsync(async () => (leader = await context.RaftLeaderAsync()).Name != context.Primary.Name, LeaderHandOverWait))
            {
                throw new InvalidOperationException($"the Raft leader {leader.Name} is still the primary {LeaderHandOverWait.TotalSeconds:0} s after a switchover to {target.Name}");
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
        NodeProcesses.KillNodes([context.Node(context.Primary), context.Node(replica)]);
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

    /// <summary>freeze-standby-receiver: how long the walreceiver stays stopped.</summary>
    public static readonly TimeSpan ReceiverFreeze = TimeSpan.FromSeconds(8);

    /// <summary>
    /// A frozen walreceiver: PostgreSQL keeps showing it "streaming" on both sides. Writes must go on (the other
    /// standby acknowledges them), and the frozen standby's /status must stop claiming it streams within the
    /// staleness bound (4 s without a message from the primary, plus a state query).
    /// </summary>
    private static async Task FreezeStandbyReceiverAsync(FaultContext context)
    {
        var standby = context.Members.First(m => m.Name != context.Primary.Name);
        var node = context.Node(standby);
        var receiver = node.PostgresProcess("walreceiver") ?? throw new InvalidOperationException($"{standby.Name}: no walreceiver found among its PostgreSQL processes");
        NodeProcesses.SignalProcess(receiver, NodeProcesses.SigStop);
        context.Fault();
        var watch = Stopwatch.StartNew();
        try
        {
            if (!await context.WaitForWritesAwayFromAsync(standby, TimeSpan.FromSeconds(5)))
            {
                throw new InvalidOperationException($"no write acknowledged within 5 s of freezing {standby.Name}'s walreceiver");
            }

            var writes = watch.Elapsed;
            var honest = await context.Statuses.WaitForAsync(
                s => s.Member == standby.Name && s.AskedAt >= context.FaultAt && !s.Ready && s.Follow != FollowState.Streaming,
                TimeSpan.FromSeconds(7),
                context.CancellationToken) ?? throw new InvalidOperationException($"{standby.Name} still reported ready and streaming 7 s after its walreceiver was frozen");
            context.Note(string.Create(CultureInfo.InvariantCulture, $"{standby.Name}: walreceiver frozen; a write acknowledged after {writes.TotalSeconds:0.00} s; its status said not streaming ({honest.Follow}) after {watch.Elapsed.TotalSeconds:0.00} s"));
            var rest = ReceiverFreeze - watch.Elapsed;
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest, context.CancellationToken);
            }
        }
        finally
        {
            NodeProcesses.SignalProcess(receiver, NodeProcesses.SigCont);
        }
    }

    /// <summary>freeze-primary-manager-and-watchdog, freeze-switchover-target: how long the manager stays stopped at most.</summary>
    public static readonly TimeSpan FreezeHold = TimeSpan.FromSeconds(25);

    /// <summary>freeze-switchover-target: writes must resume elsewhere within this, well before the freeze would end.</summary>
    public static readonly TimeSpan SwitchoverTargetBound = TimeSpan.FromSeconds(15);

    /// <summary>stall-promotion: how far behind the most advanced replica the likely target may be.</summary>
    public const long LikelyTargetSlack = 1024 * 1024;

    /// <summary>stall-promotion: writes must resume on another member within this of the primary's node being killed.</summary>
    public static readonly TimeSpan StalledPromotionBound = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The primary's manager and its watchdog stopped together, PostgreSQL left running: its backends (in sessions
    /// of their own) go on committing, and nothing of the node can stop them. In quorum mode the replicas must stop
    /// streaming from it before their positions count, so none of those commits is acknowledged (before 6630df3: 14
    /// acknowledged commits lost in a try by hand).
    /// </summary>
    private static async Task FreezePrimaryManagerAndWatchdogAsync(FaultContext context)
    {
        var old = context.Primary;
        var node = context.Node(old);
        var watchdogs = node.WatchdogPids;
        if (watchdogs.Count == 0)
        {
            throw new InvalidOperationException($"{old.Name}: no watchdog process found");
        }

        var moved = await StopPrimaryUntilWritesMoveAsync(context, (n, signal) => n.SignalManagerAndWatchdogs(watchdogs, signal), FreezeHold);
        var held = Stopwatch.GetElapsedTime(context.FaultAt);
        context.Note(string.Create(CultureInfo.InvariantCulture, $"{old.Name}: manager and watchdog ({string.Join(", ", watchdogs)}) stopped for {held.TotalSeconds:0.00} s; writes {(moved ? "resumed elsewhere" : "did NOT resume elsewhere")} meanwhile"));
        if (!moved)
        {
            context.AfterHealing(_ => $"writes did not resume on another member within {FreezeHold.TotalSeconds:0} s of stopping {old.Name}'s manager and watchdog");
        }
    }

    /// <summary>
    /// A switchover whose target's manager stops right after the hand-over (as soon as any member reports the new
    /// epoch). The old primary, stopped cleanly, holds every commit: the leader must fail over from the silent
    /// target (to the old primary or the third member) well before the freeze ends (before 6630df3: no primary for
    /// the whole freeze, 22.6 s).
    /// </summary>
    private static async Task FreezeSwitchoverTargetAsync(FaultContext context)
    {
        var old = context.Primary;
        var leader = await context.RaftLeaderOrNullAsync();

        // The target: a replica that is not the Raft leader when there is one, so the freeze stops the target alone.
        var target = context.Members.Where(m => m.Name != old.Name).OrderBy(m => m.Name == leader?.Name ? 1 : 0).ThenBy(m => m.Id).First();
        var before = await context.MaxEpochAsync();
        var answer = await context.AskSwitchoverAsync(target);
        if (!answer.Accepted)
        {
            throw new InvalidOperationException($"switchover to {target.Name} refused: {answer.Message}");
        }

        // As soon as any member reports the new epoch, the target's manager stops.
        var moved = await context.WaitForEpochAsync(before, TimeSpan.FromSeconds(20))
            ?? throw new InvalidOperationException($"no member reported an epoch above {before} within 20 s of the switchover to {target.Name}");
        var node = context.Node(target);
        if (!node.SignalManager(NodeProcesses.SigStop))
        {
            throw new InvalidOperationException($"{target.Name}: its manager is not running");
        }

        context.Fault();
        bool resumed;
        try
        {
            resumed = await context.WaitForWritesAwayFromAsync(target, FreezeHold);
        }
        finally
        {
            node.SignalManager(NodeProcesses.SigCont);
        }

        var held = Stopwatch.GetElapsedTime(context.FaultAt);
        var writes = context.FirstWriteAwayFrom(target);
        context.Note(string.Create(
            CultureInfo.InvariantCulture,
            $"switchover {old.Name} -> {target.Name} (Raft leader {leader?.Name ?? "?"}): {moved.Member} reported epoch {moved.Epoch} (primary {moved.Primary}); {target.Name}'s manager stopped for {held.TotalSeconds:0.00} s; " +
            $"{(writes is { } w ? $"first write acknowledged elsewhere by {w.Member} {w.Seconds:0.00} s after the stop" : "no write acknowledged elsewhere")}"));
        if (!resumed || writes is not { } first || first.Seconds > SwitchoverTargetBound.TotalSeconds)
        {
            context.AfterHealing(_ => $"writes did not resume away from the frozen switchover target {target.Name} within {SwitchoverTargetBound.TotalSeconds:0} s (freeze of at most {FreezeHold.TotalSeconds:0} s)");
        }
    }

    /// <summary>
    /// The replica the leader will likely promote (highest reported flush position, ties to the lowest id) has its
    /// startup process stopped; then the primary's node is killed. Its promotion cannot progress: it must be given
    /// up (a fence at that epoch), writes resuming within 15 s (before 6630df3: no primary while the startup process
    /// stayed stopped). With 3 instances and the old primary down, the one other replica cannot prove it holds every
    /// acknowledged commit (quorum mode), so the leader restarts the fenced member as primary at a new epoch (a new
    /// postmaster, a new startup process); with more, another member may be promoted. When the other replica is
    /// promoted in the first place, the run still has to pass; the note says which happened.
    /// </summary>
    private static async Task StallPromotionAsync(FaultContext context)
    {
        var old = context.Primary;
        var replicas = context.Members.Where(m => m.Name != old.Name).ToList();
        // Once the primary is dead the replicas hold the same WAL (each receives every commit within milliseconds),
        // so the tie goes to the lowest id; a replica far behind the other (more than 1 MB) is not the likely target.
        Lsn Flush(Peer m) => context.Statuses.Latest(m.Name)?.FlushLsn ?? Lsn.Zero;
        var highest = replicas.Max(Flush);
        var likely = replicas.Where(m => highest.BytesAfter(Flush(m)) <= LikelyTargetSlack).OrderBy(m => m.Id).First();
        var node = context.Node(likely);
        var startup = node.PostgresProcess("startup") ?? throw new InvalidOperationException($"{likely.Name}: no startup process found among its PostgreSQL processes");
        var before = await context.MaxEpochAsync();
        NodeProcesses.SignalProcess(startup, NodeProcesses.SigStop);
        bool resumed;
        try
        {
            context.Node(old).KillNode();
            context.Fault();
            resumed = await context.WaitForWritesAwayFromAsync(old, FaultHold);
        }
        finally
        {
            NodeProcesses.SignalProcess(startup, NodeProcesses.SigCont);
        }

        var faultAt = context.FaultAt;
        var writes = context.FirstWriteAwayFrom(old);

        // Which member each new epoch named, in order: the stalled one first (then given up), or the other at once.
        var named = context.Statuses.Samples(faultAt).Where(s => s.Epoch > before && s.Primary is not null)
            .GroupBy(s => s.Epoch).OrderBy(g => g.Key).Select(g => $"epoch {g.Key}: {g.First().Primary}").ToList();
        var stalledFirst = named.Count > 0 && named[0].EndsWith(likely.Name, StringComparison.Ordinal);
        context.Note(string.Create(
            CultureInfo.InvariantCulture,
            $"{likely.Name}'s startup process stopped (likely target); {old.Name}'s node killed; primaries named since: {string.Join(", ", named)}; " +
            $"{(stalledFirst ? $"the stalled member was promoted first{(named.Count > 1 ? ", then given up" : " and never given up")}" : "the stalled member was NOT promoted first (setup did not hold; it cannot re-point to the new primary either, and in quorum mode, with the old primary down, it is the only standby, so commits wait until its startup process continues: no bound on the outage)")}; " +
            $"{(writes is { } w ? $"first write acknowledged elsewhere by {w.Member} {w.Seconds:0.00} s after the kill" : "no write acknowledged elsewhere")}"));
        if (stalledFirst && (!resumed || writes is not { } first || first.Seconds > StalledPromotionBound.TotalSeconds))
        {
            context.AfterHealing(_ => $"writes did not resume on another member within {StalledPromotionBound.TotalSeconds:0} s of killing {old.Name}'s node with {likely.Name}'s startup process stopped");
        }

        await context.RestartAsync();
    }

    private static async Task ReplicaCrashThenPrimaryCrashAsync(FaultContext context)
    {
        var primary = context.Primary;
        var standby = context.Members.First(m => m.Name != primary.Name);
        var node = context.Node(standby);
        var startup = node.PostgresProcess("startup") ?? throw new InvalidOperationException($"{standby.Name}: no startup process found among its PostgreSQL processes");

        // Its startup process stopped while the primary writes a lot: the WAL arrives and is flushed (and counts for
        // quorum commits) but is not replayed. Then the standby's PostgreSQL crashes — its postmaster and the stopped
        // startup process killed (-9) together, so nothing replays the backlog before the restart —, and the
        // restarted startup process replays that backlog from local pg_wal before it asks for streaming again.
        long wal;
        int? postmaster;
        NodeProcesses.SignalProcess(startup, NodeProcesses.SigStop);
        try
        {
            wal = await context.BallastAsync(primary, ReplayBacklogLoad);
            postmaster = node.PostmasterPid;
            if (!node.KillPostmaster())
            {
                throw new InvalidOperationException($"{standby.Name}: no postmaster to kill");
            }

            NodeProcesses.SignalProcess(startup, NodeProcesses.SigKill);
        }
        finally
        {
            // Nothing of the standby stays stopped, whatever happened above.
            NodeProcesses.SignalProcess(startup, NodeProcesses.SigCont);
        }

        var killed = Stopwatch.GetTimestamp();
        var reported = context.Statuses.Latest(standby.Name);

        // As soon as its manager has started PostgreSQL again (replay of the backlog begins), the primary goes too.
        var restarted = await context.WaitUntilAsync(() => (node.PostmasterPid is { } p && p != postmaster) || context.Statuses.Latest(standby.Name) is { PositionSettled: false, PostgresRunning: true }, TimeSpan.FromSeconds(10));
        var after = Stopwatch.GetElapsedTime(killed);
        context.Node(primary).KillNode();
        context.Fault();
        context.Note(string.Create(CultureInfo.InvariantCulture, $"{standby.Name}: startup process stopped while the primary wrote {wal / (1024.0 * 1024):0.0} MB of WAL; its PostgreSQL killed (last report before: flush {reported?.FlushLsn}, settled {reported?.PositionSettled}); {(restarted ? "running again" : "not running again")} {after.TotalSeconds:0.00} s later, when the primary's node was killed"));
        await context.WaitForWritesAwayFromAsync(primary, FaultHold);
        var faultAt = context.FaultAt;
        context.AfterHealing(statuses =>
        {
            // What the crashed standby reported while the failover was decided: its position, settled or not.
            var reports = statuses.Samples(faultAt).Where(s => s.Member == standby.Name).Take(40).Select(s => $"{s.FlushLsn}{(s.PositionSettled ? string.Empty : " (unsettled)")}").Distinct();
            context.Note($"{standby.Name} reported after the fault: {string.Join(", ", reports)}");
            return null;
        });
        await context.RestartAsync();
    }

    private static async Task StopNewPrimaryAfterPromoteAsync(FaultContext context)
    {
        var old = context.Primary;
        var epoch = context.Statuses.Samples().Select(s => s.Epoch).DefaultIfEmpty(0UL).Max();
        context.Node(old).KillNode();
        context.Fault();
        var promoted = await context.Statuses.WaitForAsync(s => s.Member != old.Name && s.Role == InstanceRole.Primary && s.Ready && s.Epoch > epoch, FaultHold, context.CancellationToken)
            ?? throw new InvalidOperationException($"no other member reported itself primary and ready within {FaultHold.TotalSeconds:0} s of killing {old.Name}'s node");
        var next = context.Members.Single(m => m.Name == promoted.Member);
        var node = context.Node(next);
        if (!node.SignalManager(NodeProcesses.SigStop))
        {
            throw new InvalidOperationException($"{next.Name}: its manager is not running");
        }

        context.Note(string.Create(CultureInfo.InvariantCulture, $"{next.Name} reported itself primary and ready at epoch {promoted.Epoch}, {Stopwatch.GetElapsedTime(context.FaultAt, promoted.AnsweredAt).TotalSeconds:0.00} s after the fault; its manager stopped for {NewPrimaryStop.TotalSeconds:0} s"));

        // The killed node reboots meanwhile: with it, two of three members can elect a Raft leader and replace the
        // stopped primary. `local up` waits for full strength, so it ends only after the SIGCONT.
        var restart = context.RestartAsync();
        try
        {
            await Task.Delay(NewPrimaryStop, context.CancellationToken);
        }
        finally
        {
            node.SignalManager(NodeProcesses.SigCont);
        }

        var writable = context.Statuses.Samples(context.FaultAt).Where(s => s.Role == InstanceRole.Primary && s.Member != next.Name && s.Member != old.Name).Select(s => s.Member).FirstOrDefault();
        context.Note(writable is null ? $"no other member reported itself primary while {next.Name}'s manager was stopped" : $"{writable} reported itself primary while {next.Name}'s manager was stopped");
        await restart;
    }

    private static async Task LaggingReplicaForkAsync(FaultContext context)
    {
        var network = context.Cluster.Layout.Network ?? throw new InvalidOperationException("lagging-replica-fork needs a cluster made with --netns");
        var old = context.Primary;

        // B decides the failover: the Raft leader, a replica (a primary that leads hands leadership to a replica),
        // which counts its own report. A is the other replica.
        var leader = await context.Statuses.WaitForAsync(s => s.RaftRole == "leader" && s.Member != old.Name && s.Role == InstanceRole.Replica, TimeSpan.FromSeconds(20), context.CancellationToken)
            ?? throw new InvalidOperationException($"setup: no replica became the Raft leader within 20 s (the primary {old.Name} hands leadership to a replica)");
        var b = context.Members.Single(m => m.Name == leader.Member);
        var a = context.Members.Single(m => m.Name != old.Name && m.Name != b.Name);
        var ns = network.Namespace(a);

        // A's manager API cut from the other members (its Raft and PostgreSQL traffic still pass, and the suite still
        // reads it through the bridge): the leader cannot read A's report, so A cannot be chosen.
        HostTools.ApplyRules(ns, [$"ip saddr {{ {b.Host}, {old.Host} }} tcp dport {a.HttpPort} drop"], []);
        try
        {
            // B falls behind: the primary's walsender for B stopped (B's walreceiver gives up only after 5 s), while
            // the writes go on and A receives them. Stopping B's walreceiver instead would not do: the kernel keeps
            // receiving into its socket buffer, which it reads when continued.
            var sender = await context.WalSenderPidAsync(old, b) ?? throw new InvalidOperationException($"setup: no walsender for {b.Name} on {old.Name}");
            NodeProcesses.SignalProcess(sender, NodeProcesses.SigStop);
            var gapped = await context.WaitUntilAsync(() => Gap(context, a, b) >= ForkGapBytes, TimeSpan.FromSeconds(3));
            context.Note(string.Create(CultureInfo.InvariantCulture, $"A={a.Name} (API cut from {b.Name} and {old.Name}), B={b.Name} (Raft leader; walsender stopped): A reported {Gap(context, a, b)} bytes more WAL than B{(gapped ? string.Empty : " (less than wanted)")} when the primary's node was killed"));
            context.Node(old).KillNode();
            context.Fault();
            await context.WaitForWritesAwayFromAsync(old, FaultHold);
        }
        finally
        {
            HostTools.RemoveRules(ns);
        }

        await context.RestartAsync();
        var faultAt = context.FaultAt;
        context.AfterHealing(statuses =>
        {
            var seen = statuses.Samples(faultAt).Where(s => s.Member == a.Name).Select(s => s.Follow).Distinct().ToList();
            var promoted = statuses.Samples(faultAt).Where(s => s.Role == InstanceRole.Primary && s.Ready).Select(s => s.Member).Distinct().ToList();
            context.Note($"A={a.Name}'s follow states after the fault: {string.Join(", ", seen)}; ready primaries: {string.Join(", ", promoted)}");
            if (!promoted.Contains(b.Name))
            {
                return $"setup did not hold: B={b.Name} (less WAL) was not promoted; ready primaries after the fault: {string.Join(", ", promoted)}";
            }

            return seen.Any(f => f is FollowState.Diverged or FollowState.Rewinding or FollowState.Cloning)
                ? null
                : $"A={a.Name} had more WAL than the promoted B={b.Name} but never reported diverged, rewinding or cloning (follow states seen: {string.Join(", ", seen)})";
        });
    }

    private static long Gap(FaultContext context, Peer a, Peer b) =>
        context.Statuses.Latest(a.Name)?.FlushLsn is { } fa && context.Statuses.Latest(b.Name)?.FlushLsn is { } fb ? fa.BytesAfter(fb) : 0;

    private static async Task PrimaryCutFromStandbysAsync(FaultContext context)
    {
        var network = context.Cluster.Layout.Network ?? throw new InvalidOperationException("primary-cut-from-standbys needs a cluster made with --netns");
        var old = context.Primary;
        var ns = network.Namespace(old);
        var hosts = string.Join(", ", context.Members.Where(m => m.Name != old.Name).Select(m => m.Host));
        var ports = string.Join(", ", context.Members.Select(m => m.PgPort));

        // Only PostgreSQL's traffic between the primary and the standbys, both ways, either end's port: replication,
        // and anything a manager would run against another member's PostgreSQL. Raft, the managers' API and the
        // suite's own connections (from the bridge) still pass.
        HostTools.ApplyRules(
            ns,
            [$"ip saddr {{ {hosts} }} tcp dport {{ {ports} }} drop", $"ip saddr {{ {hosts} }} tcp sport {{ {ports} }} drop"],
            [$"ip daddr {{ {hosts} }} tcp dport {{ {ports} }} drop", $"ip daddr {{ {hosts} }} tcp sport {{ {ports} }} drop"]);
        try
        {
            context.Fault();
            await context.WaitForWritesAwayFromAsync(old, CutHold);
        }
        finally
        {
            HostTools.RemoveRules(ns);
        }

        var faultAt = context.FaultAt;
        var healedAt = Stopwatch.GetTimestamp();
        context.AfterHealing(statuses =>
        {
            var down = statuses.Samples(faultAt, healedAt).FirstOrDefault(s => s.Member == old.Name && s.SteppingDown);
            if (down is null)
            {
                return $"the primary {old.Name} never reported steppingDown while cut from its standbys";
            }

            context.Note(string.Create(CultureInfo.InvariantCulture, $"{old.Name} reported steppingDown {Stopwatch.GetElapsedTime(faultAt, down.AnsweredAt).TotalSeconds:0.00} s after the cut"));
            return null;
        });
    }

    private static async Task CpuStressAsync(FaultContext context)
    {
        var program = HostTools.Require("stress-ng", "stress-ng");
        var seconds = (int)StressDuration.TotalSeconds;
        var cores = Environment.ProcessorCount;
        var folder = Directory.CreateDirectory(Path.Combine(context.Cluster.Dir, "stress")).FullName;
        var start = new ProcessStartInfo(program) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["--cpu", $"{cores}", "--hdd", "1", "--hdd-opts", "fsync", "--hdd-bytes", "128m", "--temp-path", folder, "--timeout", $"{seconds}s", "--quiet"])
        {
            start.ArgumentList.Add(arg);
        }

        using var stress = Process.Start(start) ?? throw new InvalidOperationException("could not start stress-ng");
        var output = stress.StandardOutput.ReadToEndAsync(context.CancellationToken);
        var errors = stress.StandardError.ReadToEndAsync(context.CancellationToken);
        context.Fault();
        try
        {
            // stress-ng stops itself after --timeout; the wait is bounded beyond that all the same.
            await stress.WaitForExitAsync(context.CancellationToken).WaitAsync(StressDuration + TimeSpan.FromSeconds(30), context.CancellationToken);
        }
        finally
        {
            if (!stress.HasExited)
            {
                stress.Kill(entireProcessTree: true);
            }
        }

        var said = (await output + await errors).Trim();
        context.Note(string.Create(CultureInfo.InvariantCulture, $"stress-ng --cpu {cores} --hdd 1 --hdd-opts fsync for {seconds} s: exit {stress.ExitCode} {said}"));
    }
}
