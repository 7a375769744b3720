using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Tests.Node;

/// <summary>Small builders shared by the node's tests.</summary>
internal static class NodeFixtures
{
    public static readonly LeaseTimings Lease = LeaseTimings.Default;

    public static MemberId Id(int id) => new((ulong)id);

    public static NodeConfig Config(int self = 1, int members = 3, ReplicationMode mode = ReplicationMode.Quorum, LeaseTimings? lease = null) => new(
        Id(self),
        [.. Enumerable.Range(1, members).Select(i => new NodeMember(Id(i), $"mc-{i}"))],
        mode,
        lease ?? Lease,
        1000,
        30_000,
        WatchdogEnabled: true);

    /// <summary>A control state of the fixtures' 3 members: k = 1 proven (as the first primary has it).</summary>
    public static ControlState State(ulong epoch, int primary, int pending = 0) =>
        ControlState.Initial with { Epoch = new Epoch(epoch), Primary = Id(primary), PendingSwitchover = Id(pending), QuorumK = 1 };

    public static WalLine Line(uint timeline, params (uint Timeline, ulong End)[] ancestors) =>
        new(new TimelineId(timeline), [.. ancestors.Select(a => new TimelineSwitch(new TimelineId(a.Timeline), new Lsn(a.End)))]);

    public static readonly WalLine Tl1 = WalLine.Initial;

    /// <summary>synchronous_standby_names in force in the fixtures' PostgreSQL: the 3 members' (the membership's k is 1).</summary>
    public static readonly QuorumSetting SyncInForce = new(1, ["mc-1", "mc-2", "mc-3"]);

    public static PgObservation Primary(ulong flush = 5000, WalLine? line = null, params StandbyObservation[] standbys) =>
        new(false, (line ?? Tl1).Timeline, new Lsn(flush), new Lsn(flush), null, Lsn.Zero, WalReceiverStatus.None, null, standbys, Histories(line), Sync: SyncInForce);

    public static PgObservation Replica(ulong replay = 4000, ulong? receive = 4000, bool streaming = true, WalLine? line = null, double? receiptAge = 0.5) =>
        new(true, (line ?? Tl1).Timeline, Lsn.Zero, Lsn.Zero, receive is { } r ? new Lsn(r) : null, new Lsn(replay),
            streaming ? WalReceiverStatus.Streaming : WalReceiverStatus.Waiting, streaming ? "127.0.0.1:5432" : null, [], Histories(line), streaming ? receiptAge : null, SyncInForce);

    private static Dictionary<TimelineId, WalLine> Histories(WalLine? line) =>
        line is null || line.Ancestors.Count == 0 ? [] : new Dictionary<TimelineId, WalLine> { [line.Timeline] = line };

    public static StandbyObservation Standby(string name, ulong flush = 5000, double? replyAge = 0.2) => new(name, "streaming", "quorum", new Lsn(flush), new Lsn(flush), 0, replyAge);

    /// <summary>A member's report as another node reads it.</summary>
    public static PeerView Peer(
        int id,
        InstanceRole role,
        ulong epoch = 1,
        bool ready = true,
        bool streaming = false,
        ulong flush = 5000,
        ulong? replay = null,
        WalLine? line = null,
        bool settled = true,
        bool reachable = true,
        ulong fenced = 0,
        long stateAt = 100_000,
        bool running = true) =>
        new(Id(id), reachable, new Epoch(epoch), role, ready, running, line ?? Tl1, new Lsn(flush), new Lsn(replay ?? flush), settled,
            role == InstanceRole.Replica ? (streaming ? FollowState.Streaming : FollowState.Connecting) : FollowState.None,
            streaming, new Epoch(fenced), stateAt);
}
