namespace MemoryCluster.Raft;

// RawNode: linearizable reads (ReadIndex, lease-based or by a heartbeat round) and the leader lease's rounds.
internal sealed partial class RawNode
{
    /// <summary>
    /// Starts a linearizable read. The answer comes as a <see cref="ReadState"/> in a later Ready, once a
    /// quorum has confirmed this node is still the leader — or, when <paramref name="leaseConfirmed"/> and this node
    /// holds its leader lease, in the next Ready without a heartbeat round: no other leader can exist while the lease
    /// holds. The caller confirms the lease on its real clock (a host whose ticks were delayed counts fewer ticks
    /// than time passed, so the lease in ticks alone may look longer than it is).
    /// </summary>
    public RaftRefusal ReadIndex(ulong requestContext, bool leaseConfirmed = false)
    {
        if (Role == RaftRole.Follower && !Leader.IsNone)
        {
            // Ask the leader; its answer arrives as a ReadIndexResponse and becomes a ReadState here.
            Send(new Message(MessageType.ReadIndex, Id, Leader, Term, Context: requestContext));
            return RaftRefusal.None;
        }

        if (Role != RaftRole.Leader)
        {
            return RaftRefusal.NotLeader;
        }

        return StartRead(Id, requestContext, leaseConfirmed);
    }

    private RaftRefusal StartRead(NodeId requester, ulong requestContext, bool leaseConfirmed = false)
    {

        if (Quorum == 1 && Config.IsVoter(Id))
        {
            if (TermAt(Commit) == Term)
            {
                CompleteRead(new PendingRead(requestContext, Commit, 0, requester));
            }
            else
            {
                _pendingReads.Add(new PendingRead(requestContext, LogIndex.Zero, 0, requester));
            }

            return RaftRefusal.None;
        }

        if (TermAt(Commit) != Term)
        {
            // The commit index is only known to be current once an entry of this term is committed.
            _pendingReads.Add(new PendingRead(requestContext, LogIndex.Zero, 0, requester));
            return RaftRefusal.None;
        }

        if (leaseConfirmed && HoldsLease)
        {
            // IMPORTANT: no other leader can exist while this one holds its lease, so its commit index is current.
            CompleteRead(new PendingRead(requestContext, Commit, 0, requester));
            return RaftRefusal.None;
        }

        BroadcastHeartbeat();
        _pendingReads.Add(new PendingRead(requestContext, Commit, _heartbeatRound, requester));
        return RaftRefusal.None;
    }

    private void UpdateLeaseRound()
    {
        var rounds = Config.Voters
            .Select(v => v == Id ? _heartbeatRound : (_progress.TryGetValue(v, out var p) ? p.AckedRound : 0))
            .OrderDescending()
            .ToList();
        if (rounds.Count == 0)
        {
            return;
        }

        var quorumRound = rounds[Quorum - 1];
        if (quorumRound <= LeaseRound)
        {
            return;
        }

        LeaseRound = quorumRound;
        foreach (var stale in _roundSentAtTick.Keys.Where(r => r < quorumRound).ToList())
        {
            _roundSentAtTick.Remove(stale);
        }

        ReleaseReads();
    }

    private void ReleaseReads()
    {
        for (var i = 0; i < _pendingReads.Count; i++)
        {
            var read = _pendingReads[i];
            if (read.Round != 0 && read.Round <= LeaseRound)
            {
                CompleteRead(read);
                _pendingReads.RemoveAt(i);
                i--;
            }
        }
    }

    private void CompleteRead(PendingRead read)
    {
        if (read.Requester == Id)
        {
            _readStates.Add(new ReadState(read.Index, read.Context));
        }
        else
        {
            Send(new Message(MessageType.ReadIndexResponse, Id, read.Requester, Term, Index: read.Index, Context: read.Context));
        }
    }
}
