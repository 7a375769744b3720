namespace MemoryCluster.Raft;

// RawNode: membership changes, one at a time, and the configuration in effect at an index.
internal sealed partial class RawNode
{
    /// <summary>
    /// Proposes one single-server membership change. Refused until the leader has committed an entry of
    /// its own term (the no-op) and while an earlier change is uncommitted.
    /// </summary>
    public (LogIndex Index, RaftRefusal Refusal) ProposeMembershipChange(MembershipChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (Role != RaftRole.Leader)
        {
            return (LogIndex.Zero, RaftRefusal.NotLeader);
        }

        if (TransferTarget != NodeId.None)
        {
            return (LogIndex.Zero, RaftRefusal.TransferInProgress);
        }

        // IMPORTANT: the single-server rule is only safe once the leader has committed an entry of its
        // own term (Ongaro's fix): otherwise two leaders of different configurations could both win.
        if (TermAt(Commit) != Term)
        {
            return (LogIndex.Zero, RaftRefusal.NoCommitInCurrentTerm);
        }

        if (ConfigIndex > Commit)
        {
            return (LogIndex.Zero, RaftRefusal.ChangeInProgress);
        }

        var next = ApplyChange(Config, change, out var refusal);
        if (next is null)
        {
            return (LogIndex.Zero, refusal);
        }

        var index = AppendLocal(EntryType.Config, ConfigCodec.Encode(next));
        BroadcastAppend();
        return (index, RaftRefusal.None);
    }

    private ClusterConfig? ApplyChange(ClusterConfig config, MembershipChange change, out RaftRefusal refusal)
    {
        refusal = RaftRefusal.InvalidChange;
        var members = config.Members.ToList();
        switch (change.Type)
        {
            case MembershipChangeType.AddLearner:
                if (change.Node.IsNone || config.Contains(change.Node) || config.RetiredIds.Contains(change.Node))
                {
                    return null;
                }

                members.Add(new Member(change.Node, change.Address, IsVoter: false));
                break;
            case MembershipChangeType.PromoteLearner:
                var learner = config.Find(change.Node);
                if (learner is null || learner.IsVoter)
                {
                    return null;
                }

                // Learners catch up before they vote: a voter that lags would slow every commit.
                if (MatchOf(change.Node) < Commit)
                {
                    refusal = RaftRefusal.LearnerNotCaughtUp;
                    return null;
                }

                members[members.IndexOf(learner)] = learner with { IsVoter = true };
                break;
            case MembershipChangeType.RemoveNode:
                var member = config.Find(change.Node);
                if (member is null || (member.IsVoter && config.Voters.Count() == 1))
                {
                    return null;
                }

                members.Remove(member);
                return new ClusterConfig(
                    members.OrderBy(m => m.Id).ToArray(),
                    config.RetiredIds.Append(change.Node).Order().ToArray());
            default:
                return null;
        }

        refusal = RaftRefusal.None;
        return new ClusterConfig(members.OrderBy(m => m.Id).ToArray(), config.RetiredIds);
    }

    private ClusterConfig ConfigAt(LogIndex index)
    {
        for (var i = _log.Count - 1; i >= 0; i--)
        {
            if (_log[i].Index <= index && _log[i].Type == EntryType.Config)
            {
                return ConfigCodec.Decode(_log[i].Data);
            }
        }

        return _snapshot?.Config ?? _baseConfig;
    }

    private void RecomputeConfig()
    {
        var config = _snapshot?.Config ?? _baseConfig;
        var index = SnapshotIndex;
        for (var i = _log.Count - 1; i >= 0; i--)
        {
            if (_log[i].Type == EntryType.Config)
            {
                config = ConfigCodec.Decode(_log[i].Data);
                index = _log[i].Index;
                break;
            }
        }

        Config = config;
        ConfigIndex = index;
        if (Role == RaftRole.Leader)
        {
            foreach (var member in config.Members)
            {
                if (!_progress.ContainsKey(member.Id))
                {
                    _progress[member.Id] = new Progress { Next = LastIndex.Next(), RecentActive = true };
                }
            }

            foreach (var gone in _progress.Keys.Where(k => !config.Contains(k) && k != Id).ToList())
            {
                _progress.Remove(gone);
            }
        }
    }
}
