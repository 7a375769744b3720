namespace MemoryCluster.Raft;

// RawNode: log replication — appends, snapshots, heartbeats, and the commit index.
internal sealed partial class RawNode
{
    private void HandleAppend(Message m)
    {
        if (m.Index < Commit)
        {
            Send(new Message(MessageType.AppendResponse, Id, m.From, Term, Index: Commit));
            return;
        }

        if (m.Index > LastIndex || TermAt(m.Index) != m.LogTerm)
        {
            Send(new Message(MessageType.AppendResponse, Id, m.From, Term, Index: m.Index, Reject: true,
                RejectHint: LogIndex.Min(m.Index.Previous(), LastIndex)));
            return;
        }

        var configTouched = false;
        foreach (var e in m.EntriesOrEmpty)
        {
            if (e.Index <= SnapshotIndex)
            {
                continue;
            }

            if (e.Index <= LastIndex)
            {
                if (TermAt(e.Index) == e.Term)
                {
                    continue;
                }

                if (e.Index <= Commit)
                {
                    throw new InvalidOperationException($"Node {Id} was asked to overwrite committed entry {e.Index}.");
                }

                configTouched |= TruncateFrom(e.Index);
            }

            _log.Add(e);
            configTouched |= e.Type == EntryType.Config;
        }

        if (configTouched)
        {
            RecomputeConfig();
        }

        var lastNew = new LogIndex(m.Index.Value + (ulong)m.EntriesOrEmpty.Count);
        CommitTo(LogIndex.Min(m.Commit, lastNew));
        Send(new Message(MessageType.AppendResponse, Id, m.From, Term, Index: lastNew));
    }

    private bool TruncateFrom(LogIndex index)
    {
        var at = (int)(index.Value - FirstIndex.Value);
        var removedConfig = _log.Skip(at).Any(e => e.Type == EntryType.Config);
        _log.RemoveRange(at, _log.Count - at);
        if (_stable >= index)
        {
            _stable = index.Previous();
        }

        return removedConfig;
    }

    private void HandleSnapshot(Message m)
    {
        var snap = m.Snapshot!;
        if (snap.Index <= Commit)
        {
            Send(new Message(MessageType.AppendResponse, Id, m.From, Term, Index: Commit));
            return;
        }

        if (snap.Index <= LastIndex && snap.Index >= SnapshotIndex && TermAt(snap.Index) == snap.Term)
        {
            CommitTo(snap.Index);
            Send(new Message(MessageType.AppendResponse, Id, m.From, Term, Index: snap.Index));
            return;
        }

        _log.Clear();
        _snapshot = snap;
        _unpersistedSnapshot = snap;
        _stable = snap.Index;
        Commit = snap.Index;
        RecomputeConfig();
        Send(new Message(MessageType.AppendResponse, Id, m.From, Term, Index: snap.Index));
    }

    private void CommitTo(LogIndex index)
    {
        if (index > Commit)
        {
            Commit = index;
        }
    }

    /// <summary>Advances the commit index to the highest index a quorum of voters has stored, if it is of this term.</summary>
    private bool MaybeCommit()
    {
        var matches = Config.Voters
            .Select(v => v == Id ? _stable : MatchOf(v))
            .OrderDescending()
            .ToList();
        if (matches.Count == 0)
        {
            return false;
        }

        var candidate = matches[Quorum - 1];

        // IMPORTANT: only an entry of the current term is committed by counting replicas (Figure 8);
        // earlier entries commit with it.
        if (candidate <= Commit || TermAt(candidate) != Term)
        {
            return false;
        }

        var hadCurrentTermCommit = TermAt(Commit) == Term;
        Commit = candidate;
        if (!hadCurrentTermCommit)
        {
            for (var i = 0; i < _pendingReads.Count; i++)
            {
                if (_pendingReads[i].Round == 0)
                {
                    _pendingReads[i] = _pendingReads[i] with { Index = Commit, Round = _heartbeatRound + 1 };
                }
            }

            if (_pendingReads.Count > 0)
            {
                BroadcastHeartbeat();
            }
        }

        if (!Config.Contains(Id) && ConfigIndex <= Commit)
        {
            // A leader removed by a committed configuration tells the others, then steps down.
            BroadcastAppend();
            BecomeFollower(Term, NodeId.None);
            return false;
        }

        return true;
    }

    private void BroadcastAppend()
    {
        foreach (var id in _progress.Keys.Where(k => k != Id).ToList())
        {
            SendAppend(id);
        }
    }

    private void BroadcastHeartbeat()
    {
        _heartbeatRound++;
        _roundSentAtTick[_heartbeatRound] = TickCount;
        foreach (var (id, pr) in _progress)
        {
            if (id == Id)
            {
                continue;
            }

            Send(new Message(MessageType.Heartbeat, Id, id, Term, Commit: LogIndex.Min(pr.Match, Commit), Context: _heartbeatRound));
        }

        UpdateLeaseRound();
    }

    private void SendAppend(NodeId to)
    {
        if (!_progress.TryGetValue(to, out var pr) || to == Id || pr.Paused)
        {
            return;
        }

        if (pr.Next <= SnapshotIndex)
        {
            Send(new Message(MessageType.InstallSnapshot, Id, to, Term, Snapshot: _snapshot));
            pr.Next = SnapshotIndex.Next();
            pr.Paused = true;
            return;
        }

        var prev = pr.Next.Previous();
        var count = (int)Math.Min((ulong)_options.MaxEntriesPerAppend, LastIndex.Value - prev.Value);
        var entries = count == 0 ? [] : _log.GetRange((int)(pr.Next.Value - FirstIndex.Value), count);
        Send(new Message(MessageType.Append, Id, to, Term, LogTerm: TermAt(prev), Index: prev, Entries: entries, Commit: Commit));
        if (pr.State == ProgressState.Replicate)
        {
            pr.Next = new LogIndex(prev.Value + (ulong)count + 1);
        }
        else
        {
            pr.Paused = true;
        }
    }
}
