using System.Diagnostics;
using System.Globalization;

namespace MemoryCluster.Failover.Sim;

/// <summary>
/// <c>failover-sim --seeds N [--first S]</c> runs N seeds (3 or 5 members, quorum or async, random faults);
/// <c>--seed X [--trace]</c> replays one; <c>--scenario NAME</c> runs one of the named fault schedules (every one with
/// <c>--scenario all</c>) over as many seeds. The last line is always <c>failover-sim: seeds=N violations=V ...</c>;
/// the exit code is 1 when V &gt; 0.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var seeds = 500;
        var first = 1;
        int? single = null;
        var trace = false;
        string? scenario = null;
        var watchdog = true;
        double? drift = null;
        var breakQueryDate = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seeds":
                    seeds = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--first":
                    first = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--seed":
                    single = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--trace":
                    trace = true;
                    break;
                case "--scenario":
                    scenario = args[++i];
                    break;
                case "--no-watchdog":
                    // Run without the watchdog process (to see the dual-primary checker fire on a paused manager).
                    watchdog = false;
                    break;
                case "--break-drift":
                    // Spread clock rates beyond the 1.1 the nodes assume (to see the lease rules fail).
                    drift = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--break-query-date":
                    // Date a slow state query when it answers, as the manager did before (to see a stale position counted as fresh).
                    breakQueryDate = true;
                    break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}; usage: failover-sim [--seeds N] [--first S] [--seed X [--trace]] [--scenario NAME|all] [--no-watchdog] [--break-drift F] [--break-query-date]");
                    return 2;
            }
        }

        if (single is { } s)
        {
            first = s;
            seeds = 1;
        }

        if (scenario is not null && scenario != "all" && !FailoverSimulator.Scenarios.Contains(scenario))
        {
            Console.Error.WriteLine($"--scenario: no scenario '{scenario}' (scenarios: {string.Join(", ", FailoverSimulator.Scenarios)}, all)");
            return 2;
        }

        var stopwatch = Stopwatch.StartNew();
        IReadOnlyList<string?> scenarios = scenario == "all" ? [.. FailoverSimulator.Scenarios] : [scenario];
        var results = scenarios.SelectMany(name => FailoverSimulationBatch.Run(first, seeds, trace, name, watchdog, drift, breakQueryDate)).ToList();
        foreach (var r in results.Where(r => r.Violations.Count > 0 || trace))
        {
            if (trace)
            {
                Console.Write(r.Trace);
            }

            foreach (var v in r.Violations)
            {
                Console.WriteLine($"seed {r.Seed} ({r.Options.Members} members, {r.Options.Mode.ToString().ToLowerInvariant()}{(r.Options.Scenario is { } n ? ", " + n : string.Empty)}): {v}");
            }

            Console.WriteLine($"  replay: make failover-sim SEED={r.Seed}{(r.Options.Scenario is { } sc ? " SCENARIO=" + sc : string.Empty)} TRACE=1");
        }

        Console.WriteLine(FailoverSimulationBatch.Summary(results, stopwatch.Elapsed));
        return results.Any(r => r.Violations.Count > 0) ? 1 : 0;
    }
}

/// <summary>Runs a range of seeds in parallel; results come back in seed order.</summary>
internal static class FailoverSimulationBatch
{
    public static IReadOnlyList<SimResult> Run(int first, int count, bool trace = false, string? scenario = null, bool watchdog = true, double? drift = null, bool breakQueryDate = false)
    {
        var results = new SimResult[count];
        // One worker per core: unbounded, the pool kept adding threads to long seeds (770 threads and 2.4 GB after
        // 77 minutes of a 20,000-seed run, with no result out), where 2,000-seed runs finish in 1.5 minutes.
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var options = SimOptions.ForSeed(first + i) with { Trace = trace, Scenario = scenario, Watchdog = watchdog, ActualDrift = drift ?? 1.1, BreakQueryDate = breakQueryDate };
            if (scenario is "lagging-replica-fork")
            {
                options = options with { Mode = Instance.Node.ReplicationMode.Async };
            }
            else if (scenario is not null)
            {
                options = options with { Mode = Instance.Node.ReplicationMode.Quorum };
            }

            results[i] = new FailoverSimulator(options).Run();
        });
        return results;
    }

    public static string Summary(IReadOnlyList<SimResult> results, TimeSpan wall)
    {
        var heal = results.Where(r => r.HealToHealthyMicros >= 0).Select(r => r.HealToHealthyMicros / 1_000_000.0).Order().ToList();
        var p99 = heal.Count == 0 ? 0 : heal[Math.Min(heal.Count - 1, (int)Math.Ceiling(heal.Count * 0.99) - 1)];
        return string.Create(CultureInfo.InvariantCulture,
            $"failover-sim: seeds={results.Count} violations={results.Sum(r => r.Violations.Count)} failing_seeds={results.Count(r => r.Violations.Count > 0)} " +
            $"primary_changes={results.Sum(r => r.Failovers)} switchover_requests={results.Sum(r => r.Switchovers)} faults={results.Sum(r => r.Faults)} " +
            $"acked_commits={results.Sum(r => r.Acked)} lost_acked_async={results.Sum(r => r.LostAcked)} events={results.Sum(r => r.Events)} " +
            $"heal_to_healthy_p99_s={p99:0.0} wall_s={wall.TotalSeconds:0.0}");
    }
}
