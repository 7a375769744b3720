using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Node;

/// <summary>How commits are acknowledged.</summary>
public enum ReplicationMode
{
    Unknown = 0,

    /// <summary>A commit is acknowledged once the primary has flushed it.</summary>
    Async = 1,

    /// <summary>A commit is acknowledged once the primary and ⌊n/2⌋ standbys have flushed it (a majority).</summary>
    Quorum = 2,
}

/// <summary>What the data directory holds.</summary>
public enum DataKind
{
    Unknown = 0,

    /// <summary>No database yet.</summary>
    Missing = 1,

    /// <summary>A database that last ran as a primary (no standby.signal).</summary>
    Primary = 2,

    /// <summary>A database set up to run as a standby.</summary>
    Standby = 3,
}

/// <summary>What a member's PostgreSQL is right now, as its manager last saw it (never what the control state wishes).</summary>
public enum InstanceRole
{
    Unknown = 0,

    /// <summary>PostgreSQL runs out of recovery, or may be (started or promoted as primary and not yet seen otherwise): it may accept writes.</summary>
    Primary = 1,

    /// <summary>PostgreSQL runs in recovery.</summary>
    Replica = 2,

    /// <summary>PostgreSQL is not running.</summary>
    Stopped = 3,
}

/// <summary>Whether a replica can follow the primary, as its own manager sees it.</summary>
public enum FollowState
{
    Unknown = 0,

    /// <summary>Not a replica (the primary, or not running).</summary>
    None = 1,

    /// <summary>Streaming from the current primary.</summary>
    Streaming = 2,

    /// <summary>Running in recovery, not streaming (yet): replaying local WAL, connecting, or the primary is gone.</summary>
    Connecting = 3,

    /// <summary>Waiting for the current primary to report its line of history before following it.</summary>
    WaitingForPrimary = 4,

    /// <summary>Its WAL went past the point where the primary's timeline branched off, or lies on another branch: it must be rewound.</summary>
    Diverged = 5,

    /// <summary>Being rewound (pg_rewind) onto the primary's timeline.</summary>
    Rewinding = 6,

    /// <summary>Being copied afresh from the primary (pg_basebackup).</summary>
    Cloning = 7,
}

/// <summary>The state of a replica's WAL receiver (<c>pg_stat_wal_receiver.status</c>), None when there is none.</summary>
public enum WalReceiverStatus
{
    Unknown = 0,
    None = 1,
    Starting = 2,
    Streaming = 3,
    Waiting = 4,
    Restarting = 5,
    Stopping = 6,
    Stopped = 7,
}

/// <summary>One member of the cluster: a voter, or a learner (receives the Raft log, votes not, not yet counted in k).</summary>
public sealed record NodeMember(MemberId Id, string Name, bool IsVoter = true);

/// <summary>The fixed settings of one <see cref="InstanceNode"/>.</summary>
/// <param name="Self">This member.</param>
/// <param name="Members">
/// Every member, this one included: 3 to 5 from the peers setting at start (3 or 5 founders, 4 mid-scale); then, in the node's
/// <see cref="InstanceNode.Config"/>, the committed Raft membership (<see cref="WithMembership"/>).
/// </param>
/// <param name="Mode">Async or quorum.</param>
/// <param name="Lease">The primary lease's rules.</param>
/// <param name="SwitchoverMaxLagBytes">A switchover target further behind is refused.</param>
/// <param name="SwitchoverTimeoutMs">How long the old primary waits for the target to receive its final WAL.</param>
/// <param name="WatchdogEnabled">A watchdog process runs beside the manager.</param>
public sealed record NodeConfig(
    MemberId Self,
    IReadOnlyList<NodeMember> Members,
    ReplicationMode Mode,
    LeaseTimings Lease,
    long SwitchoverMaxLagBytes,
    long SwitchoverTimeoutMs,
    bool WatchdogEnabled)
{
    public string NameOf(MemberId id) => id.IsNone ? "none" : Members.FirstOrDefault(m => m.Id == id)?.Name ?? $"member {id}";

    /// <summary>Standbys that must flush a commit before it is acknowledged in quorum mode: ⌊voters/2⌋.</summary>
    public int SyncStandbys => MembershipPlanner.SyncStandbyCount(Members.Count(m => m.IsVoter));

    /// <summary>
    /// These settings with the committed Raft membership: each member named from its Raft address
    /// (<c>NAME@...</c>) or, for a founding member, from the members known at start. Empty: unchanged.
    /// </summary>
    public NodeConfig WithMembership(IReadOnlyList<Raft.Member> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0)
        {
            return this;
        }

        return this with
        {
            Members = [.. members.Select(m =>
            {
                var id = MemberId.FromNodeId(m.Id);
                var at = m.Address.IndexOf('@', StringComparison.Ordinal);
                var name = at > 0 ? m.Address[..at] : Members.FirstOrDefault(k => k.Id == id)?.Name ?? $"member-{id}";
                return new NodeMember(id, name, m.IsVoter);
            })],
        };
    }

    /// <summary>Problems with these settings, empty when they are consistent.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>(Lease.Problems());
        // 3 or 5 found a cluster (the settings check that); 4 while a member is added or removed.
        if (Members.Count is < 3 or > 5)
        {
            problems.Add($"a cluster has 3 to 5 members, not {Members.Count}");
        }

        if (Members.All(m => m.Id != Self))
        {
            problems.Add($"member {Self} is not among the members");
        }

        if (Mode == ReplicationMode.Unknown)
        {
            problems.Add("the replication mode is unknown");
        }

        return problems;
    }
}

/// <summary>One standby as the primary's <c>pg_stat_replication</c> shows it.</summary>
/// <param name="Name">Its application_name (the member's name).</param>
/// <param name="State">The walsender's state: streaming, catchup, backup, ...</param>
/// <param name="SyncState">quorum, async, ...</param>
/// <param name="Flush">WAL it has flushed.</param>
/// <param name="Replay">WAL it has replayed.</param>
/// <param name="ReplayLagSeconds">replay_lag.</param>
/// <param name="ReplyAgeSeconds"><c>now() - reply_time</c> on the primary: how long ago the standby's last status reply was sent (null: none yet). See <see cref="ReplicationLiveness"/>.</param>
public sealed record StandbyObservation(string Name, string State, string SyncState, Lsn Flush, Lsn Replay, double? ReplayLagSeconds, double? ReplyAgeSeconds = null);

/// <summary>
/// What one state query of a running PostgreSQL showed, plus the timelines its pg_wal folder holds (read by the
/// host from the segment and history file names).
/// </summary>
/// <param name="InRecovery">True on a standby.</param>
/// <param name="Sync"><c>synchronous_standby_names</c> in force (k and names); null when not read or in another form.</param>
/// <param name="DataTimeline">The newest timeline of which pg_wal holds a WAL segment: the timeline its WAL reached (a standby that refuses a newer timeline has that timeline's history file but none of its segments).</param>
/// <param name="WriteLsn">Primary: the WAL insert position.</param>
/// <param name="FlushLsn">Primary: the WAL flushed to disk.</param>
/// <param name="ReceiveLsn">Standby: <c>pg_last_wal_receive_lsn()</c>, null until streaming was first requested in this postmaster's life (until then the startup process is still replaying local WAL).</param>
/// <param name="ReplayLsn">Standby: the last WAL record replayed.</param>
/// <param name="Receiver">Standby: the WAL receiver's state.</param>
/// <param name="ReceiverSource">Standby: the host:port its WAL receiver is connected to, when one runs.</param>
/// <param name="Standbys">Primary: <c>pg_stat_replication</c>.</param>
/// <param name="Histories">Every timeline history file in pg_wal, parsed.</param>
/// <param name="ReceiptAgeSeconds">Standby: <c>now() - pg_stat_wal_receiver.last_msg_receipt_time</c>, how long ago the walreceiver last heard from the primary (null: no walreceiver, or nothing received yet). See <see cref="ReplicationLiveness"/>.</param>
public sealed record PgObservation(
    bool InRecovery,
    TimelineId DataTimeline,
    Lsn WriteLsn,
    Lsn FlushLsn,
    Lsn? ReceiveLsn,
    Lsn ReplayLsn,
    WalReceiverStatus Receiver,
    string? ReceiverSource,
    IReadOnlyList<StandbyObservation> Standbys,
    IReadOnlyDictionary<TimelineId, WalLine> Histories,
    double? ReceiptAgeSeconds = null,
    QuorumSetting? Sync = null)
{
    /// <summary>The line of history the data is on (timeline 1 has no history file).</summary>
    public WalLine Line => Histories.TryGetValue(DataTimeline, out var line) ? line : new WalLine(DataTimeline, []);

    /// <summary>The newest timeline whose history file pg_wal holds (known of, not necessarily reached).</summary>
    public TimelineId NewestKnownTimeline => Histories.Count == 0 ? DataTimeline : new TimelineId(Math.Max(DataTimeline.Value, Histories.Keys.Max(k => k.Value)));
}

/// <summary>The Raft side of this member, as its host last saw it.</summary>
/// <param name="Role">Leader, follower, ...</param>
/// <param name="Term">The current term.</param>
/// <param name="Leader">Who this node believes leads (none when unknown).</param>
/// <param name="HoldsLease">This node leads and holds its Raft leader lease now.</param>
/// <param name="Failed">The Raft host stopped (storage failed): this member takes no part any more.</param>
/// <param name="PriorLeasesEndedMs">While leader: how long before its election (this host's clock, ms) every earlier
/// leader's Raft lease had surely ended, and with it every renewal those leaders could grant (RaftStatus.PriorLeasesEndedBefore).</param>
public sealed record RaftView(Raft.RaftRole Role, Raft.Term Term, MemberId Leader, bool HoldsLease, bool Failed, long PriorLeasesEndedMs = 0)
{
    public static readonly RaftView Unknown = new(Raft.RaftRole.Unknown, Raft.Term.Zero, MemberId.None, false, false);

    public bool IsLeader => Role == Raft.RaftRole.Leader && !Failed;
}

/// <summary>Another member, as its last report (its /status) showed it; parsed once at the edge.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Reachable">Its manager answered the last poll.</param>
/// <param name="Epoch">The epoch its control state is at.</param>
/// <param name="Role">What its PostgreSQL is.</param>
/// <param name="Ready">Ready for its role; a quorum primary whose commits wait for standbys counts (it takes writes, and its replicas must be able to clone from and follow it): <c>/status</c> says ready false, waitingForStandbys true.</param>
/// <param name="Running">Its PostgreSQL runs.</param>
/// <param name="Line">The line of history its WAL is on (primary: its timeline); null when unknown.</param>
/// <param name="FlushLsn">Primary: WAL flushed. Replica: WAL received and flushed (never lower than before on the same data).</param>
/// <param name="ReplayLsn">Replica: WAL replayed.</param>
/// <param name="PositionSettled">Replica: the flushed position is exact (the startup process has finished replaying local WAL since PostgreSQL started).</param>
/// <param name="Follow">Replica: whether it follows the primary.</param>
/// <param name="Streaming">Replica: its WAL receiver streams.</param>
/// <param name="FencedEpoch">The epoch at which it fenced itself as primary (its PostgreSQL verified stopped), zero for none.</param>
/// <param name="StateAt">On the observer's clock, no later than when the PostgreSQL state shown was read.</param>
/// <param name="DetachFrom">On the Raft leader, failing over in quorum mode from a primary that stopped renewing: the epoch whose primary every replica must stop streaming from; zero otherwise.</param>
/// <param name="DetachedFrom">Replica: the epoch whose primary it has stopped streaming from, its WAL receiver seen gone by the state shown (so the position shown is all it can have acknowledged); zero otherwise.</param>
/// <param name="ControlFormat">The highest control format its manager reads (0 for a release before control formats).</param>
/// <param name="AcceptsStandbys">Primary at its epoch, out of recovery under a lease, its line known, with a slot for every other member: replicas may stream from it before it is ready (false from a release that does not say).</param>
public sealed record PeerView(
    MemberId Id,
    bool Reachable,
    Epoch Epoch,
    InstanceRole Role,
    bool Ready,
    bool Running,
    WalLine? Line,
    Lsn FlushLsn,
    Lsn ReplayLsn,
    bool PositionSettled,
    FollowState Follow,
    bool Streaming,
    Epoch FencedEpoch,
    long StateAt,
    Epoch DetachFrom = default,
    Epoch DetachedFrom = default,
    int ControlFormat = 0,
    bool AcceptsStandbys = false)
{
    public static PeerView Unreachable(MemberId id) =>
        new(id, false, Epoch.Zero, InstanceRole.Unknown, false, false, null, Lsn.Zero, Lsn.Zero, false, FollowState.Unknown, false, Epoch.Zero, 0);

    /// <summary>A ready replica streaming from the primary.</summary>
    public bool IsStreamingReplica => Reachable && Ready && Role == InstanceRole.Replica && Streaming;
}

/// <summary>What happened to something the node asked for.</summary>
public enum Outcome
{
    Unknown = 0,
    Done = 1,
    Failed = 2,
}

// ---------------------------------------------------------------- inputs

/// <summary>Something the host tells the node; <see cref="Now"/> is the host's monotonic clock in milliseconds.</summary>
public abstract record NodeInput(long Now);

/// <summary>The first input: what the host found on disk at start.</summary>
/// <param name="Now">The host's clock (ms).</param>
/// <param name="Data">What the data directory holds.</param>
/// <param name="FencedEpoch">The epoch recorded in the fence file (zero when none).</param>
/// <param name="FenceReason">Why, as recorded.</param>
public sealed record Started(long Now, DataKind Data, Epoch FencedEpoch, string? FenceReason) : NodeInput(Now);

/// <summary>Time passed (the host ticks every few tens of milliseconds).</summary>
public sealed record Tick(long Now) : NodeInput(Now);

/// <summary>An operator asked this replica to be rebuilt from the primary (<c>POST /reinit</c>, checked by <see cref="InstanceNode.CheckReinit"/>).</summary>
public sealed record ReinitRequested(long Now) : NodeInput(Now);

/// <summary>A user's forced failover (<c>POST /failover</c>), to the member named <paramref name="To"/> or (null) the best candidate.</summary>
public sealed record FailoverRequested(long Now, string? To) : NodeInput(Now);

/// <summary>The Raft host's view and the control state it has applied (sent whenever either changes).</summary>
public sealed record RaftObserved(long Now, RaftView Raft, ControlState Control) : NodeInput(Now);

/// <summary>
/// A state query of the running PostgreSQL finished: its result, or why it failed. <paramref name="QueryStarted"/>
/// is when the query began (node clock; none: at <paramref name="Now"/>): PostgreSQL read the state shown no earlier.
/// </summary>
public sealed record PostgresObserved(long Now, PgObservation? Observation, string? Error, long? QueryStarted = null) : NodeInput(Now);

/// <summary>The postmaster exited (for whatever reason) with <paramref name="Code"/>.</summary>
public sealed record PostgresExited(long Now, int Code) : NodeInput(Now);

/// <summary>A health probe finished: a query and a flushed write to the data volume, each within a second.</summary>
public sealed record ProbeDone(long Now, bool Healthy, bool? InRecovery, string? Why) : NodeInput(Now);

/// <summary>A PostgreSQL action finished.</summary>
/// <param name="Now">The host's clock (ms).</param>
/// <param name="ActionId">The action's id.</param>
/// <param name="Outcome">Done or failed.</param>
/// <param name="Error">Why it failed.</param>
/// <param name="Data">What the data directory holds afterwards.</param>
/// <param name="FinalLsn">A stop for a switchover: the shutdown checkpoint's position.</param>
public sealed record ActionDone(long Now, long ActionId, Outcome Outcome, string? Error, DataKind Data, Lsn? FinalLsn = null) : NodeInput(Now);

/// <summary>A fence finished: every process in the data directory is gone (Done), or some survived SIGKILL (Failed).</summary>
public sealed record FenceDone(long Now, long ActionId, Outcome Outcome, string? Error, DataKind Data) : NodeInput(Now);

/// <summary>Another member's report (<see cref="PeerView.Unreachable"/> when it did not answer), dated on this host's clock; <c>AskedAt</c>: when it was asked for (default: <c>Now</c>).</summary>
public sealed record PeerObserved(long Now, PeerView Report, long? AskedAt = null) : NodeInput(Now);

/// <summary>The Raft leader's answer to a renewal this node asked for; <paramref name="SentAt"/> is when the request was sent (stamped by the host just before sending).</summary>
public sealed record LeaseAnswered(long Now, long RequestId, Epoch Epoch, long SentAt, bool Granted, string Why) : NodeInput(Now);

/// <summary>A proposal finished: applied to the control state, or refused or lost.</summary>
public sealed record ProposalDone(long Now, long ProposalId, bool Applied, string Why) : NodeInput(Now);

/// <summary>
/// Another member (or this one) asks this node, as Raft leader, to renew its primary lease. The host has already
/// done a linearizable read: <paramref name="ReadState"/> (null, with <paramref name="ReadError"/>, when it failed);
/// <paramref name="HoldsRaftLease"/> is sampled just before this input.
/// </summary>
public sealed record RenewalRequested(long Now, long RequestId, MemberId From, Epoch Epoch, ControlState? ReadState, bool HoldsRaftLease, string? ReadError) : NodeInput(Now);

/// <summary>PostgreSQL logged that this standby cannot follow its upstream's timeline (<see cref="IsRefusal"/>).</summary>
public sealed record TimelineRefused(long Now, string Line) : NodeInput(Now)
{
    /// <summary>
    /// Whether a PostgreSQL log line says the standby's timeline cannot lead to its upstream's: it holds WAL past
    /// the branch point ("new timeline N forked off current database system timeline M before current recovery
    /// point"), or its timeline is not on the upstream's line at all ("new timeline N is not a child of database
    /// system timeline M"; the walsender's "requested timeline M is not in this server's history", also as
    /// "requested starting point X on timeline M ..."). Either way only a rewind (or a clone) brings it back.
    /// </summary>
    public static bool IsRefusal(string line) =>
        line.Contains("forked off current database system timeline", StringComparison.Ordinal)
        || line.Contains("is not a child of database system timeline", StringComparison.Ordinal)
        || (line.Contains("requested ", StringComparison.Ordinal) && line.Contains("is not in this server's history", StringComparison.Ordinal));
}

/// <summary>The manager is about to stop cleanly (SIGTERM): a primary asks for a switchover first (the host waits for <see cref="InstanceNode.StopMayProceed"/> and asks again), a Raft leader hands its leadership on.</summary>
public sealed record StopRequested(long Now) : NodeInput(Now);

// ---------------------------------------------------------------- actions

/// <summary>What the node asks its host to do.</summary>
public abstract record NodeAction;

/// <summary>An action on PostgreSQL or its data directory; at most one runs at a time, and its end comes back as <see cref="ActionDone"/>.</summary>
public abstract record PostgresAction(long Id, string Why) : NodeAction
{
    /// <summary>Runs initdb (data checksums on, so pg_rewind works later).</summary>
    public sealed record InitDb(long Id, string Why) : PostgresAction(Id, Why);

    /// <summary>Copies the primary with pg_basebackup through this member's slot.</summary>
    public sealed record CloneFrom(long Id, MemberId From, string Why) : PostgresAction(Id, Why);

    /// <summary>
    /// Writes the configuration and starts PostgreSQL as primary (no standby.signal). The host must not start it
    /// once its clock reads <paramref name="NotAfter"/> or later (the lease would no longer cover it); the watchdog is
    /// armed before.
    /// </summary>
    public sealed record StartPrimary(long Id, long NotAfter, string Why) : PostgresAction(Id, Why);

    /// <summary>Writes the configuration and starts PostgreSQL as a standby of <paramref name="Upstream"/> (none: a standby that streams from no one yet).</summary>
    public sealed record StartStandby(long Id, MemberId Upstream, string Why) : PostgresAction(Id, Why);

    /// <summary>
    /// Promotes the standby (pg_promote), not once the host's clock reads <paramref name="NotAfter"/>; the watchdog is
    /// armed before. The new timeline's id is <paramref name="Epoch"/>: the host first writes placeholder history
    /// files for the ids between the data's timeline and the epoch, so PostgreSQL (which takes the first id after
    /// the history files it finds) chooses the epoch. Every epoch names one primary and a timeline is created only
    /// by a promotion, so no two members ever create the same timeline id with different histories, which
    /// PostgreSQL, pg_rewind and this manager could not tell apart.
    /// </summary>
    public sealed record Promote(long Id, long NotAfter, Epoch Epoch, string Why) : PostgresAction(Id, Why);

    /// <summary>Stops PostgreSQL with a fast shutdown; for a switchover the host reads the final checkpoint position.</summary>
    public sealed record Stop(long Id, bool ForSwitchover, string Why) : PostgresAction(Id, Why);

    /// <summary>Rewinds the data directory (stopped) onto <paramref name="From"/>'s timeline with pg_rewind, then configures it to follow it.</summary>
    public sealed record Rewind(long Id, MemberId From, string Why) : PostgresAction(Id, Why);

    /// <summary>Moves the data directory aside (a new <c>pgdata.diverged.N</c> or <c>pgdata.reinit.N</c>, never deleted) and clones afresh from <paramref name="From"/>.</summary>
    /// <param name="Id">The action's id.</param>
    /// <param name="From">The primary to clone from.</param>
    /// <param name="Why">Why, for the log.</param>
    /// <param name="Reinit">Asked for by an operator (the old data is kept as <c>pgdata.reinit.N</c>, not <c>pgdata.diverged.N</c>).</param>
    public sealed record Reclone(long Id, MemberId From, string Why, bool Reinit = false) : PostgresAction(Id, Why);

    /// <summary>Rewrites primary_conninfo to follow <paramref name="Upstream"/> and reloads.</summary>
    public sealed record Repoint(long Id, MemberId Upstream, string Why) : PostgresAction(Id, Why);

    /// <summary>On a new primary, once its slots exist: the replication role, the rewind grants, the app role and database, the synchronous standbys of the membership.</summary>
    public sealed record EnsurePrimaryObjects(long Id, string Why) : PostgresAction(Id, Why);

    /// <summary>On the primary: a physical replication slot for every other member, and none left for a removed one.</summary>
    public sealed record EnsureSlots(long Id, string Why) : PostgresAction(Id, Why);
}

/// <summary>
/// SIGKILL to every process in the data directory, at once, whatever else runs; done when none is left (then
/// <see cref="FenceDone"/>). When <paramref name="Record"/> is not zero the host writes the fence file first
/// thing after the kill, so this member never runs as primary again at that epoch.
/// </summary>
public sealed record Fence(long Id, Epoch Record, string Why) : NodeAction;

/// <summary>
/// The PostgreSQL action <paramref name="ActionId"/>, if it still runs, can no longer succeed: the host stops it (its
/// waits end at once) and reports it failed with <paramref name="Why"/> through <see cref="ActionDone"/>. What it
/// started keeps running; an action already done is left alone.
/// </summary>
public sealed record AbandonAction(long ActionId, string Why) : NodeAction;

/// <summary>Arms the watchdog at <paramref name="Deadline"/> (host clock, ms): past it, the watchdog kills PostgreSQL.</summary>
public sealed record ArmWatchdog(long Deadline) : NodeAction;

/// <summary>Disarms the watchdog: PostgreSQL cannot be writable now.</summary>
public sealed record DisarmWatchdog : NodeAction;

/// <summary>Runs a health probe (<see cref="ProbeDone"/> comes back).</summary>
public sealed record Probe : NodeAction;

/// <summary>Asks the Raft leader to renew the primary lease at <paramref name="Epoch"/>; <see cref="LeaseAnswered"/> comes back.</summary>
public sealed record RequestRenewal(long Id, Epoch Epoch) : NodeAction;

/// <summary>Answers a <see cref="RenewalRequested"/>.</summary>
public sealed record AnswerRenewal(long RequestId, bool Granted, Epoch Epoch, string Why) : NodeAction;

/// <summary>
/// Proposes a control command on the Raft leader (forwarded to it when this member does not lead);
/// <see cref="ProposalDone"/> comes back. With <paramref name="OnlyAsLeaderInTerm"/> — a failover this node decided
/// as leader — it is proposed here and only while this member still leads in that term, never forwarded: another
/// leader may have granted the primary renewals this one never saw.
/// </summary>
public sealed record Propose(long Id, ControlCommand Command, string Why, Raft.Term? OnlyAsLeaderInTerm = null) : NodeAction;

/// <summary>
/// Tells the other members that this member fenced itself at <paramref name="Epoch"/>: they read its report at once
/// (the notice itself proves nothing; the report does).
/// </summary>
public sealed record AnnounceFenced(Epoch Epoch) : NodeAction;

/// <summary>
/// The Raft leader asks every replica to stop streaming from the primary of <paramref name="Epoch"/> (its report says
/// so): the others read the reports at once, as for <see cref="AnnounceFenced"/>.
/// </summary>
public sealed record AnnounceDetach(Epoch Epoch) : NodeAction;

/// <summary>Hands Raft leadership to <paramref name="Target"/>.</summary>
public sealed record TransferLeadership(MemberId Target, string Why) : NodeAction;

/// <summary>
/// This member's Raft voter campaigns first when the Raft leader goes silent (the shortest legitimate election
/// timeout), or stops doing so; sent on change only.
/// </summary>
public sealed record CampaignFirst(bool First) : NodeAction;

/// <summary>A line for the manager's log.</summary>
public sealed record Note(LogLevel Level, string Message) : NodeAction;
