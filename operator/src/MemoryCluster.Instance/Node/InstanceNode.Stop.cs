using MemoryCluster.Instance.Control;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Node;

/// <summary>
/// The manager stopping cleanly (SIGTERM): a primary taking writes switches over to its most caught-up streaming
/// replica first, then a Raft leader hands its leadership on.
/// </summary>
public sealed partial class InstanceNode
{
    private bool _stopRequested;

    // The epoch at which a stopping primary asked for the switchover (zero: none asked), its proposal, and what
    // became of it.
    private Epoch _stopSwitchoverAt;
    private long? _stopProposal;
    private string? _stopProposalRefused;
    private bool _stopSwitchoverSeen;

    // When each other member's report (or its absence) was last taken in.
    private readonly Dictionary<MemberId, long> _heardAt = [];

    /// <summary>
    /// Whether the host should read every other member's report afresh before <see cref="StopRequested"/>: this member
    /// is the named primary taking writes, and may hand over; a replica that stops at the same time (local down) must
    /// not be chosen from a report read before it began to stop.
    /// </summary>
    public bool StopWantsFreshReports => _control.Primary == _config.Self && _mayWrite;

    /// <summary>Whether a report (or a failed read) of every other member asked for at or after <paramref name="since"/> was taken in.</summary>
    public bool HeardFromPeersSince(long since) =>
        _peers.Keys.All(id => _heardAt.TryGetValue(id, out var at) && at >= since);

    /// <summary>The manager is stopping and this primary asked for a switchover first: the host waits for <see cref="StopMayProceed"/>.</summary>
    public bool StopHandOverAsked => _stopSwitchoverAt != Epoch.Zero;

    /// <summary>
    /// Whether the host may go on stopping: nothing was asked, or the switchover asked on stop is over: the epoch moved
    /// (handed over, or aborted at a new epoch, or failed over), the request was refused or not applied, or it was
    /// cleared at the same epoch after it applied.
    /// </summary>
    public bool StopMayProceed => StopWaitingFor is null;

    /// <summary>What a stopping manager still waits for (null: nothing), for the host's log.</summary>
    public string? StopWaitingFor
    {
        get
        {
            if (_stopSwitchoverAt == Epoch.Zero || _stopProposalRefused is not null)
            {
                return null;
            }

            // IMPORTANT: the epoch moved away from the epoch the switchover was asked at: the hand-over (or an abort,
            // or a failover) committed, and whoever is primary now holds its own lease.
            if (_control.Epoch != _stopSwitchoverAt)
            {
                return null;
            }

            if (_stopSwitchoverSeen && _control.PendingSwitchover.IsNone)
            {
                return null;
            }

            return _control.PendingSwitchover.IsNone
                ? $"the switchover asked on stop at epoch {_stopSwitchoverAt} to be recorded"
                : $"the switchover to {_config.NameOf(_control.PendingSwitchover)} at epoch {_stopSwitchoverAt}: {_activity}";
        }
    }

    /// <summary>
    /// The first stop request of a primary taking writes, with no switchover pending and a streaming replica to take
    /// over (<see cref="CheckSwitchover"/>'s choice: the most caught-up one), proposes the switchover and defers the
    /// Raft hand-over: the host waits for <see cref="StopMayProceed"/> and asks again. Otherwise (and on that second
    /// request) a Raft leader hands its leadership on: otherwise the others wait an election timeout, and the new leader
    /// its Raft lease, while the primary gets no renewal (seen: a replica's manager stopped with SIGTERM while it led,
    /// and the primary fenced itself 90 ms before the new leader could grant).
    /// </summary>
    private void OnStopRequested()
    {
        if (!_stopRequested)
        {
            _stopRequested = true;
            if (_control.Primary == _config.Self && _mayWrite && _switchover is null && CheckSwitchover(null) is { Command: { } command, Message: var message })
            {
                // IMPORTANT: a compare-and-set on this epoch, as a client's switchover: it applies only while this
                // member is still primary at it, and the stop waits for the epoch to move away from it.
                _stopSwitchoverAt = _control.Epoch;
                _stopProposal = NextId();
                Log(LogLevel.Information, $"this manager is stopping while primary: {message}");
                _out.Add(new Propose(_stopProposal.Value, command, "this manager is stopping while primary: " + message));
                return;
            }
        }

        if (!_raft.IsLeader)
        {
            return;
        }

        if (LeaderOnStop(Views()) is { } target)
        {
            _out.Add(new TransferLeadership(target, $"this manager is stopping: handing Raft leadership to {_config.NameOf(target)}"));
        }
    }

    /// <summary>The answer to the switchover proposed on stop; false when <paramref name="p"/> is another proposal's.</summary>
    private bool OnStopProposalDone(ProposalDone p)
    {
        if (p.ProposalId != _stopProposal)
        {
            return false;
        }

        _stopProposal = null;
        if (!p.Applied)
        {
            _stopProposalRefused = p.Why;
            Log(LogLevel.Warning, $"the switchover asked on stop was not recorded: {p.Why}; stopping without it");
        }

        return true;
    }

    /// <summary>Notes the switchover asked on stop once the applied control state shows it pending.</summary>
    private void WatchStopSwitchover()
    {
        if (_stopSwitchoverAt != Epoch.Zero && _control.Epoch == _stopSwitchoverAt && !_control.PendingSwitchover.IsNone)
        {
            _stopSwitchoverSeen = true;
        }
    }

    /// <summary>
    /// A stopping manager starts nothing new on its data (the host stops PostgreSQL right after): only stops, the
    /// switchover's own stop and the primary's slots and objects go on. A rewind or a clone cut short by the stop would leave
    /// the data to be set aside.
    /// </summary>
    private bool HeldByStop(PlanStep step) =>
        _stopRequested && step is PlanStep.Act { Kind: not (StepKind.Stop or StepKind.StopForSwitchover or StepKind.EnsureSlots or StepKind.EnsurePrimaryObjects) };
}
