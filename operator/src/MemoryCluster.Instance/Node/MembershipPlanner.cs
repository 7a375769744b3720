using MemoryCluster.Instance.Control;
using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Node;

/// <summary>What the Raft leader's manager sees when it decides a membership change.</summary>
/// <param name="Config">The latest configuration in the leader's log, with the ids ever removed.</param>
/// <param name="ChangePending">That configuration is not committed yet: one change at a time.</param>
/// <param name="Commit">The leader's commit index.</param>
/// <param name="Match">How far each member's Raft log matches the leader's.</param>
/// <param name="Leader">The Raft leader (the member deciding).</param>
/// <param name="Primary">The primary the control state names.</param>
/// <param name="Reports">The other members' last reports, as the leader's node holds them.</param>
/// <param name="Configured">The members this manager's peers setting lists (names of founding members).</param>
public sealed record MembershipInput(
    ClusterConfig Config,
    bool ChangePending,
    LogIndex Commit,
    IReadOnlyDictionary<NodeId, LogIndex> Match,
    MemberId Leader,
    MemberId Primary,
    IReadOnlyDictionary<MemberId, PeerView> Reports,
    IReadOnlyList<Peer> Configured);

/// <summary>The next step of a membership request.</summary>
public abstract record MembershipStep(string Message)
{
    /// <summary>Propose this change in Raft; the request is then accepted and in progress (or done, for a removal).</summary>
    public sealed record Change(MembershipChange Proposal, string Message) : MembershipStep(Message);

    /// <summary>Nothing to do now; the request is accepted and in progress (a learner catching up, a change committing).</summary>
    public sealed record InProgress(string Message) : MembershipStep(Message);

    /// <summary>Hand Raft leadership to <paramref name="To"/> first; the request is in progress.</summary>
    public sealed record HandOver(MemberId To, string Message) : MembershipStep(Message);

    /// <summary>Already in effect: a repeated request converges here.</summary>
    public sealed record Done(string Message) : MembershipStep(Message);

    /// <summary>Refused, with the HTTP status to answer.</summary>
    public sealed record Refused(int Status, string Message) : MembershipStep(Message);
}

/// <summary>
/// The membership decisions, pure: who a Raft member is (name, addresses), whether the peers setting contradicts the
/// membership Raft holds, when a learner may become a voter, whether a removal is safe, and the synchronous standby
/// count of quorum mode. One single-server change at a time; a request is level-based: every call takes the next
/// step, and a repeated call converges (<see cref="MembershipStep.Done"/>).
/// </summary>
public static class MembershipPlanner
{
    /// <summary>The most members a cluster has (3 or 5 voters, never 2; one more transiently while it changes).</summary>
    public const int MaxMembers = 5;

    /// <summary>The fewest voters a cluster keeps.</summary>
    public const int MinVoters = 3;

    /// <summary>Quorum mode's k: the primary and k = ⌊voters/2⌋ standbys are a majority of the voters.</summary>
    public static int SyncStandbyCount(int voters) => voters / 2;

    /// <summary>The k <c>synchronous_standby_names</c> names (quorum mode): <see cref="SyncStandbyCount"/>, no more than the standbys there are.</summary>
    public static int QuorumK(int voters, int standbys) => Math.Min(SyncStandbyCount(voters), standbys);

    /// <summary>Every member with its details: from its Raft address, or from the peers setting for founding members.</summary>
    public static IReadOnlyList<Peer> Resolve(IEnumerable<Member> members, IReadOnlyList<Peer> configured)
    {
        ArgumentNullException.ThrowIfNull(members);
        return [.. members.Select(m => Peer.FromMember(m.Id.Value, m.Address, configured)).OfType<Peer>()];
    }

    /// <summary>Where the peers setting contradicts the membership Raft holds: a member placed at another address.</summary>
    public static IReadOnlyList<string> Conflicts(IReadOnlyList<Member> held, IReadOnlyList<Peer> configured)
    {
        ArgumentNullException.ThrowIfNull(held);
        ArgumentNullException.ThrowIfNull(configured);
        var conflicts = new List<string>();
        foreach (var member in held)
        {
            var peer = configured.FirstOrDefault(p => p.Id == member.Id.Value);
            if (peer is not null && peer.RaftAddress != Peer.TransportAddressOf(member.Address))
            {
                conflicts.Add($"member {member.Id} is at {Peer.TransportAddressOf(member.Address)} in Raft, at {peer.RaftAddress} in the peers setting");
            }
            else if (peer is not null && member.Address.Contains('@', StringComparison.Ordinal) && Peer.FromMember(member.Id.Value, member.Address, []) is { } known && known != peer)
            {
                conflicts.Add($"member {member.Id} is {known} in Raft, {peer} in the peers setting");
            }
        }

        return conflicts;
    }

    /// <summary>The next step to make <paramref name="candidate"/> a voter: add it as a learner, then promote it once caught up.</summary>
    public static MembershipStep PlanAdd(MembershipInput input, Peer candidate)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(candidate);
        var id = new NodeId(candidate.Id);
        var existing = input.Config.Find(id);
        var members = Resolve(input.Config.Members, input.Configured);
        if (input.Config.RetiredIds.Contains(id))
        {
            return new MembershipStep.Refused(409, $"id {candidate.Id} belonged to a member that was removed; ids are never reused: add it with a new id");
        }

        if (existing is not null)
        {
            var known = members.FirstOrDefault(p => p.Id == candidate.Id);
            if (known is not null && known != candidate)
            {
                return new MembershipStep.Refused(409, $"member {candidate.Id} is already {known}, not {candidate}");
            }

            if (existing.IsVoter)
            {
                return new MembershipStep.Done($"{candidate.Name} is a voter");
            }

            return PlanPromote(input, candidate, existing);
        }

        if (members.FirstOrDefault(p => p.Name == candidate.Name) is { } sameName)
        {
            return new MembershipStep.Refused(409, $"the name {candidate.Name} belongs to member {sameName.Id}");
        }

        var clash = members.FirstOrDefault(p => p.Host == candidate.Host && new[] { p.PgPort, p.RaftPort, p.HttpPort }.Intersect([candidate.PgPort, candidate.RaftPort, candidate.HttpPort]).Any());
        if (clash is not null)
        {
            return new MembershipStep.Refused(409, $"{candidate} uses an address of {clash}");
        }

        if (input.Config.Members.Count >= MaxMembers)
        {
            return new MembershipStep.Refused(409, $"the cluster has {input.Config.Members.Count} members already; at most {MaxMembers}");
        }

        if (input.ChangePending)
        {
            return new MembershipStep.InProgress($"another membership change is committing; ask again to add {candidate.Name}");
        }

        return new MembershipStep.Change(
            new MembershipChange(MembershipChangeType.AddLearner, id, candidate.MemberAddress),
            $"adding {candidate.Name} as a learner; it becomes a voter once its Raft log and its PostgreSQL have caught up (ask again to follow)");
    }

    private static MembershipStep PlanPromote(MembershipInput input, Peer candidate, Member learner)
    {
        if (input.ChangePending)
        {
            return new MembershipStep.InProgress($"{candidate.Name} is a learner; a membership change is committing");
        }

        var match = input.Match.GetValueOrDefault(learner.Id);
        if (match < input.Commit)
        {
            return new MembershipStep.InProgress($"{candidate.Name} is a learner catching up: its Raft log matches to {match.Value} of {input.Commit.Value}");
        }

        var report = input.Reports.GetValueOrDefault(new MemberId(candidate.Id));
        if (report is not { IsStreamingReplica: true })
        {
            var what = report is not { Reachable: true } ? "its manager does not answer" : report.Running ? $"its PostgreSQL is {report.Role.ToString().ToLowerInvariant()}, {report.Follow.ToString().ToLowerInvariant()}" : "its PostgreSQL is not running yet";
            return new MembershipStep.InProgress($"{candidate.Name} is a learner whose Raft log has caught up; waiting for it to stream from the primary ({what})");
        }

        // IMPORTANT: a promotion raises the majority; the voters that answer, the learner included, must make one,
        // or the cluster would stop committing (and renewing the primary's lease) mid-change.
        var voters = input.Config.Voters.ToList();
        var healthy = voters.Count(v => IsHealthy(input, v)) + 1;
        var majority = ((voters.Count + 1) / 2) + 1;
        if (healthy < majority)
        {
            return new MembershipStep.Refused(409, $"promoting {candidate.Name} would need {majority} of {voters.Count + 1} voters, and only {healthy} answer; bring the others back first");
        }

        return new MembershipStep.Change(new MembershipChange(MembershipChangeType.PromoteLearner, learner.Id), $"promoting {candidate.Name} to voter");
    }

    /// <summary>The next step to remove member <paramref name="id"/>: never the primary, never below 3 voters or a majority that answers.</summary>
    public static MembershipStep PlanRemove(MembershipInput input, MemberId id, bool quorumMode)
    {
        ArgumentNullException.ThrowIfNull(input);
        var nodeId = id.ToNodeId();
        var member = input.Config.Find(nodeId);
        var name = Resolve(input.Config.Members, input.Configured).FirstOrDefault(p => p.Id == id.Value)?.Name ?? $"member {id}";
        if (member is null)
        {
            return input.Config.RetiredIds.Contains(nodeId)
                ? new MembershipStep.Done($"member {id} was removed")
                : new MembershipStep.Refused(404, $"member {id} is not a member (members: {string.Join(", ", input.Config.Members.Select(m => m.Id))})");
        }

        if (id == input.Primary)
        {
            return new MembershipStep.Refused(409, $"{name} is the primary: switch over to another member first (POST /switchover), then remove it");
        }

        if (input.ChangePending)
        {
            return new MembershipStep.InProgress($"a membership change is committing; ask again to remove {name}");
        }

        if (member.IsVoter)
        {
            var voters = input.Config.Voters.ToList();
            if (voters.Count <= MinVoters)
            {
                return new MembershipStep.Refused(409, $"removing {name} would leave {voters.Count - 1} voters; a cluster keeps at least {MinVoters}");
            }

            // IMPORTANT: the voters left must still make a majority that answers, or the cluster stops committing.
            var remaining = voters.Where(v => v != nodeId).ToList();
            var healthy = remaining.Count(v => IsHealthy(input, v));
            var majority = (remaining.Count / 2) + 1;
            if (healthy < majority)
            {
                return new MembershipStep.Refused(409, $"removing {name} would leave {remaining.Count} voters of which only {healthy} answer; {majority} are needed");
            }

            if (quorumMode)
            {
                // Commits wait for k standbys: those left must be enough, or every commit would wait.
                var k = SyncStandbyCount(remaining.Count);
                var streaming = input.Config.Members.Count(m => m.Id != nodeId && new MemberId(m.Id.Value) != input.Primary && input.Reports.GetValueOrDefault(MemberId.FromNodeId(m.Id)) is { IsStreamingReplica: true });
                if (streaming < k)
                {
                    return new MembershipStep.Refused(409, $"removing {name} would leave {streaming} streaming standbys where quorum mode needs {k}: commits would wait");
                }
            }

            if (MemberId.FromNodeId(nodeId) == input.Leader)
            {
                var to = remaining.FirstOrDefault(v => v != nodeId && IsHealthy(input, v) && MemberId.FromNodeId(v) != input.Primary);
                to = to.IsNone ? remaining.FirstOrDefault(v => IsHealthy(input, v)) : to;
                return new MembershipStep.HandOver(MemberId.FromNodeId(to), $"{name} leads Raft: handing leadership over first; ask again to remove it");
            }
        }

        return new MembershipStep.Change(new MembershipChange(MembershipChangeType.RemoveNode, nodeId), $"removing {name}");
    }

    /// <summary>The leader itself, or a member whose manager answered its last poll.</summary>
    private static bool IsHealthy(MembershipInput input, NodeId id) =>
        MemberId.FromNodeId(id) == input.Leader || input.Reports.GetValueOrDefault(MemberId.FromNodeId(id)) is { Reachable: true };
}
