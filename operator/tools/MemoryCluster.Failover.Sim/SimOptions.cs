using MemoryCluster.Instance.Node;

namespace MemoryCluster.Failover.Sim;

/// <summary>One run's settings. Times are simulated microseconds of true time.</summary>
internal sealed record SimOptions(int Seed)
{
    public int Members { get; init; } = 3;

    public ReplicationMode Mode { get; init; } = ReplicationMode.Quorum;

    /// <summary>Faults are injected during this phase...</summary>
    public long FaultPhase { get; init; } = 40_000_000;

    /// <summary>... then everything heals, and within this bound a primary must take writes and every replica stream from it.</summary>
    public long LivenessBound { get; init; } = 45_000_000;

    /// <summary>How long after healing the run goes on (the bound, plus a little).</summary>
    public long HealedPhase { get; init; } = 50_000_000;

    /// <summary>How far clock rates really spread (the nodes assume 1.1).</summary>
    public double ActualDrift { get; init; } = 1.1;

    /// <summary>Runs with a watchdog process (disable to see the lease checker fire on a paused manager).</summary>
    public bool Watchdog { get; init; } = true;

    /// <summary>Date slow state queries when they answer instead of when they began (to see the quorum checker fire).</summary>
    public bool BreakQueryDate { get; init; }

    /// <summary>Leave the faults on without healing (for replays).</summary>
    public bool Trace { get; init; }

    /// <summary>A named fault schedule instead of random faults (regression scenarios).</summary>
    public string? Scenario { get; init; }

    public static SimOptions ForSeed(int seed) => new(seed)
    {
        Members = seed % 3 == 2 ? 5 : 3,
        Mode = seed % 2 == 0 ? ReplicationMode.Quorum : ReplicationMode.Async,
    };
}

/// <summary>What one run found.</summary>
internal sealed record SimResult(
    int Seed,
    SimOptions Options,
    IReadOnlyList<string> Violations,
    int Failovers,
    int Switchovers,
    long Acked,
    long LostAcked,
    long Events,
    int Faults,
    long HealToHealthyMicros,
    string Trace);
