using MemoryCluster.Raft.Sim;

namespace MemoryCluster.Raft.Tests;

[Collection(TimingSensitive.Name)]
public sealed class SimulationTests
{
    [Fact]
    public void Five_hundred_seeded_runs_keep_every_safety_invariant_and_elect_after_healing()
    {
        var results = SimulationBatch.Run(first: 1, count: 500);
        var failures = results.Where(r => r.Violations.Count > 0)
            .Select(r => $"seed {r.Seed}: {string.Join("; ", r.Violations)}")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // The runs did exercise the cluster: elections, crashes, commits and held leases.
        Assert.True(results.Sum(r => r.Elections) > 1000);
        Assert.True(results.Sum(r => r.Crashes) > 500);
        Assert.True(results.Sum(r => r.CommittedEntries) > 10_000);
        Assert.True(results.Sum(r => r.LeaseEvents) > 100_000);
        Assert.True(results.Sum(r => r.ReadsAnswered) > 1000);

        // Elections whose voters' silence dated every earlier lease before them, each checked against every lease held.
        Assert.True(results.Sum(r => r.PriorLeaseFloors) > 500);
    }

    [Fact]
    public void A_replayed_seed_gives_the_same_run()
    {
        var a = new Simulator(SimOptions.ForSeed(42) with { Trace = true }).Run();
        var b = new Simulator(SimOptions.ForSeed(42) with { Trace = true }).Run();
        Assert.Equal(a.Trace, b.Trace);
        Assert.Equal(a.Events, b.Events);
        Assert.NotEmpty(a.Trace);
    }
}
