using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Node;

/// <summary>A planned switchover in flight on the old primary.</summary>
/// <param name="Target">Who takes over.</param>
/// <param name="StartedAt">When the old primary began to stop (node clock).</param>
/// <param name="FinalLsn">The shutdown checkpoint's position, once PostgreSQL has stopped; null while it stops.</param>
public sealed record SwitchoverProgress(MemberId Target, long StartedAt, Lsn? FinalLsn);

/// <summary>Whether this replica's WAL can follow the primary's line of history.</summary>
public enum FollowCheck
{
    Unknown = 0,

    /// <summary>Its WAL is a prefix of the primary's line: it may stream from it.</summary>
    Ok = 1,

    /// <summary>It must be rewound first (past the branch point, or on another branch).</summary>
    Diverged = 2,

    /// <summary>
    /// It lies on another branch that has the same timeline id as the primary's: pg_rewind compares timeline ids,
    /// decides "no rewind required", and cannot help. It must be copied afresh.
    /// </summary>
    NeedsClone = 3,
}

/// <summary>Kinds of PostgreSQL step, mapped one to one onto <see cref="PostgresAction"/>s.</summary>
public enum StepKind
{
    Unknown = 0,
    InitDb = 1,
    Clone = 2,
    StartPrimary = 3,
    StartStandby = 4,
    Promote = 5,
    Stop = 6,
    StopForSwitchover = 7,
    Rewind = 8,
    Reclone = 9,
    Repoint = 10,
    EnsurePrimaryObjects = 11,
    EnsureSlots = 12,
}

/// <summary>Everything <see cref="PostgresPlanner"/> looks at, gathered by the node.</summary>
public sealed record PlanInput
{
    public required NodeConfig Config { get; init; }

    public required ControlState Control { get; init; }

    public bool IsRaftLeader { get; init; }

    /// <summary>On the first Raft leader: the first primary may be proposed now (<see cref="FormatPlanner.BootstrapMayProceed"/>).</summary>
    public bool BootstrapMayProceed { get; init; } = true;

    public DataKind Data { get; init; }

    /// <summary>A postmaster runs (or is being started).</summary>
    public bool Running { get; init; }

    /// <summary>The last state query of this PostgreSQL's life; null until one answered.</summary>
    public PgObservation? Pg { get; init; }

    /// <summary>PostgreSQL may accept writes: started or promoted as primary, not yet verified stopped.</summary>
    public bool MayWrite { get; init; }

    /// <summary>Whom primary_conninfo names (none: no one).</summary>
    public MemberId Upstream { get; init; }

    /// <summary>Primary: a replication slot exists for every other member of the membership (replicas may stream from it).</summary>
    public bool SlotsReady { get; init; }

    /// <summary>
    /// Replica: the slots it keeps for the other members (so that a promotion finds them made) are missing for the
    /// membership, or reserve WAL from a replay position at least <see cref="PostgresPlanner.StandbySlotAdvanceBytes"/> back.
    /// </summary>
    public bool StandbySlotsDue { get; init; }

    /// <summary>Primary: its slots, roles, grants and synchronous standbys are in place for the membership (it may call itself ready).</summary>
    public bool PrimaryObjectsReady { get; init; }

    public bool RewindFailed { get; init; }

    public SwitchoverProgress? Switchover { get; init; }

    public required IReadOnlyDictionary<MemberId, PeerView> Peers { get; init; }

    public long Now { get; init; }

    /// <summary>Until when (node clock) the primary lease held at the current epoch lets PostgreSQL write; null when none is held.</summary>
    public long? LeaseUntil { get; init; }

    public Epoch FencedEpoch { get; init; }

    public string? FenceReason { get; init; }

    /// <summary>How much longer a just-started manager waits before it takes any role.</summary>
    public long StartupWait { get; init; }

    /// <summary>Whether this replica's WAL can follow the primary's line.</summary>
    public FollowCheck Follow { get; init; }

    /// <summary>Why it cannot (for the messages).</summary>
    public string? FollowWhy { get; init; }

    /// <summary>The replica's own flushed position (for the switchover lag check on the primary: its flush).</summary>
    public Lsn Flushed { get; init; }

    /// <summary>This primary's line of history (for checking a switchover target).</summary>
    public WalLine? Line { get; init; }

    /// <summary>
    /// The data's WAL ends at this shutdown checkpoint: this manager stopped it cleanly for a switchover (null when not
    /// known so: a crash, a fence, a manager restarted since).
    /// </summary>
    public Lsn? StoppedCleanlyAt { get; init; }

    /// <summary>
    /// Quorum mode: <c>synchronous_standby_names</c> in force is the membership's (<see cref="QuorumProofs.InForce"/>),
    /// by a state query begun after this manager last wrote the configuration; null when none has answered since.
    /// </summary>
    public bool? QuorumConfigInForce { get; init; }

    /// <summary>
    /// Quorum mode, as the writing primary: the command recording that k standbys hold every commit it acknowledged,
    /// once proven (<see cref="QuorumProofs"/>); null otherwise.
    /// </summary>
    public ControlCommand? QuorumProven { get; init; }

    /// <summary>An operator asked for this replica to be cloned afresh from the primary (reinit).</summary>
    public bool ReinitRequested { get; init; }

    /// <summary>
    /// The pending switchover's target has been read (its report, or that it did not answer) since this node saw the
    /// request: the check before stopping is not made on a report up to a poll interval old.
    /// </summary>
    public bool SwitchoverTargetHeard { get; init; }

    /// <summary>The Raft leader fails over from the current epoch and asks the replicas to stop streaming from its primary.</summary>
    public bool Detach { get; init; }

    /// <summary>
    /// Replica: it recorded that it stopped streaming from the current epoch's primary (the emptied primary_conninfo
    /// written for this epoch), which the leader's count of its position rests on.
    /// </summary>
    public bool DetachRecorded { get; init; }

    /// <summary>Replica: its position is exact (the startup process has asked for streaming since PostgreSQL started).</summary>
    public bool PositionSettled { get; init; }
}

/// <summary>What the planner says to do next.</summary>
public abstract record PlanStep(string Why)
{
    /// <summary>Nothing to do now; <see cref="PlanStep.Why"/> says what the instance is waiting for.</summary>
    public sealed record Wait(string Why) : PlanStep(Why);

    /// <summary>A PostgreSQL action; <paramref name="Member"/> is the source or upstream where the kind needs one.</summary>
    public sealed record Act(StepKind Kind, MemberId Member, string Why) : PlanStep(Why);

    /// <summary>Kill PostgreSQL at once.</summary>
    public sealed record Fence(string Why) : PlanStep(Why);

    /// <summary>Propose a control command.</summary>
    public sealed record Propose(ControlCommand Command, string Why) : PlanStep(Why);
}

/// <summary>
/// Decides the instance's next PostgreSQL step. Pure and level-based: it looks only at its input, so a restarted
/// manager picks up wherever things are. The lease, the fence and the watchdog are the node's (it only asks here
/// whether a lease is held before it starts or promotes).
/// </summary>
public static class PostgresPlanner
{
    /// <summary>
    /// A replica advances the slots it keeps for the other members to its replay position once it has replayed this
    /// much past where they reserve from (one WAL segment): a slot nobody streams from keeps every WAL file from its
    /// position on, so a replica holds at most about this much WAL more than it would without them.
    /// </summary>
    public const ulong StandbySlotAdvanceBytes = 16 * 1024 * 1024;

    public static PlanStep Next(PlanInput o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var control = o.Control;
        if (o.StartupWait > 0)
        {
            // IMPORTANT: a manager that (re)starts waits a full primary lease before it takes any role, so any lease
            // it or its watchdog held in an earlier life has run out everywhere.
            return new PlanStep.Wait($"just started: waiting one primary lease ({o.Config.Lease.Lease.TotalSeconds:0.0#} s) before taking a role");
        }

        if (control.Epoch == Epoch.Zero || control.Primary.IsNone)
        {
            // IMPORTANT: the first primary is chosen through Raft (compare-and-set on epoch 0), so exactly one member
            // can ever run initdb for the cluster.
            return o.IsRaftLeader && !o.BootstrapMayProceed
                ? new PlanStep.Wait($"bootstrap: waiting for every member's report, to write the first primary in the newest control format (at most {FormatPlanner.BootstrapWaitMs / 1000} s)")
                : o.IsRaftLeader
                ? new PlanStep.Propose(ControlCommand.SetPrimary(Epoch.Zero, o.Config.Self, PrimaryChangeReason.Bootstrap), "bootstrap: the first Raft leader proposes itself as the first primary")
                : new PlanStep.Wait("waiting for the Raft quorum to choose the first primary");
        }

        return control.Primary == o.Config.Self ? AsPrimary(o) : AsReplica(o, control.Primary);
    }

    /// <summary>A lease with some time left: starting or promoting on one about to run out only gets fenced.</summary>
    private static bool LeaseUsable(PlanInput o) =>
        o.LeaseUntil is { } until && o.Now + (long)o.Config.Lease.RetryInterval.TotalMilliseconds < until;

    private static PlanStep AsPrimary(PlanInput o)
    {
        var epoch = o.Control.Epoch;
        if (o.Data == DataKind.Missing)
        {
            return epoch == new Epoch(1)
                ? new PlanStep.Act(StepKind.InitDb, MemberId.None, "bootstrap: this instance is the first primary (epoch 1)")
                : new PlanStep.Wait($"the control state names this instance primary at epoch {epoch} but its data directory is empty; refusing to create a new database in an existing cluster");
        }

        if (o.Switchover is { } switchover)
        {
            return SwitchoverInFlight(o, switchover);
        }

        if (o.FencedEpoch == epoch)
        {
            // IMPORTANT: a primary that fenced itself never writes again at that epoch; only a newer epoch (naming
            // it or another) lets anything run as primary.
            return o.Running
                ? new PlanStep.Fence($"fenced at epoch {epoch} ({o.FenceReason}) but postgres runs; stopping it")
                : new PlanStep.Wait($"fenced at epoch {epoch} ({o.FenceReason}); waiting for the Raft leader to choose a primary");
        }

        if (!o.Running && o.Data == DataKind.Standby)
        {
            // A standby's data started without standby.signal would only run crash recovery and keep its timeline,
            // which the primary it followed wrote: two members would then write different WAL on one timeline id.
            // It starts in recovery, following no one, and is promoted to a timeline of its own.
            return new PlanStep.Act(StepKind.StartStandby, MemberId.None, $"primary at epoch {epoch}: starting the standby's data in recovery before promoting it");
        }

        if (o.Running && o.Pg is { InRecovery: true } && o.Config.Mode == ReplicationMode.Quorum)
        {
            // IMPORTANT: a standby's configuration names the k of the membership it last wrote it for; promoted with
            // a smaller k than the membership's, its first commits would be acknowledged on fewer standbys than the
            // proven k a failover counts with (ControlState.QuorumK carries over to the new primary).
            if (o.QuorumConfigInForce is not { } inForce)
            {
                return new PlanStep.Wait($"primary at epoch {epoch}: reading the synchronous standby setting in force before promoting");
            }

            if (!inForce)
            {
                return new PlanStep.Act(StepKind.Repoint, o.Upstream, $"primary at epoch {epoch}: the synchronous standbys in force are not the membership's (ANY {QuorumProofs.Wanted(o.Config)} of every other member); rewriting the configuration before promoting");
            }
        }

        var inRecovery = o.Pg is { InRecovery: true };
        if ((!o.Running || inRecovery) && !LeaseUsable(o))
        {
            // IMPORTANT: PostgreSQL becomes writable (start as primary, promote) only under a lease granted by the
            // Raft leader for this epoch; the node arms the watchdog at that lease's deadline first.
            return new PlanStep.Wait($"primary at epoch {epoch}: waiting for a primary lease from the Raft leader before {(o.Running ? "promoting" : "starting postgres")}");
        }

        if (!o.Running)
        {
            return new PlanStep.Act(StepKind.StartPrimary, MemberId.None, $"primary at epoch {epoch}: postgres is not running");
        }

        if (o.Pg is null)
        {
            return new PlanStep.Wait("postgres is starting");
        }

        if (o.Pg.InRecovery)
        {
            return new PlanStep.Act(StepKind.Promote, MemberId.None, $"the control state names this instance primary at epoch {epoch}");
        }

        if (!o.SlotsReady)
        {
            // First on their own: the replicas repoint at this primary as soon as its report shows the slots, while
            // the roles and grants below are still being checked.
            return new PlanStep.Act(StepKind.EnsureSlots, MemberId.None, "primary: a replication slot for every other member");
        }

        if (!o.PrimaryObjectsReady)
        {
            return new PlanStep.Act(StepKind.EnsurePrimaryObjects, MemberId.None, "primary: the replication role, rewind grants, synchronous standbys");
        }

        if (o.QuorumProven is { } proven && proven.ExpectedEpoch == epoch)
        {
            return new PlanStep.Propose(proven, $"quorum mode: {proven.K} standbys hold every commit acknowledged at epoch {epoch}; a failover may count with k = {proven.K}");
        }

        if (!o.Control.PendingSwitchover.IsNone && o.Control.PendingSwitchover != o.Config.Self)
        {
            return StartSwitchover(o, o.Control.PendingSwitchover);
        }

        return new PlanStep.Wait($"primary at epoch {epoch}");
    }

    /// <summary>Why <paramref name="target"/> cannot take over now, or null when it can (checked on request and again before stopping).</summary>
    public static string? SwitchoverRefusal(NodeConfig config, PeerView? target, Lsn primaryFlushed, WalLine? primaryLine, long maxLagBytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (target is null || !target.IsStreamingReplica)
        {
            return $"{(target is null ? "the target" : config.NameOf(target.Id))} is not a ready replica streaming from the primary";
        }

        if (primaryLine is not null && (target.Line is null || primaryLine.Relate(target.Line, target.FlushLsn, target.ReplayLsn).Relation != LineRelation.OnLine))
        {
            return $"{config.NameOf(target.Id)} is not on the primary's line of history ({target.Line?.ToString() ?? "unknown"} against {primaryLine})";
        }

        var lag = primaryFlushed.BytesAfter(target.FlushLsn);
        return lag > maxLagBytes ? $"{config.NameOf(target.Id)} is {lag} bytes behind the primary (limit {maxLagBytes})" : null;
    }

    private static PlanStep StartSwitchover(PlanInput o, MemberId target)
    {
        if (o.Config.Members.All(m => m.Id != target))
        {
            // Removed from the membership after the request was checked: no report of it will ever come.
            return new PlanStep.Propose(ControlCommand.ClearSwitchover(o.Control.Epoch), $"switchover refused: member {target} is no longer in the membership");
        }

        if (!o.SwitchoverTargetHeard)
        {
            // IMPORTANT: a target stopped a moment ago still looks ready in a report read before; stopping for it would
            // cost the writes an outage and the cluster an epoch.
            return new PlanStep.Wait($"switchover to {o.Config.NameOf(target)}: reading its report before stopping");
        }

        o.Peers.TryGetValue(target, out var peer);
        var refusal = SwitchoverRefusal(o.Config, peer, o.Pg!.FlushLsn, o.Line, o.Config.SwitchoverMaxLagBytes);
        return refusal is not null
            ? new PlanStep.Propose(ControlCommand.ClearSwitchover(o.Control.Epoch), $"switchover refused: {refusal}")
            : new PlanStep.Act(StepKind.StopForSwitchover, target, $"switchover to {o.Config.NameOf(target)}: stopping cleanly so every WAL record reaches it");
    }

    private static PlanStep SwitchoverInFlight(PlanInput o, SwitchoverProgress switchover)
    {
        var epoch = o.Control.Epoch;
        var target = o.Config.NameOf(switchover.Target);
        if (switchover.FinalLsn is not { } final)
        {
            return new PlanStep.Wait($"switchover to {target}: postgres is stopping");
        }

        if (o.Running)
        {
            // Only a restart after an aborted switchover starts PostgreSQL again, and that happens at a new epoch.
            return new PlanStep.Wait($"switchover to {target}: postgres runs again; waiting for the epoch to move");
        }

        if (o.Peers.TryGetValue(switchover.Target, out var peer) && peer.Reachable && peer.FlushLsn > final)
        {
            // IMPORTANT: this instance's PostgreSQL stopped cleanly before the epoch moves, and the target promotes
            // only after the new epoch is committed, so the two are never writable together.
            return new PlanStep.Propose(
                ControlCommand.SetPrimary(epoch, switchover.Target, PrimaryChangeReason.Switchover),
                $"switchover: {target} has received the final WAL record at {final}");
        }

        if (o.Now - switchover.StartedAt > o.Config.SwitchoverTimeoutMs)
        {
            // IMPORTANT: the abort is a compare-and-set on the same epoch as the hand-over, naming this instance:
            // exactly one of the two (or a failover) applies, and a delayed hand-over can never apply after it.
            return new PlanStep.Propose(
                ControlCommand.SetPrimary(epoch, o.Config.Self, PrimaryChangeReason.SwitchoverAborted),
                $"switchover aborted: {target} did not receive the final WAL within {o.Config.SwitchoverTimeoutMs / 1000} s; resuming as primary at a new epoch");
        }

        return new PlanStep.Wait($"switchover: waiting for {target} to receive WAL up to {final}");
    }

    private static PlanStep AsReplica(PlanInput o, MemberId primary)
    {
        var epoch = o.Control.Epoch;
        var name = o.Config.NameOf(primary);
        o.Peers.TryGetValue(primary, out var upstream);
        var upstreamPrimary = upstream is { Reachable: true, Role: InstanceRole.Primary } && upstream.Epoch == epoch;
        var upstreamReady = upstreamPrimary && upstream!.Ready;

        // Enough to stream from (a slot for this member exists; its roles and grants may still be checked): a running
        // replica repoints then. Cloning and rewinding wait for ready, their roles and grants in place.
        var upstreamStreamable = upstreamPrimary && (upstream!.Ready || upstream.AcceptsStandbys);
        if (o.Running && (o.MayWrite || o.Pg is { InRecovery: false }))
        {
            // IMPORTANT: a primary that sees a committed epoch naming another instance is killed at once; it never
            // keeps taking writes beside the new primary.
            return new PlanStep.Fence($"demoted: epoch {epoch} names {name} primary");
        }

        if (o.ReinitRequested && o.Data != DataKind.Missing)
        {
            if (o.Running)
            {
                return new PlanStep.Act(StepKind.Stop, MemberId.None, $"reinit requested: stopping to clone afresh from {name}");
            }

            return upstreamReady
                ? new PlanStep.Act(StepKind.Reclone, primary, $"reinit requested: cloning afresh from {name} (the old data kept aside)")
                : new PlanStep.Wait($"reinit requested: waiting for primary {name} to be ready to clone from");
        }

        if (o.Data == DataKind.Missing)
        {
            return upstreamReady
                ? new PlanStep.Act(StepKind.Clone, primary, $"new replica: cloning from {name}")
                : new PlanStep.Wait($"waiting for primary {name} to be ready to clone from");
        }

        // A former primary's data may hold WAL past where the new primary's line leaves it (written after the last
        // record a standby received), so it is rewound before it follows; unless it was stopped cleanly for a
        // switchover: its WAL ends at the shutdown checkpoint, which the target received before the epoch moved.
        // It then starts as a replica at once (seen: a switchover target frozen right after the hand-over left no
        // member that could prove it held every commit, while the old primary, stopped and waiting to rewind onto the
        // frozen target, held them all). Should another member's line leave it after all, the follow check says so
        // (or PostgreSQL refuses the timeline) and it is rewound then.
        var formerPrimaryUnknownEnd = o.Data == DataKind.Primary && !o.Running && o.StoppedCleanlyAt is null;
        var needsRewind = formerPrimaryUnknownEnd || o.Follow is FollowCheck.Diverged or FollowCheck.NeedsClone;
        if (needsRewind)
        {
            var why = o.Data == DataKind.Primary ? "former primary" : $"diverged from {name}'s line ({o.FollowWhy})";
            if (o.Running)
            {
                return new PlanStep.Act(StepKind.Stop, MemberId.None, $"{why}: stopping to rewind");
            }

            if (!upstreamReady)
            {
                return new PlanStep.Wait($"{why}: waiting for {name} to be ready before rewinding");
            }

            return o.RewindFailed || o.Follow == FollowCheck.NeedsClone
                ? new PlanStep.Act(StepKind.Reclone, primary, $"{why}: pg_rewind could not bring it onto {name}'s timeline; cloning afresh")
                : new PlanStep.Act(StepKind.Rewind, primary, $"{why}: rewinding onto {name}'s timeline");
        }

        if (!o.Running)
        {
            // Pointed at the primary at once: a rewound data directory becomes consistent (and answers queries) only
            // once it has replayed WAL it may still have to stream. Following a line it cannot follow is refused by
            // PostgreSQL itself (timeline ids are never reused, see PostgresAction.Promote), and the node then rewinds.
            return new PlanStep.Act(StepKind.StartStandby, primary, o.Data == DataKind.Primary && o.StoppedCleanlyAt is { } end
                ? $"former primary, stopped cleanly at {end}: starting as a replica of {name}"
                : $"replica of {name}: postgres is not running");
        }

        if (o.Pg is null)
        {
            return new PlanStep.Wait("postgres is starting");
        }

        if (o.Detach)
        {
            // IMPORTANT (quorum mode): the leader counts this replica's position only once it has stopped streaming
            // from the old primary, which then cannot have anything more acknowledged by it. It stops only once its
            // position is exact: without primary_conninfo the startup process never asks for streaming, the only sign
            // that it has replayed all local WAL (a replica started meanwhile follows the primary until then).
            if (o.Upstream.IsNone && !o.DetachRecorded)
            {
                // Not streaming, but not recorded for this epoch (seen: the emptying finished while the ask was out of
                // sight, or it was made for an earlier epoch): the leader would never count this position, and waited
                // for it for ever. Written again for this epoch, which records it.
                return new PlanStep.Act(StepKind.Repoint, MemberId.None, $"the Raft leader fails over from epoch {epoch}: not streaming from {name}; recording it for this epoch");
            }

            if (o.Upstream.IsNone)
            {
                // PostgreSQL's startup process stops the WAL receiver on the reload, but only while it runs (seen: a
                // replica whose startup process was stopped went on streaming from, and acknowledging for, a frozen
                // primary for 17 s while its status said it had stopped). Until the receiver is gone, say so.
                return new PlanStep.Wait(o.Pg.Receiver is WalReceiverStatus.None or WalReceiverStatus.Stopped
                    ? $"stopped streaming from {name}: the Raft leader fails over from epoch {epoch}"
                    : $"the Raft leader fails over from epoch {epoch}: primary_conninfo emptied, but the WAL receiver still runs ({o.Pg.Receiver.ToString().ToLowerInvariant()}): still streaming from {name} until the startup process applies the reload");
            }

            return o.PositionSettled
                ? new PlanStep.Act(StepKind.Repoint, MemberId.None, $"the Raft leader fails over from epoch {epoch}: stopping streaming from {name}")
                : new PlanStep.Wait($"the Raft leader fails over from epoch {epoch}: replaying local WAL before stopping streaming from {name}");
        }

        if (o.Upstream != primary)
        {
            return upstreamStreamable
                ? new PlanStep.Act(StepKind.Repoint, primary, $"epoch {epoch}: following the primary {name}")
                : new PlanStep.Wait($"epoch {epoch}: waiting for the primary {name} to accept standbys");
        }

        if (o.StandbySlotsDue && o.Pg.InRecovery)
        {
            // Last, once it follows the primary: on a promotion the replicas repoint only once the new primary's slots
            // exist, and made then (fsynced beside the end-of-recovery checkpoint) they took 0.1-0.7 s. Kept here, on
            // the replica, they survive the promotion and reserve WAL from its replay position.
            return new PlanStep.Act(StepKind.EnsureSlots, MemberId.None, "replica: keeping a replication slot for every other member, for a promotion");
        }

        return new PlanStep.Wait(o.Pg.Receiver == WalReceiverStatus.Streaming ? $"replica, streaming from {name}" : $"replica of {name}, not streaming yet");
    }
}
