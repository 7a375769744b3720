namespace MemoryCluster.E2e;

/// <summary>
/// A fault scenario: what cluster it needs and how it breaks (and heals) it. <see cref="Inject"/> injects the
/// fault, marks the instant it took effect with <see cref="FaultContext.Fault"/> (so no write sent after it can
/// have been acknowledged before it), heals when the scenario says so, and returns; the runner then checks the
/// invariants.
/// </summary>
internal sealed record Scenario(string Name, int Instances, bool NetworkNamespaces, string Description, Func<FaultContext, Task> Inject)
{
    /// <summary>The modes it runs in; in another it is skipped, saying <see cref="SkipWhy"/>.</summary>
    public IReadOnlyList<string> Modes { get; init; } = ["quorum", "async"];

    public string? SkipWhy { get; init; }

    /// <summary>Part of the set `make e2e` and `make bench-failover` run when no scenario is named.</summary>
    public bool InDefaultSet { get; init; } = true;

    /// <summary>
    /// Quorum mode: the fault leaves the old primary's PostgreSQL out of recovery by design (its manager and watchdog
    /// frozen), so the monitor counts an instance writable only when it could have a commit acknowledged (at least k
    /// walsenders), and reports the instants two were out of recovery at all in a note (<see cref="DualPrimaryMonitor"/>).
    /// </summary>
    public bool WritableMeansCanAcknowledge { get; init; }

    /// <summary>
    /// The fault must leave the primary in place: an epoch change after the fault instant (a primary fenced and
    /// restarted, or replaced) is a violation, not only a slower run.
    /// </summary>
    public bool KeepsThePrimary { get; init; }

    /// <summary>Added to the scenario's time bound (a fault that lasts long on purpose).</summary>
    public TimeSpan ExtraTime { get; init; }
}
