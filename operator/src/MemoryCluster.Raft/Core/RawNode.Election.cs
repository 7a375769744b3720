namespace MemoryCluster.Raft;

// RawNode: the election timeout, random or, for the member that campaigns first, the shortest legitimate one.
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
}
