namespace MemoryCluster.E2e.Tests;

public sealed class DualPrimaryMonitorTests
{
    private const long Period = 50;

    [Fact]
    public void Writable_samples_of_two_instances_that_overlap_make_dual_primary_instants()
    {
        var instants = DualPrimaryMonitor.InstantsOf([("mc-1", 100, 130), ("mc-2", 120, 160)], origin: 0, Period, from: 0, to: 1000);

        // mc-1 covers instants 2; mc-2 covers 2 and 3: only instant 2 has both.
        var instant = Assert.Single(instants);
        Assert.Equal(["mc-1", "mc-2"], instant.Writable);
    }

    [Fact]
    public void One_instance_writable_in_many_samples_is_never_a_dual_primary()
    {
        var samples = Enumerable.Range(0, 100).Select(i => ("mc-1", (long)(i * 10), (long)((i * 10) + 30)));

        Assert.Empty(DualPrimaryMonitor.InstantsOf(samples, origin: 0, Period, from: 0, to: 2000));
    }

    [Fact]
    public void Two_primaries_in_different_instants_are_not_dual_and_samples_outside_the_window_are_ignored()
    {
        (string, long, long)[] samples = [("mc-1", 0, 40), ("mc-2", 60, 90), ("mc-3", 5000, 5010), ("mc-1", 5000, 5010)];

        Assert.Empty(DualPrimaryMonitor.InstantsOf(samples, origin: 0, Period, from: 0, to: 1000));
        Assert.Single(DualPrimaryMonitor.InstantsOf(samples, origin: 0, Period, from: 0, to: 6000));
    }
}
