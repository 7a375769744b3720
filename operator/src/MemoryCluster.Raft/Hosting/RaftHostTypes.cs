namespace MemoryCluster.Raft;

// The host's public types: its options, the exceptions its requests raise, what it reports.

/// <summary>Options of <see cref="RaftHost{TState}"/>. Times are real time; the core counts ticks.</summary>
public sealed record RaftHostOptions
{
    public required NodeId Id { get; init; }

    /// <summary>Members of a brand-new cluster (same list on every founding member); empty to join an existing one.</summary>
    public IReadOnlyList<Member> InitialMembers { get; init; } = [];

    /// <summary>Addresses to reach before the configuration is known (a joiner needs its leader's).</summary>
    public IReadOnlyDictionary<NodeId, string> SeedPeers { get; init; } = new Dictionary<NodeId, string>();

    /// <summary>
    /// The transport's address of a member's <see cref="Member.Address"/> (which may carry more than the transport
    /// needs, e.g. the application's other ports); the address itself when null. <see cref="SeedPeers"/> are
    /// transport addresses already.
    /// </summary>
    public Func<string, string>? TransportAddress { get; init; }

    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(15);

    /// <summary>Minimum election timeout in ticks (10 x 15 ms = 150 ms; the actual timeout is random in [150, 300) ms).</summary>
    public int ElectionTicks { get; init; } = 10;

    public int HeartbeatTicks { get; init; } = 2;

    public double ClockDriftBound { get; init; } = 1.1;

    /// <summary>
    /// Lease-based reads: while this host holds its leader lease (on its monotonic clock, <see cref="LeaseDuration"/>),
    /// its own reads are answered without a heartbeat round. As safe as the lease (it rests on <see cref="ClockDriftBound"/>).
    /// Reads asked by a follower always wait for a round.
    /// </summary>
    public bool LeaseReads { get; init; }

    /// <summary>Take a snapshot and compact the log after this many applied entries.</summary>
    public int SnapshotEvery { get; init; } = 1000;

    /// <summary>
    /// Receives the host's messages with their level: leadership won (information), the host stopped because
    /// storage failed (critical). Called from the host's loop; it must not block.
    /// </summary>
    public Action<RaftLogLevel, string>? Log { get; init; }

    /// <summary>
    /// The real-time lease: (ElectionTicks - 2) ticks divided by the drift bound. Two ticks are given up: one
    /// because a follower's first tick after contact may come at once, one because a tick may wait in the
    /// host's queue while the next is produced.
    /// </summary>
    public TimeSpan LeaseDuration => TickInterval * ((ElectionTicks - 2) / ClockDriftBound);
}

/// <summary>Raised when a request needs the leader; <see cref="LeaderHint"/> is who this node believes leads.</summary>
public sealed class NotLeaderException(NodeId leaderHint, string message) : InvalidOperationException(message)
{
    public NodeId LeaderHint { get; } = leaderHint;
}

/// <summary>Raised when a proposal's log position was taken by another leader's entry.</summary>
public sealed class ProposalLostException(string message) : InvalidOperationException(message);

/// <summary>Raised when the leader refused a proposal before appending it (<see cref="Refusal"/> says why): nothing was written.</summary>
public sealed class ProposalRefusedException(RaftRefusal refusal) : InvalidOperationException($"refused: {refusal}")
{
    public RaftRefusal Refusal { get; } = refusal;
}

/// <summary>
/// A snapshot of what the host knows. <c>PriorLeasesEndedBefore</c>, while leader: how long before its election, on
/// this host's clock, every earlier leader's lease had surely ended (from its voters' silence,
/// <see cref="RaftOptions.PriorLeasesEndedTicksBefore"/>); zero when that proves nothing beyond the election.
/// </summary>
public sealed record RaftStatus(
    NodeId Id,
    RaftRole Role,
    Term Term,
    NodeId Leader,
    LogIndex Commit,
    LogIndex Applied,
    IReadOnlyList<Member> Members,
    long? LeaseValidUntilTimestamp,
    bool HoldsLease,
    TimeSpan PriorLeasesEndedBefore = default);

/// <summary>
/// The membership as this node sees it: the latest configuration in its log (<see cref="ConfigIndex"/>; committed
/// when it is at or below <see cref="Commit"/>), with the ids ever removed, and, on the leader, how far each member's
/// log matches the leader's.
/// </summary>
public sealed record RaftMembership(
    RaftRole Role,
    ClusterConfig Config,
    LogIndex ConfigIndex,
    LogIndex Commit,
    IReadOnlyDictionary<NodeId, LogIndex> Match)
{
    public bool ChangePending => ConfigIndex > Commit;
}

/// <summary>Counters of the host, Prometheus-style.</summary>
public sealed class RaftHostCounters
{
    public long Ticks => TickCounter.Value;

    public long MessagesStepped => Stepped.Value;

    public long Proposals => Proposed.Value;

    public long EntriesApplied => Applied.Value;

    public long TimesBecameLeader => BecameLeader.Value;

    public long SnapshotsTaken => Snapshots.Value;

    public long ReadyRounds => Readies.Value;

    public long InboundMessagesDropped => InboundDropped.Value;

    internal Counter TickCounter { get; } = new();

    internal Counter Stepped { get; } = new();

    internal Counter Proposed { get; } = new();

    internal Counter Applied { get; } = new();

    internal Counter BecameLeader { get; } = new();

    internal Counter Snapshots { get; } = new();

    internal Counter Readies { get; } = new();

    internal Counter InboundDropped { get; } = new();
}
