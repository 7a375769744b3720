using MemoryCluster.Instance.Control;

namespace MemoryCluster.Instance.Manager;

/// <summary>What the data directory holds.</summary>
internal enum DataKind
{
    Unknown = 0,

    /// <summary>No database yet.</summary>
    Missing = 1,

    /// <summary>A database that last ran as a primary (no standby.signal).</summary>
    Primary = 2,

    /// <summary>A database set up to run as a standby.</summary>
    Standby = 3,
}

/// <summary>Another member (or this one) as its manager's /status last showed it.</summary>
/// <param name="Id">Its Raft id.</param>
/// <param name="Name">Its instance name.</param>
/// <param name="Reachable">Its manager answered the last poll.</param>
/// <param name="Role">primary, replica or unknown.</param>
/// <param name="Ready">Ready for its role.</param>
/// <param name="Streaming">A replica streaming from its upstream.</param>
/// <param name="ReceiveLsn">Replica: WAL received and flushed. Primary: WAL flushed.</param>
/// <param name="WriteLsn">Primary: current WAL position. Replica: replayed position.</param>
/// <param name="Timeline">Its Postgres timeline.</param>
/// <param name="PostgresRunning">Its postmaster runs.</param>
/// <param name="FencedEpoch">The epoch at which it fenced itself as primary (its Postgres stopped, verified), 0 for none.</param>
/// <param name="StateAtMs">On the observer's monotonic clock, a time no later than when the Postgres state shown was read.</param>
internal sealed record PeerView(
    ulong Id,
    string Name,
    bool Reachable,
    string Role,
    bool Ready,
    bool Streaming,
    ulong ReceiveLsn,
    ulong WriteLsn,
    long Timeline,
    bool PostgresRunning = false,
    ulong FencedEpoch = 0,
    long StateAtMs = 0);

/// <summary>A planned switchover in flight on the old primary: its Postgres stopped cleanly at <paramref name="FinalLsn"/>.</summary>
internal sealed record SwitchoverProgress(ulong Target, ulong FinalLsn, long StartedAtMs);

/// <summary>Everything the planner looks at, gathered by the manager in one round.</summary>
internal sealed record Observation(
    ulong Self,
    ControlState Control,
    bool IsRaftLeader,
    DataKind Data,
    bool Running,
    Postgres.PgState? Pg,
    ulong ConfiguredUpstream,
    bool PrimaryObjectsReady,
    bool RewindFailed,
    SwitchoverProgress? Switchover,
    IReadOnlyDictionary<ulong, PeerView> Peers,
    long NowMs,
    long SwitchoverMaxLagBytes,
    long SwitchoverTimeoutMs)
{
    /// <summary>This manager holds a primary lease, granted by the Raft leader, for the current epoch.</summary>
    public bool HoldsPrimaryLease { get; init; }

    /// <summary>The epoch at which this instance fenced itself as primary (0: never); it never runs as primary again at that epoch.</summary>
    public ulong FencedEpoch { get; init; }

    public string? FenceReason { get; init; }

    /// <summary>How much longer a manager that has just started waits before it takes any role.</summary>
    public long StartupWaitMs { get; init; }
}

/// <summary>The one next step the manager takes.</summary>
internal abstract record InstanceAction(string Why)
{
    /// <summary>Nothing to do now; <see cref="InstanceAction.Why"/> says what the instance is waiting for.</summary>
    public sealed record Wait(string Why) : InstanceAction(Why);

    public sealed record Propose(ControlCommand Command, string Why) : InstanceAction(Why);

    public sealed record InitDb(string Why) : InstanceAction(Why);

    public sealed record CloneFrom(ulong From, string Why) : InstanceAction(Why);

    /// <summary>Writes the configuration for the role and starts Postgres; <paramref name="Upstream"/> 0 means primary.</summary>
    public sealed record Start(ulong Upstream, string Why) : InstanceAction(Why);

    public sealed record Repoint(ulong Upstream, string Why) : InstanceAction(Why);

    public sealed record Promote(string Why) : InstanceAction(Why);

    public sealed record EnsurePrimaryObjects(string Why) : InstanceAction(Why);

    public sealed record Stop(bool ForSwitchover, string Why) : InstanceAction(Why);

    public sealed record Rewind(ulong From, string Why) : InstanceAction(Why);

    public sealed record Reclone(ulong From, string Why) : InstanceAction(Why);

    /// <summary>Kills every process of this instance's Postgres at once (SIGKILL), and records the fence.</summary>
    public sealed record Fence(string Why) : InstanceAction(Why);

    /// <summary>Gives up a switchover that could not complete: clears it and resumes as primary.</summary>
    public sealed record AbortSwitchover(string Why) : InstanceAction(Why);
}

/// <summary>
/// Decides the instance's next step from what it observes. Pure and level-based: it looks only at the
/// observation, so running it again after a crash of the manager picks up where things are.
/// </summary>
internal static class InstancePlanner
{
    public static InstanceAction Next(Observation o)
    {
        var control = o.Control;
        if (o.StartupWaitMs > 0)
        {
            // IMPORTANT: a manager that (re)starts waits a full primary lease before it takes any role, so
            // any lease it or its watchdog held in an earlier life has run out everywhere.
            return new InstanceAction.Wait($"just started: waiting {o.StartupWaitMs} ms more (one primary lease) before taking a role");
        }

        if (control.Epoch == Epoch.Zero || control.Primary.IsNone)
        {
            // IMPORTANT: the first primary is chosen through Raft (compare-and-set on epoch 0), so exactly one
            // member can ever run initdb for the cluster.
            return o.IsRaftLeader
                ? new InstanceAction.Propose(ControlCommand.SetPrimary(Epoch.Zero, new MemberId(o.Self)), "bootstrap: the first Raft leader proposes itself as the first primary")
                : new InstanceAction.Wait("waiting for the Raft quorum to choose the first primary");
        }

        return control.Primary.Value == o.Self ? AsPrimary(o) : AsReplica(o, control.Primary.Value);
    }

    private static InstanceAction AsPrimary(Observation o)
    {
        var control = o.Control;
        if (o.Data == DataKind.Missing)
        {
            return control.Epoch == new Epoch(1)
                ? new InstanceAction.InitDb("bootstrap: this instance is the first primary (epoch 1)")
                : new InstanceAction.Wait($"the control state names this instance primary at epoch {control.Epoch} but its data directory is empty; refusing to create a new database in an existing cluster");
        }

        if (o.Switchover is { } switchover)
        {
            return SwitchoverInFlight(o, switchover);
        }

        if (o.FencedEpoch == control.Epoch.Value)
        {
            // IMPORTANT: a primary that fenced itself never writes again at that epoch; only a newer epoch
            // (naming it or another) lets anything run as primary.
            return o.Running
                ? new InstanceAction.Fence($"fenced at epoch {control.Epoch} ({o.FenceReason}) but postgres runs; stopping it")
                : new InstanceAction.Wait($"fenced at epoch {control.Epoch} ({o.FenceReason}); waiting for the Raft leader to choose a primary");
        }

        if (!o.HoldsPrimaryLease && (!o.Running || o.Pg is { InRecovery: true }))
        {
            return new InstanceAction.Wait($"primary at epoch {control.Epoch}: waiting for a primary lease from the Raft leader before {(o.Running ? "promoting" : "starting postgres")}");
        }

        if (!o.Running)
        {
            return new InstanceAction.Start(0, o.Data == DataKind.Standby
                ? $"primary at epoch {control.Epoch}: starting without standby.signal ends recovery and promotes"
                : $"primary at epoch {control.Epoch}: postgres is not running");
        }

        if (o.Pg is null)
        {
            return new InstanceAction.Wait("postgres is starting");
        }

        if (o.Pg.InRecovery)
        {
            // IMPORTANT: promotion happens only here, after this manager saw the committed control state name
            // it primary at a newer epoch; the old primary fenced itself on seeing the same epoch change.
            return new InstanceAction.Promote($"the control state names this instance primary at epoch {control.Epoch}");
        }

        if (!o.PrimaryObjectsReady)
        {
            return new InstanceAction.EnsurePrimaryObjects("primary: replication role, rewind grants and a slot for every other member");
        }

        if (!control.PendingSwitchover.IsNone && control.PendingSwitchover.Value != o.Self)
        {
            return StartSwitchover(o, control.PendingSwitchover.Value);
        }

        return new InstanceAction.Wait($"primary at epoch {control.Epoch}");
    }

    private static InstanceAction StartSwitchover(Observation o, ulong target)
    {
        var epoch = o.Control.Epoch;
        if (!o.Peers.TryGetValue(target, out var peer) || !peer.Reachable || !peer.Ready || !peer.Streaming)
        {
            return new InstanceAction.Propose(ControlCommand.ClearSwitchover(epoch), $"switchover refused: target {Describe(o, target)} is not a healthy, streaming replica");
        }

        var lag = (long)(o.Pg!.WriteLsn - Math.Min(o.Pg.WriteLsn, peer.ReceiveLsn));
        if (lag > o.SwitchoverMaxLagBytes)
        {
            return new InstanceAction.Propose(ControlCommand.ClearSwitchover(epoch), $"switchover refused: target {peer.Name} is {lag} bytes behind (limit {o.SwitchoverMaxLagBytes})");
        }

        return new InstanceAction.Stop(ForSwitchover: true, $"switchover to {peer.Name}: stopping cleanly so every WAL record reaches it");
    }

    private static InstanceAction SwitchoverInFlight(Observation o, SwitchoverProgress switchover)
    {
        if (o.Control.PendingSwitchover.Value != switchover.Target)
        {
            return new InstanceAction.AbortSwitchover("the switchover request was withdrawn");
        }

        if (o.Peers.TryGetValue(switchover.Target, out var peer) && peer.Reachable && peer.ReceiveLsn > switchover.FinalLsn)
        {
            // IMPORTANT: this instance's Postgres is stopped before the epoch moves, and the target promotes
            // only after the new epoch is committed, so the two are never writable together.
            return new InstanceAction.Propose(
                ControlCommand.SetPrimary(o.Control.Epoch, new MemberId(switchover.Target)),
                $"switchover: {peer.Name} has received the final WAL record at {Postgres.Lsn.Format(switchover.FinalLsn)}");
        }

        return o.NowMs - switchover.StartedAtMs > o.SwitchoverTimeoutMs
            ? new InstanceAction.AbortSwitchover($"switchover: {Describe(o, switchover.Target)} did not receive the final WAL within {o.SwitchoverTimeoutMs / 1000} s")
            : new InstanceAction.Wait($"switchover: waiting for {Describe(o, switchover.Target)} to receive WAL up to {Postgres.Lsn.Format(switchover.FinalLsn)}");
    }

    private static InstanceAction AsReplica(Observation o, ulong primary)
    {
        var epoch = o.Control.Epoch;
        o.Peers.TryGetValue(primary, out var upstream);
        var upstreamReady = upstream is { Reachable: true, Ready: true, Role: "primary" };
        if (o.Running && o.Pg is { InRecovery: false })
        {
            // IMPORTANT: a primary that sees a committed epoch naming another instance stops at once; it never
            // keeps taking writes beside the new primary.
            return new InstanceAction.Stop(ForSwitchover: false, $"demoted: epoch {epoch} names {Describe(o, primary)} primary");
        }

        if (o.Data == DataKind.Missing)
        {
            return upstreamReady
                ? new InstanceAction.CloneFrom(primary, $"new replica: cloning from {upstream!.Name}")
                : new InstanceAction.Wait($"waiting for primary {Describe(o, primary)} to be ready to clone from");
        }

        if (o.Data == DataKind.Primary && !o.Running)
        {
            if (!upstreamReady)
            {
                return new InstanceAction.Wait($"former primary: waiting for {Describe(o, primary)} to be ready before rewinding");
            }

            return o.RewindFailed
                ? new InstanceAction.Reclone(primary, $"former primary: pg_rewind could not bring it onto {upstream!.Name}'s timeline; cloning afresh")
                : new InstanceAction.Rewind(primary, $"former primary: rewinding onto {upstream!.Name}'s timeline");
        }

        if (!o.Running)
        {
            return new InstanceAction.Start(primary, $"replica of {Describe(o, primary)}: postgres is not running");
        }

        if (o.Pg is null)
        {
            return new InstanceAction.Wait("postgres is starting");
        }

        if (o.ConfiguredUpstream != primary)
        {
            return new InstanceAction.Repoint(primary, $"epoch {epoch}: following the new primary {Describe(o, primary)}");
        }

        return new InstanceAction.Wait(o.Pg.Streaming ? $"replica, streaming from {Describe(o, primary)}" : $"replica of {Describe(o, primary)}, not streaming yet");
    }

    private static string Describe(Observation o, ulong id) => o.Peers.TryGetValue(id, out var p) ? p.Name : $"member {id}";
}
