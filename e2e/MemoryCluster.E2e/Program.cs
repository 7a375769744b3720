// The end-to-end fault suite and the failover benchmark, on local clusters of real instance managers and real
// PostgreSQL 15 (e2e/README.md).
//
//   e2e   [--scenario NAME]... [--mode quorum|async] [--work DIR]            every default scenario once, invariants checked
//   bench [--runs N] [--scenario NAME]... [--mode quorum|async] [--work DIR]  figures per scenario, then one JSON line
//
// Without --scenario: every scenario but cpu-stress (long: `make e2e-stress`). A scenario that does not apply to
// the mode is skipped, with the reason.
//
// Exit status: 0 when every invariant held, 1 when one did not, 2 on a usage error.
using System.Globalization;
using System.Text.Json;
using MemoryCluster.E2e;

if (args.Length == 0 || args[0] is not ("e2e" or "bench"))
{
    Console.Error.WriteLine("usage: MemoryCluster.E2e e2e|bench [--runs N] [--scenario NAME]... [--mode quorum|async] [--work DIR]");
    return 2;
}

var bench = args[0] == "bench";
var runs = 1;
var mode = "quorum";
var work = RunnerOptions.DefaultWork;
var names = new List<string>();
for (var i = 1; i < args.Length; i++)
{
    var value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--runs" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0:
            runs = n;
            break;
        case "--scenario" when value is not null:
            names.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries));
            break;
        case "--mode" when value is "quorum" or "async":
            mode = value;
            break;
        case "--work" when value is not null:
            work = Path.GetFullPath(value);
            break;
        default:
            Console.Error.WriteLine($"unknown or incomplete option '{args[i]}'");
            return 2;
    }

    i++;
}

IReadOnlyList<Scenario> scenarios;
try
{
    scenarios = names.Count == 0 ? Scenarios.Default : [.. names.Select(Scenarios.Named)];
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

if (!bench)
{
    runs = 1;
}

using var interrupted = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // Ctrl-C ends the current scenario; its cluster is still brought down.
    e.Cancel = true;
    interrupted.Cancel();
};

await E2eCluster.CleanLeftoversAsync(work, Console.Out, interrupted.Token);
var runner = new ScenarioRunner(new RunnerOptions(work, mode), Console.Out);
var reports = new List<ScenarioReport>();
foreach (var scenario in scenarios)
{
    if (interrupted.IsCancellationRequested)
    {
        break;
    }

    reports.Add(await runner.RunAsync(scenario, runs, interrupted.Token));
    Console.WriteLine();
}

Console.WriteLine(bench ? "failover benchmark" : "end-to-end fault suite");
foreach (var report in reports)
{
    Console.WriteLine(ScenarioRunner.Summary(report));
}

var failed = reports.Count(r => !r.Passed);
var skipped = reports.Count(r => r.Skipped is not null);
Console.WriteLine($"{reports.Count - failed - skipped} scenarios passed, {failed} failed, {skipped} skipped");

// The benchmark ends with its one JSON line.
if (bench)
{
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["scenarios"] = reports.Where(r => r.Skipped is null).ToDictionary(
            r => r.Scenario.Name,
            r =>
            {
                var failovers = r.Runs.Where(x => x.FailoverSeconds is not null).Select(x => x.FailoverSeconds!.Value).Order().ToList();
                return new Dictionary<string, object?>
                {
                    ["mode"] = r.Mode,
                    ["instances"] = r.Scenario.Instances,
                    ["runs"] = r.Runs.Count,
                    ["failover_s_p50"] = ScenarioRunner.Percentile(failovers, 0.5) is { } p50 ? Math.Round(p50, 3) : null,
                    ["failover_s_p99"] = ScenarioRunner.Percentile(failovers, 0.99) is { } p99 ? Math.Round(p99, 3) : null,
                    ["lost_acked_writes"] = r.Runs.Sum(x => x.Lost),
                    ["dual_primary_instants"] = r.Runs.Sum(x => x.Dual.Count),
                    ["not_acked_with_warning"] = Math.Max(r.WarnedTotal, r.Runs.Sum(x => x.Warned)),
                    ["epoch_changes"] = r.Runs.Sum(x => x.EpochChanges),
                };
            }),
    }));
}

return failed == 0 && reports.Count == scenarios.Count ? 0 : 1;
