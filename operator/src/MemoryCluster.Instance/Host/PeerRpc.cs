using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// What crosses between managers over HTTP: every other member's report, read as often as the node asks (each member
/// on its own loop, so a hung one slows nothing); lease renewals to the Raft leader (granted here when this member
/// leads); the leader's side of a renewal; proposals, forwarded to the leader when this member does not lead.
/// </summary>
internal sealed partial class PeerRpc : BackgroundService
{
    private readonly InstanceOptions _options;
    private readonly NodeDriver _driver;
    private readonly RaftService _raft;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _statusHttp = new() { Timeout = TimeSpan.FromMilliseconds(800) };
    private readonly HttpClient _leaseHttp;
    private readonly HttpClient _proposeHttp = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly InstanceApiClient _status;
    private readonly InstanceApiClient _lease;
    private readonly InstanceApiClient _propose;
    private readonly byte[] _clusterKey;
    private readonly CancellationTokenSource _stopping = new();
    private readonly MemberDirectory _directory;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, SemaphoreSlim> _pollNow = new();
    private long _nextRequest;

    public PeerRpc(InstanceOptions options, NodeDriver driver, RaftService raft, MemberDirectory directory, ClusterKey key, TimeProvider time, ILogger<PeerRpc> logger)
    {
        _options = options;
        _directory = directory;
        _driver = driver;
        _raft = raft;
        _time = time;
        _logger = logger;
        _clusterKey = key.Bytes;
        _leaseHttp = new HttpClient { Timeout = options.Lease.RenewalTimeout };
        _status = new InstanceApiClient(_statusHttp);
        _lease = new InstanceApiClient(_leaseHttp, _clusterKey);
        _propose = new InstanceApiClient(_proposeHttp, _clusterKey);
        driver.Handle<RequestRenewal>(r => _ = RenewAsync(r));
        driver.Handle<Propose>(p => _ = ProposeAsync(p));

        driver.Handle<AnnounceFenced>(f => _ = AnnounceAsync(f.Epoch));
        driver.Handle<AnnounceDetach>(d => _ = AnnounceAsync(d.Epoch));
        driver.Quickened += PollAllNow;

        // Answers are taken from the step's own actions by whoever asked (GrantAsync).
        driver.Handle<AnswerRenewal>(_ => { });
    }

    /// <summary>One poll loop per other member of the membership: started when a member is added, ended when it is removed.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var link = stoppingToken.Register(_stopping.Cancel);
        var loops = new Dictionary<Peer, (CancellationTokenSource Stop, Task Loop)>();
        using var changed = new SemaphoreSlim(0, 1);
        void Wake()
        {
            try
            {
                changed.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already woken.
            }
        }

        _directory.Changed += Wake;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var others = _directory.Others;
                foreach (var (peer, (stop, _)) in loops.Where(l => !others.Contains(l.Key)).ToList())
                {
                    await stop.CancelAsync().ConfigureAwait(false);
                    await loops[peer].Loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    stop.Dispose();
                    loops.Remove(peer);
                    _pollNow.TryRemove(peer.Id, out _);
                }

                foreach (var peer in others.Where(p => !loops.ContainsKey(p)))
                {
                    var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    _pollNow.TryAdd(peer.Id, new SemaphoreSlim(0, 1));
                    loops[peer] = (stop, PollLoopAsync(peer, stop.Token));
                }

                await changed.WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            _directory.Changed -= Wake;
            await Task.WhenAll(loops.Values.Select(l => l.Loop)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            foreach (var (stop, _) in loops.Values)
            {
                stop.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads every other member's report now, each member's PostgreSQL queried before it answers, and hands them to
    /// the node: a switchover request is checked against reports read after it arrived, not up to a poll interval old
    /// (a replica stopped a moment ago still looks ready in the last one).
    /// </summary>
    public Task ReadReportsNowAsync(CancellationToken ct) =>
        Task.WhenAll(_directory.Others.Select(peer => ReadReportAsync(peer, fresh: true, ct)));

    private async Task ReadReportAsync(Peer peer, bool fresh, CancellationToken ct)
    {
        var asked = _driver.NowMs;
        var status = await _status.TryStatusAsync(peer.HttpBase, ct, fresh).ConfigureAwait(false);
        if (ct.IsCancellationRequested)
        {
            // Cancelled, not unanswered: nothing was learnt about the member.
            return;
        }

        var id = new MemberId(peer.Id);
        var view = status is null || status.Id != peer.Id ? PeerView.Unreachable(id) : InstanceJson.ToPeerView(status, id, asked);
        _driver.Step(now => new PeerObserved(now, view, asked));
    }

    private async Task PollLoopAsync(Peer peer, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await ReadReportAsync(peer, _driver.Read((node, _) => node.WantsFreshReports), ct).ConfigureAwait(false);
            var interval = TimeSpan.FromMilliseconds(_driver.Read((node, _) => node.PeerPollIntervalMs));
            try
            {
                // The next read after the interval, or at once when a member announced it fenced itself.
                if (_pollNow.TryGetValue(peer.Id, out var kick))
                {
                    await kick.WaitAsync(interval, ct).ConfigureAwait(false);
                }
                else
                {
                    await Task.Delay(interval, _time, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Tells every other member to read the reports at once: this one fenced itself, or (as the Raft leader) asks the
    /// replicas to stop streaming from the primary of <paramref name="epoch"/>. Best effort: the notice proves nothing,
    /// the report read then does.
    /// </summary>
    private async Task AnnounceAsync(Epoch epoch)
    {
        var self = new MemberId(_options.Id);
        await Task.WhenAll(_directory.Others.Select(async peer =>
        {
            try
            {
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                limit.CancelAfter(_options.Lease.RetryInterval * 2);
                await _lease.AnnounceFencedAsync(peer.HttpBase, self, epoch, limit.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InstanceApiException or OperationCanceledException)
            {
                // The peer reads this member's report on its own schedule anyway.
            }
        })).ConfigureAwait(false);
    }

    /// <summary>
    /// Handles <c>POST /internal/fenced</c> (<c>ID EPOCH</c>, signed): reads every member's report now, the fenced
    /// one's and the replicas' the leader then needs; also sent by a Raft leader that asks the replicas to stop
    /// streaming from a failed primary (its report says so). The notice itself changes nothing else.
    /// </summary>
    public Task<ManagerAnswer> AcceptFencedNoticeAsync(string body, string? signature, CancellationToken cancellationToken)
    {
        if (Unsigned(InstanceApiClient.FencedPurpose, body, signature) is { } refused)
        {
            return Task.FromResult(refused);
        }

        if (!InstanceApiClient.TryParseLeaseBody(body, out var member, out _) || !_pollNow.ContainsKey(member.Value))
        {
            return Task.FromResult(new ManagerAnswer(false, "malformed fence notice: expected 'ID EPOCH' of another member"));
        }

        PollAllNow();
        return Task.FromResult(new ManagerAnswer(true, "reading reports now"));
    }

    /// <summary>The refusal of a request between managers that the cluster key did not sign (logged); null when signed.</summary>
    private ManagerAnswer? Unsigned(string purpose, string body, string? signature)
    {
        if (InstanceApiClient.Verify(_clusterKey, purpose, body, signature))
        {
            return null;
        }

        Log.BadSignature(_logger, purpose);
        return new ManagerAnswer(false, "bad or missing signature");
    }

    /// <summary>Wakes every poll loop: each reads its member's report now, then waits the node's current interval.</summary>
    private void PollAllNow()
    {
        foreach (var kick in _pollNow.Values)
        {
            try
            {
                kick.Release();
            }
            catch (SemaphoreFullException)
            {
                // A read is already due.
            }
        }
    }

    /// <summary>Asks the Raft leader for a renewal; the send time is stamped just before the request leaves.</summary>
    private async Task RenewAsync(RequestRenewal request)
    {
        var sentAt = _driver.NowMs;
        ManagerAnswer answer;
        var leader = _raft.Leader;
        try
        {
            if (leader.IsNone)
            {
                answer = new ManagerAnswer(false, "no Raft leader known");
            }
            else if (leader.Value == _options.Id)
            {
                // Bounded like a remote renewal: a read that cannot reach a quorum ends when it could no longer help.
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                limit.CancelAfter(_options.Lease.RenewalTimeout);
                answer = await GrantAsync(new MemberId(_options.Id), request.Epoch, limit.Token).ConfigureAwait(false);
            }
            else
            {
                var peer = _directory.Find(leader.Value) ?? throw new InstanceApiException($"the Raft leader {leader} is not in the membership known here");
                answer = await _lease.RenewAsync(peer.HttpBase, new MemberId(_options.Id), request.Epoch, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InstanceApiException || (e is OperationCanceledException && !_stopping.IsCancellationRequested))
        {
            answer = new ManagerAnswer(false, $"asking the Raft leader: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            return;
        }

        _driver.Step(now => new LeaseAnswered(now, request.Id, request.Epoch, sentAt, answer.Accepted, answer.Message));
    }

    /// <summary>
    /// The leader's side of a renewal: a linearizable read, then the node decides with the Raft lease sampled in the
    /// same step. A member that does not lead refuses.
    /// </summary>
    public async Task<ManagerAnswer> GrantAsync(MemberId from, Epoch epoch, CancellationToken cancellationToken)
    {
        ControlState? state = null;
        string? error = null;
        try
        {
            state = await _raft.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException || (e is OperationCanceledException && !_stopping.IsCancellationRequested))
        {
            error = e.Message;
        }

        var requestId = Interlocked.Increment(ref _nextRequest);
        var actions = _driver.Step(now => new RenewalRequested(now, requestId, from, epoch, state, _raft.HoldsLease, error));
        var answer = actions.OfType<AnswerRenewal>().FirstOrDefault(a => a.RequestId == requestId);
        return answer is null ? new ManagerAnswer(false, "the node gave no answer") : new ManagerAnswer(answer.Granted, answer.Why, answer.Epoch);
    }

    /// <summary>Handles <c>POST /internal/lease</c>: <c>ID EPOCH</c>, signed with the cluster key.</summary>
    public Task<ManagerAnswer> AcceptLeaseRequestAsync(string body, string? signature, CancellationToken cancellationToken)
    {
        if (Unsigned(InstanceApiClient.LeasePurpose, body, signature) is { } refused)
        {
            return Task.FromResult(refused);
        }

        return InstanceApiClient.TryParseLeaseBody(body, out var member, out var epoch)
            ? GrantAsync(member, epoch, cancellationToken)
            : Task.FromResult(new ManagerAnswer(false, "malformed lease request: expected 'ID EPOCH'"));
    }

    /// <summary>Handles <c>POST /internal/propose</c>: a control command (base64), signed with the cluster key.</summary>
    public async Task<ManagerAnswer> AcceptForwardedProposalAsync(string body, string? signature, CancellationToken cancellationToken)
    {
        if (Unsigned(InstanceApiClient.ProposePurpose, body, signature) is { } refused)
        {
            return refused;
        }

        ControlCommand command;
        try
        {
            command = ControlCommand.Decode(Convert.FromBase64String(body));
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidDataException)
        {
            return new ManagerAnswer(false, $"malformed command: {e.Message}");
        }

        return await ProposeHereOrForwardAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Proposes on the Raft leader: here when this member leads, else through the leader's manager. Leadership on the
    /// move (no leader yet, or this member lost it before appending) is waited out for up to
    /// <see cref="LeaderMoveWait"/>: nothing was written, so trying again cannot apply the command twice.
    /// </summary>
    public async Task<ManagerAnswer> ProposeHereOrForwardAsync(ControlCommand command, CancellationToken cancellationToken)
    {
        var deadline = _time.GetTimestamp() + (long)(LeaderMoveWait.TotalSeconds * _time.TimestampFrequency);
        while (true)
        {
            var leader = _raft.Leader;
            ManagerAnswer answer;
            if (leader.IsNone)
            {
                answer = new ManagerAnswer(false, "no Raft leader right now; try again");
            }
            else if (leader.Value == _options.Id)
            {
                (answer, var notLeader) = await _raft.TryProposeAsync(command, cancellationToken).ConfigureAwait(false);
                if (!notLeader)
                {
                    return answer;
                }
            }
            else
            {
                try
                {
                    var peer = _directory.Find(leader.Value) ?? throw new InstanceApiException($"the Raft leader {leader} is not in the membership known here");
                    return await _propose.ForwardProposalAsync(peer.HttpBase, command, cancellationToken).ConfigureAwait(false);
                }
                catch (InstanceApiException e)
                {
                    // IMPORTANT: not retried: the leader may have appended it before the answer was lost.
                    return new ManagerAnswer(false, $"forwarding to the Raft leader: {e.Message}");
                }
            }

            if (_time.GetTimestamp() >= deadline)
            {
                return answer;
            }

            await Task.Delay(RaftService.TickInterval, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How long a proposal waits for leadership to settle: two election timeouts.</summary>
    public static readonly TimeSpan LeaderMoveWait = TimeSpan.FromSeconds(2);

    private async Task ProposeAsync(Propose propose)
    {
        ManagerAnswer answer;
        try
        {
            answer = propose.OnlyAsLeaderInTerm is { } term
                ? await _raft.ProposeAsync(propose.Command, _stopping.Token, term).ConfigureAwait(false)
                : await ProposeHereOrForwardAsync(propose.Command, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        _driver.Step(now => new ProposalDone(now, propose.Id, answer.Accepted, answer.Message));
    }

    public override void Dispose()
    {
        _stopping.Dispose();
        _statusHttp.Dispose();
        _leaseHttp.Dispose();
        _proposeHttp.Dispose();
        foreach (var kick in _pollNow.Values)
        {
            kick.Dispose();
        }

        base.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(130, LogLevel.Warning, "refused a {Purpose} request with a bad or missing signature")]
        public static partial void BadSignature(ILogger logger, string purpose);
    }
}
