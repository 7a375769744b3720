using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.Instance.Host;

/// <summary>What the HTTP API says about this member: /status, /healthz and /readyz, all from the node's status.</summary>
internal sealed class StatusReporter(InstanceOptions options, NodeDriver driver, RaftService raft, MemberDirectory directory, ParametersService parameters, TimeProvider time)
{
    /// <summary>The node's status now.</summary>
    public NodeStatus Node() => driver.Read((node, _) => node.Status());

    /// <summary>What <c>GET /status</c> returns.</summary>
    public StatusDocument Status()
    {
        var (s, now) = driver.Read((node, now) => (node.Status(), now));
        return ToDocument(s, now);
    }

    /// <summary>What <c>GET /history</c> returns: the control state's changes of primary, members by name.</summary>
    public HistoryDocument History() => driver.Read((node, _) => HistoryOf(node.Control, id => directory.Find(id.Value)?.Name ?? $"member {id}"));

    /// <summary>The history of <paramref name="control"/>, members named by <paramref name="nameOf"/>.</summary>
    public static HistoryDocument HistoryOf(ControlState control, Func<MemberId, string> nameOf)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(nameOf);
        return new HistoryDocument(
            control.AppliedIndex.Value,
            control.Epoch,
            [.. control.PrimaryHistory.Select(h => new PrimaryChangeDocument(
                h.Epoch,
                h.AtUnixMs == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(h.AtUnixMs),
                h.From.IsNone ? null : nameOf(h.From),
                nameOf(h.To),
                h.Reason))]);
    }

    /// <summary>Alive: the Raft host runs, and PostgreSQL runs or the node is not stuck on a failing step.</summary>
    public (bool Alive, string Why) Health()
    {
        var s = Node();
        if (raft.Fault is { } fault)
        {
            return (false, $"the Raft host stopped: {fault.Message}");
        }

        return s.Running || s.LastError is null ? (true, "ok") : (false, $"postgres is not running and the last step failed: {s.LastError}");
    }

    /// <summary>Ready for its role, or why not.</summary>
    public (bool Ready, string? Why) Ready()
    {
        var s = Node();
        return (s.Ready, s.NotReadyWhy);
    }

    public StatusDocument ToDocument(NodeStatus s, long now)
    {
        ArgumentNullException.ThrowIfNull(s);
        var control = s.Control;
        var raftStatus = raft.Status;
        return new StatusDocument
        {
            Name = options.Name,
            Id = options.Id,
            Role = s.Role,
            Ready = s.Ready,
            NotReadyWhy = s.NotReadyWhy,
            WaitingForStandbys = s.WaitingForStandbys,
            AcceptsStandbys = s.AcceptsStandbys,
            PostgresRunning = s.Running,
            Mode = options.Quorum ? ReplicationMode.Quorum : ReplicationMode.Async,
            QuorumK = options.Quorum ? control.QuorumK : null,
            ControlFormat = ControlCommand.HighestFormat,
            ClusterControlFormat = control.Format,
            Maintenance = control.Maintenance,
            Epoch = control.Epoch,
            Primary = NameOf(control.Primary),
            PendingSwitchover = NameOf(control.PendingSwitchover),
            Timeline = s.Line?.Timeline.Value,
            Line = s.Line,
            WriteLsn = s.Role == InstanceRole.Primary && !s.WriteLsn.IsZero ? s.WriteLsn : null,
            FlushLsn = s.Line is null ? null : s.FlushLsn,
            ReplayLsn = s.Role == InstanceRole.Replica ? s.ReplayLsn : null,
            PositionSettled = s.PositionSettled,
            LagBytes = s.LagBytes,
            Streaming = s.Follow == FollowState.Streaming,
            Follow = s.Follow,
            FollowWhy = s.FollowWhy,
            Upstream = NameOf(s.Upstream),
            Standbys = [.. s.Standbys.Select(x => new StandbyDocument(x.Name, x.State, x.SyncState, x.Flush, x.Replay, x.ReplayLagSeconds, x.ReplyAgeSeconds, ReplicationLiveness.IsReplying(x)))],
            Raft = new RaftStatusDocument(
                raftStatus.Term.Value,
                raftStatus.Role.ToString().ToLowerInvariant(),
                NameOf(MemberId.FromNodeId(raftStatus.Leader)),
                [.. directory.Members.Select(p => directory.IsVoter(p.Id) ? p.Name : p.Name + " (learner)")],
                raft.HoldsLease,
                raft.Fault is not null),
            Activity = s.Activity,
            LastError = s.LastError,
            LastErrorAt = s.LastErrorAt is { } at ? time.GetUtcNow() - TimeSpan.FromMilliseconds(now - at) : null,
            // IMPORTANT: the age at the time of the answer, on the driver's clock: the leader dates the state by it.
            StateAgeMs = s.StateAt is { } stateAt ? Math.Max(0, now - stateAt) : 0,
            StateQueryMs = s.StateQueryMs,
            Fenced = s.FencedEpoch == control.Epoch && control.Epoch != Epoch.Zero,
            FencedEpoch = s.FencedEpoch,
            FenceReason = s.FenceReason,
            LeaseRemainingMs = s.LeaseRemainingMs,
            Watchdog = options.WatchdogCommand is null ? "off" : s.WatchdogArmed ? "armed" : "disarmed",
            MayWrite = s.MayWrite,
            SteppingDown = s.SteppingDown,
            Failover = s.Failover,
            ForcedFailoverRefused = s.ForcedFailoverRefused,
            DetachFrom = s.DetachFrom,
            DetachedFrom = s.DetachedFrom,
            Parameters = parameters.Status,
        };
    }

    private string? NameOf(MemberId id) => id.IsNone ? null : directory.Find(id.Value)?.Name ?? id.ToString();
}
