using MemoryCluster.Failover.Sim;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.Instance.Tests.Node;

/// <summary>
/// The failover simulator (operator/tools/MemoryCluster.Failover.Sim): real nodes and Raft cores on a simulated
/// network and simulated PostgreSQL, with faults. The soak is <c>make failover-sim SEEDS=20000</c>.
/// </summary>
public sealed class FailoverSimulationTests
{
    private static string Failures(IReadOnlyList<SimResult> results) => string.Join("\n", results
        .Where(r => r.Violations.Count > 0)
        .Select(r => $"seed {r.Seed} ({r.Options.Members} members, {r.Options.Mode}, {r.Options.Scenario ?? "random faults"}): {string.Join("; ", r.Violations)}"));

    [Fact]
    public void Five_hundred_seeded_runs_with_random_faults_keep_every_invariant_and_heal()
    {
        var results = FailoverSimulationBatch.Run(first: 1, count: 500);
        Assert.True(results.All(r => r.Violations.Count == 0), Failures(results));

        // The runs did exercise the cluster: primaries changed, commits were acknowledged, both modes and sizes ran.
        Assert.True(results.Sum(r => r.Failovers) > 500, $"only {results.Sum(r => r.Failovers)} changes of primary");
        Assert.True(results.Sum(r => r.Acked) > 500_000);
        Assert.Contains(results, r => r.Options is { Members: 5, Mode: ReplicationMode.Quorum });
        Assert.Contains(results, r => r.Options is { Members: 3, Mode: ReplicationMode.Async });
        Assert.True(results.Sum(r => r.LostAcked) > 0, "async mode never lost a write: the faults did not bite");
    }

    [Theory]
    // Half of these runs replay too slowly for any failover to be proven before the old primary is back.
    [InlineData("replica-crash-then-primary-crash", 10)]
    [InlineData("stop-new-primary-after-promote", 40)]
    [InlineData("lagging-replica-fork", 40)]
    [InlineData("primary-cut-from-standbys", 40)]

    // The old primary fenced with every commit it acknowledged: when the slow replica's fresh report comes too late,
    // it may start again at a new epoch instead of a change of primary.
    [InlineData("slow-state-query", 20)]

    // The adversarial review's findings 1, 3 and 4. After a frozen switchover target the old primary usually resumes
    // at a new epoch, which is not a change of primary.
    [InlineData("freeze-primary-and-watchdog", 40)]
    [InlineData("freeze-switchover-target", 0)]
    [InlineData("stall-promotion", 40)]
    public void The_holes_the_review_found_stay_closed(string scenario, int minPrimaryChanges)
    {
        var results = FailoverSimulationBatch.Run(first: 1, count: 40, scenario: scenario);
        Assert.True(results.All(r => r.Violations.Count == 0), Failures(results));
        Assert.True(results.Sum(r => r.Failovers) >= minPrimaryChanges, $"{scenario}: only {results.Sum(r => r.Failovers)} changes of primary in 40 runs");
    }

    [Fact]
    public void The_checkers_fire_when_the_safety_rules_are_broken()
    {
        // Without the watchdog a paused manager leaves its primary writing beside the next one in async mode. (Quorum
        // mode's replicas stop streaming from a silent primary before the leader promotes, so such a primary can no
        // longer acknowledge anything: see freeze-primary-and-watchdog.)
        var noWatchdog = FailoverSimulationBatch.Run(first: 1, count: 60, watchdog: false);
        Assert.Contains(noWatchdog, r => r.Options.Mode == ReplicationMode.Async && r.Violations.Any(v => v.Contains("two members accept writes", StringComparison.Ordinal)));

        // A state dated when its query answered, not when it began, passes a position read before the old primary
        // stopped for a fresh one: the leader promotes a replica without the last acknowledged commits.
        var lateDate = FailoverSimulationBatch.Run(first: 1, count: 40, scenario: "slow-state-query", breakQueryDate: true);
        Assert.Contains(lateDate, r => r.Violations.Any(v => v.Contains("acknowledged commits", StringComparison.Ordinal)));

        // Clocks that drift further than the lease rules assume (1.1) break them. (At 2.5, 2 of these 100 seeds did
        // until the primary campaigned first for Raft leadership, then none: 1 seed in 400; at 3.0, 3 of 100.)
        var drift = FailoverSimulationBatch.Run(first: 1, count: 100, drift: 3.0);
        Assert.Contains(drift, r => r.Violations.Count > 0);
    }

    [Fact]
    public void A_replayed_seed_gives_the_same_run()
    {
        var a = new FailoverSimulator(SimOptions.ForSeed(7) with { Trace = true }).Run();
        var b = new FailoverSimulator(SimOptions.ForSeed(7) with { Trace = true }).Run();
        Assert.Equal(a.Trace, b.Trace);
        Assert.Equal(a.Events, b.Events);
        Assert.Contains("accepts writes", a.Trace, StringComparison.Ordinal);
    }
}
