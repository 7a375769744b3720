using Xunit.Abstractions;

namespace MemoryCluster.E2e.Tests;

/// <summary>
/// The one quick fault scenario of the default test run, through the same code as <c>make e2e</c>: kill -9 the
/// primary's postmaster in a 3-instance quorum-mode cluster, with the writer and the dual-primary monitor, and
/// every invariant checked. On failure the message carries every manager's /status and log tail.
/// </summary>
[Trait("Category", "Integration")]
public sealed class FaultScenarioTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Kill_postgres_in_a_three_instance_quorum_cluster_keeps_every_invariant()
    {
        var log = new StringWriter();
        var work = Path.Combine(Path.GetTempPath(), "memorycluster-e2e-tests");
        await E2eCluster.CleanLeftoversAsync(work, log, CancellationToken.None);
        var runner = new ScenarioRunner(new RunnerOptions(work, "quorum"), log);

        var report = await runner.RunAsync(Scenarios.Named("kill-postgres"), runs: 1, CancellationToken.None);

        output.WriteLine(log.ToString());
        Assert.True(report.Passed, $"kill-postgres broke an invariant:\n{string.Join('\n', report.AllViolations)}\n{log}");
        Assert.Single(report.Runs);
    }
}
