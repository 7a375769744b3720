using System.Diagnostics;
using System.Globalization;

namespace MemoryCluster.Raft.Sim;

/// <summary>
/// <c>raft-sim --seeds N [--first S]</c> runs N seeds; <c>raft-sim --seed X [--trace]</c> replays one.
/// The last line is always <c>raft-sim: seeds=N violations=V ...</c>; the exit code is 1 when V &gt; 0.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var seeds = 500;
        var first = 1;
        int? single = null;
        var trace = false;
        double? actualDrift = null;
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
                case "--break-drift":
                    // Spread clock rates beyond the bound the nodes assume (to see the lease checker fire).
                    actualDrift = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}; usage: raft-sim [--seeds N] [--first S] [--seed X [--trace]] [--break-drift F]");
                    return 2;
            }
        }

        if (single is { } s)
        {
            first = s;
            seeds = 1;
        }

        var stopwatch = Stopwatch.StartNew();
        var results = SimulationBatch.Run(first, seeds, trace, actualDrift);
        foreach (var r in results.Where(r => r.Violations.Count > 0 || trace))
        {
            if (trace)
            {
                Console.Write(r.Trace);
            }

            foreach (var v in r.Violations)
            {
                Console.WriteLine($"seed {r.Seed}: {v}");
            }
        }

        var violations = results.Sum(r => r.Violations.Count);
        var healTimes = results.Where(r => r.HealToLeaderMicros >= 0).Select(r => r.HealToLeaderMicros / 1000.0).Order().ToList();
        var p99 = healTimes.Count == 0 ? 0 : healTimes[Math.Min(healTimes.Count - 1, (int)Math.Ceiling(healTimes.Count * 0.99) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"raft-sim: seeds={seeds} violations={violations} failing_seeds={results.Count(r => r.Violations.Count > 0)} " +
            $"elections={results.Sum(r => r.Elections)} committed={results.Sum(r => r.CommittedEntries)} " +
            $"crashes={results.Sum(r => r.Crashes)} events={results.Sum(r => r.Events)} lease_held_events={results.Sum(r => r.LeaseEvents)} reads={results.Sum(r => r.ReadsAnswered)} " +
            $"elections_with_earlier_lease_floor={results.Sum(r => r.PriorLeaseFloors)} " +
            $"heal_to_leader_p99_ms={p99:F0} wall_s={stopwatch.Elapsed.TotalSeconds:F1}"));
        return violations > 0 ? 1 : 0;
    }
}

/// <summary>Runs a range of seeds in parallel; results come back in seed order.</summary>
internal static class SimulationBatch
{
    public static IReadOnlyList<SimResult> Run(int first, int count, bool trace = false, double? actualDrift = null)
    {
        var results = new SimResult[count];
        Parallel.For(0, count, i =>
        {
            var options = SimOptions.ForSeed(first + i) with { Trace = trace, ActualDrift = actualDrift };
            results[i] = new Simulator(options).Run();
        });
        return results;
    }
}
