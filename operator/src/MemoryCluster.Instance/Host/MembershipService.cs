using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Raft;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Carries out membership requests: reads what the Raft leader's manager knows, asks <see cref="MembershipPlanner"/>
/// for the next step and takes it (one Raft change, or a leadership hand-over). A member that does not lead forwards
/// the request to the leader's manager, signed with the cluster key. Every answer says whether the change is in
/// effect (200) or accepted and in progress (202: ask again), or why it is refused.
/// </summary>
internal sealed partial class MembershipService(InstanceOptions options, RaftService raft, NodeDriver driver, MemberDirectory directory, ClusterKey key, TimeProvider time, ILogger<MembershipService> logger) : IDisposable
{
    /// <summary>How long one step may take before the answer says "in progress".</summary>
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(5);

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>GET /members: the committed membership, with the leader's view of each member's progress when this member leads.</summary>
    public async Task<MembersDocument> ListAsync(CancellationToken cancellationToken)
    {
        var committed = raft.State.Members;
        var membership = await raft.MembershipAsync(cancellationToken).ConfigureAwait(false);
        var reports = driver.Read((node, _) => node.PeerReports());
        var resolved = MembershipPlanner.Resolve(committed, options.Peers);
        var leading = membership.Role == RaftRole.Leader;
        var members = committed.Select(m =>
        {
            var peer = resolved.FirstOrDefault(p => p.Id == m.Id.Value);
            var report = reports.GetValueOrDefault(MemberId.FromNodeId(m.Id));
            ulong? match = leading ? membership.Match.GetValueOrDefault(m.Id).Value : null;
            return new MemberDocument(
                m.Id.Value,
                peer?.Name ?? $"member-{m.Id}",
                peer?.Host,
                peer?.PgPort,
                peer?.RaftPort,
                peer?.HttpPort,
                m.IsVoter,
                match,
                leading ? match >= membership.Commit.Value : null,
                report is { Reachable: true } ? report.Role : null,
                report is { Reachable: true } ? report.Streaming : null);
        }).ToList();
        return new MembersDocument(
            members,
            membership.ChangePending || !membership.Config.Members.SequenceEqual(committed),
            directory.Find(raft.Leader.Value)?.Name,
            membership.Commit.Value,
            MembershipPlanner.SyncStandbyCount(committed.Count(m => m.IsVoter)),
            [.. membership.Config.RetiredIds.Select(id => id.Value)]);
    }

    /// <summary>POST /members: the next step to make <paramref name="request"/>'s member a voter.</summary>
    public Task<(int Status, ManagerAnswer Answer)> AddAsync(AddMemberRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var candidate = new Peer(request.Id, request.Name, request.Host, request.PgPort, request.RaftPort, request.HttpPort);
        if (Peer.FromMember(candidate.Id, candidate.MemberAddress, []) != candidate)
        {
            return Task.FromResult((400, new ManagerAnswer(false, $"not a valid member: {candidate} (id 1-999999, name [a-z][-a-z0-9]*, ports 1-65535)")));
        }

        return StepAsync(
            input => MembershipPlanner.PlanAdd(input, candidate),
            (client, leader, ct) => client.AddMemberAsync(leader, request, ct),
            cancellationToken);
    }

    /// <summary>DELETE /members/{id}: the next step to remove member <paramref name="id"/>.</summary>
    public Task<(int Status, ManagerAnswer Answer)> RemoveAsync(MemberId id, CancellationToken cancellationToken) =>
        StepAsync(
            input => MembershipPlanner.PlanRemove(input, id, options.Quorum),
            (client, leader, ct) => client.RemoveMemberAsync(leader, id.Value, ct),
            cancellationToken);

    private async Task<(int Status, ManagerAnswer Answer)> StepAsync(
        Func<MembershipInput, MembershipStep> plan,
        Func<InstanceApiClient, Uri, CancellationToken, Task<ManagerAnswer>> forward,
        CancellationToken cancellationToken)
    {
        var membership = await raft.MembershipAsync(cancellationToken).ConfigureAwait(false);
        if (membership.Role != RaftRole.Leader)
        {
            return await ForwardAsync(forward, cancellationToken).ConfigureAwait(false);
        }

        var reports = driver.Read((node, _) => node.PeerReports());
        var input = new MembershipInput(membership.Config, membership.ChangePending, membership.Commit, membership.Match, new MemberId(options.Id), raft.State.Primary, reports, options.Peers);
        var step = plan(input);
        Log.Step(logger, step.GetType().Name, step.Message);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(StepTimeout);
        switch (step)
        {
            case MembershipStep.Done inEffect:
                return (200, new ManagerAnswer(true, inEffect.Message, Done: true));
            case MembershipStep.InProgress progress:
                return (202, new ManagerAnswer(true, progress.Message, Done: false));
            case MembershipStep.Refused refused:
                return (refused.Status, new ManagerAnswer(false, refused.Message));
            case MembershipStep.HandOver handOver:
                try
                {
                    await raft.TransferLeadershipAsync(handOver.To, limit.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is TimeoutException or InvalidOperationException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    return (202, new ManagerAnswer(true, $"{handOver.Message} (the hand-over did not complete yet: {e.Message})", Done: false));
                }

                return (202, new ManagerAnswer(true, handOver.Message, Done: false));
            case MembershipStep.Change change:
                try
                {
                    await raft.ChangeMembershipAsync(change.Proposal, limit.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidOperationException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    return (202, new ManagerAnswer(true, $"{change.Message}: not committed yet ({e.Message}); ask again", Done: false));
                }

                // A removal is done once committed; an addition goes on until the member is a voter.
                var finished = change.Proposal.Type is MembershipChangeType.RemoveNode or MembershipChangeType.PromoteLearner;
                return (finished ? 200 : 202, new ManagerAnswer(true, $"{change.Message}: committed", Done: finished));
            default:
                return (500, new ManagerAnswer(false, $"no executor for {step.GetType().Name}"));
        }
    }

    private async Task<(int Status, ManagerAnswer Answer)> ForwardAsync(Func<InstanceApiClient, Uri, CancellationToken, Task<ManagerAnswer>> forward, CancellationToken cancellationToken)
    {
        var leader = raft.Leader;
        if (leader.IsNone || leader.Value == options.Id || directory.Find(leader.Value) is not { } peer)
        {
            return (503, new ManagerAnswer(false, "no Raft leader known right now; ask again"));
        }

        try
        {
            var answer = await forward(new InstanceApiClient(_http, key.Bytes, time), peer.HttpBase, cancellationToken).ConfigureAwait(false);
            return (answer.Done == true ? 200 : answer.Accepted ? 202 : 409, answer);
        }
        catch (InstanceApiException e)
        {
            return (502, new ManagerAnswer(false, $"forwarding to the Raft leader {peer.Name}: {e.Message}"));
        }
    }

    public void Dispose() => _http.Dispose();

    private static partial class Log
    {
        [LoggerMessage(160, LogLevel.Information, "membership: {Step}: {Message}")]
        public static partial void Step(ILogger logger, string step, string message);
    }
}
