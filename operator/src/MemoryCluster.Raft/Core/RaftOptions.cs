namespace MemoryCluster.Raft;

/// <summary>Options of the consensus core, counted in ticks. Validated by <see cref="Validate"/>.</summary>
public sealed record RaftOptions
{
    public required NodeId Id { get; init; }

    /// <summary>Minimum election timeout in ticks; the actual timeout is random in [ElectionTicks, 2*ElectionTicks).</summary>
    public int ElectionTicks { get; init; } = 10;

    public int HeartbeatTicks { get; init; } = 1;

    /// <summary>Upper bound on the rate ratio between any two nodes' clocks (1.1 = 10 %).</summary>
    public double ClockDriftBound { get; init; } = 1.1;

    public int MaxEntriesPerAppend { get; init; } = 64;

    /// <summary>Seed of the randomised election timeout (the core owns no other randomness).</summary>
    public int RandomSeed { get; init; }

    /// <summary>Members of a brand-new cluster; empty for a node that joins an existing one.</summary>
    public IReadOnlyList<Member> InitialMembers { get; init; } = [];

    /// <summary>
    /// The leader lease in ticks: (ElectionTicks - 1) / ClockDriftBound, rounded down. One tick is lost
    /// because a follower's first tick after hearing from the leader may come at once.
    /// </summary>
    public int LeaseTicks => (int)Math.Floor((ElectionTicks - 1) / ClockDriftBound);

    public void Validate()
    {
        if (Id.IsNone)
        {
            throw new ArgumentException("Id must not be 0.");
        }

        if (HeartbeatTicks < 1)
        {
            throw new ArgumentException("HeartbeatTicks must be at least 1.");
        }

        // With ElectionTicks > 2 * HeartbeatTicks and a drift bound of at most 2, the lease
        // ((ElectionTicks - 1) / drift) always spans at least one heartbeat interval.
        if (ElectionTicks <= HeartbeatTicks * 2)
        {
            throw new ArgumentException($"ElectionTicks ({ElectionTicks}) must be more than twice HeartbeatTicks ({HeartbeatTicks}).");
        }

        if (ClockDriftBound is < 1.0 or > 2.0 || double.IsNaN(ClockDriftBound))
        {
            throw new ArgumentException($"ClockDriftBound ({ClockDriftBound}) must be within [1, 2].");
        }

        if (MaxEntriesPerAppend < 1)
        {
            throw new ArgumentException("MaxEntriesPerAppend must be at least 1.");
        }

        if (InitialMembers.Select(m => m.Id).Distinct().Count() != InitialMembers.Count || InitialMembers.Any(m => m.Id.IsNone))
        {
            throw new ArgumentException("InitialMembers must have distinct, non-zero ids.");
        }
    }
}
