namespace MemoryCluster.Raft;

// RawNode: elections: the election timeout (random or, for the member that campaigns first, the shortest legitimate
// one), campaigns with pre-votes, the votes a node grants, and counting the answers.
internal sealed partial class RawNode
{
    /// <summary>
    /// While set, this node's election timeout is the shortest legitimate one, <c>ElectionTicks + 1</c>, instead of a
    /// random one in [ElectionTicks, 2*ElectionTicks): the member that needs a leader soonest (the host decides which)
    /// campaigns first when the leader goes silent. Safety is untouched: the node still campaigns only after an
    /// election timeout without leader contact, so its own vote keeps the stickiness every lease counts on, and
    /// pre-votes keep the others' (the spare tick absorbs the other voters' tick phase). Others may still time out
    /// sooner; any leader will do. Only the first timeout after leader contact is the short one; after a campaign
    /// that won nothing the timeouts are random until a leader is heard from again.
    /// </summary>
    public bool CampaignsFirst { get; private set; }

    // It campaigned on a timeout since it last heard from a leader: its next timeouts are random again.
    private bool _campaignedSinceContact;

    /// <summary>Sets <see cref="CampaignsFirst"/>; turning it on shortens a running election timeout at once.</summary>
    public void SetCampaignsFirst(bool first)
    {
        if (first == CampaignsFirst)
        {
            return;
        }

        CampaignsFirst = first;
        ResetRandomizedElectionTimeout();
    }

    private void ResetRandomizedElectionTimeout() =>
        _randomizedElectionTimeout = CampaignsFirst && !_campaignedSinceContact ? _options.ElectionTicks + 1 : _options.ElectionTicks + _random.Next(_options.ElectionTicks);

    private void Campaign(bool preVote, bool transfer)
    {
        if (!Promotable)
        {
            return;
        }

        Term voteTerm;
        if (preVote)
        {
            Role = RaftRole.PreCandidate;
            Leader = NodeId.None;
            voteTerm = Term.Next();
        }
        else
        {
            Reset(Term.Next());
            Role = RaftRole.Candidate;
            Vote = Id;
            voteTerm = Term;
        }

        _votes.Clear();
        _votes[Id] = true;
        _voteQuiet.Clear();
        if (Quorum == 1)
        {
            WonRound();
            return;
        }

        foreach (var voter in Config.Voters.Where(v => v != Id))
        {
            Send(new Message(
                preVote ? MessageType.PreVote : MessageType.Vote, Id, voter, voteTerm,
                LogTerm: LastTerm, Index: LastIndex, Context: transfer ? Message.TransferContext : 0));
        }
    }

    // A quorum granted this round: a pre-vote goes on to the real election, a vote makes the leader.
    private void WonRound()
    {
        if (Role == RaftRole.PreCandidate)
        {
            Campaign(preVote: false, transfer: false);
        }
        else
        {
            BecomeLeader();
        }
    }

    private void HandleVoteRequest(Message m)
    {
        var responseType = m.Type == MessageType.PreVote ? MessageType.PreVoteResponse : MessageType.VoteResponse;
        var canVote = Vote == m.From || (Vote.IsNone && Leader.IsNone) || (m.Type == MessageType.PreVote && m.Term > Term);
        var upToDate = m.LogTerm > LastTerm || (m.LogTerm == LastTerm && m.Index >= LastIndex);
        if (canVote && upToDate)
        {
            // A vote carries the ticks since this node last heard from a leader (or started): the lease floor of
            // RaftOptions.PriorLeasesEndedTicksBefore. Never reset by a vote, so a repeated grant counts from the same contact.
            Send(new Message(responseType, Id, m.From, m.Term, Context: m.Type == MessageType.Vote ? (ulong)_ticksSinceLeaderContact : 0));
            if (m.Type == MessageType.Vote)
            {
                _electionElapsed = 0;
                Vote = m.From;
            }
        }
        else
        {
            Send(new Message(responseType, Id, m.From, Term, Reject: true));
        }
    }

    private void StepCandidate(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append or MessageType.Heartbeat or MessageType.InstallSnapshot:
                BecomeFollower(Term, m.From);
                StepFollower(m);
                break;
            case MessageType.PreVoteResponse when Role == RaftRole.PreCandidate:
            case MessageType.VoteResponse when Role == RaftRole.Candidate:
                _votes[m.From] = !m.Reject;
                if (m.Type == MessageType.VoteResponse && !m.Reject)
                {
                    _voteQuiet[m.From] = (int)Math.Min(m.Context, int.MaxValue);
                }

                var granted = Config.Voters.Count(v => _votes.TryGetValue(v, out var g) && g);
                var rejected = Config.Voters.Count(v => _votes.TryGetValue(v, out var g) && !g);
                if (granted >= Quorum)
                {
                    WonRound();
                }
                else if (rejected >= Quorum)
                {
                    BecomeFollower(Term, NodeId.None);
                }

                break;
            default:
                break;
        }
    }
}
