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

    /// <summary>
    /// For a leader whose voters (itself included) had each counted at least <paramref name="quietTicks"/> ticks
    /// since they last heard from a leader: how many ticks of its own clock before its election every earlier
    /// leader's lease had surely ended; 0 when the silence proves nothing more than the election itself.
    /// </summary>
    /// <remarks>
    /// IMPORTANT: the proof. An earlier leader holds its lease only from a heartbeat round a quorum acknowledged,
    /// and for at most <see cref="LeaseTicks"/> of its ticks (its host: (ElectionTicks − 2) / drift intervals) from
    /// the round's send. That quorum and this leader's voters share a member, which heard from that leader no earlier
    /// than the send and voted here later, so its count covers at least the time since. Its count of q ticks spans
    /// at least q − 2 tick intervals on its clock (the first tick may follow the contact at once, and a host's ticks
    /// come at least half an interval apart after a stall), at least (q − 2) / drift on this node's; the lease spans
    /// at most drift × LeaseTicks ≤ ElectionTicks − 1 of this node's. Taking the fewest ticks over the voters covers
    /// the shared one whichever it is. A voter that restarted counts from its start, later than its last contact.
    /// </remarks>
    public double PriorLeasesEndedTicksBefore(int quietTicks) =>
        Math.Max(0, ((quietTicks - 2) / ClockDriftBound) - (ElectionTicks - 1));

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
