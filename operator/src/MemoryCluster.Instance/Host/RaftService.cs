using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Raft;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>The shared cluster key (at least 32 bytes), read once at start.</summary>
internal sealed record ClusterKey(byte[] Bytes);

/// <summary>
/// Hosts this member's Raft voter over the control state, and tells the node whenever its role, term, leader or the
/// applied control state change (Raft wakes this on every applied batch: no polling). Refuses to start when the
/// configured members differ from the membership the Raft log already holds.
/// </summary>
internal sealed partial class RaftService : BackgroundService, IHostedLifecycleService
{
    /// <summary>Raft ticks: 50 ms, with a 10-tick election timeout (0.5–1 s) and 2-tick heartbeats.</summary>
    public static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(50);

    private readonly InstanceOptions _options;
    private readonly NodeDriver _driver;
    private readonly ILogger _logger;
    private readonly RaftHost<ControlState> _host;
    private readonly TimeProvider _time;

    public RaftService(InstanceOptions options, NodeDriver driver, MemberDirectory directory, ClusterKey key, TimeProvider time, ILogger<RaftService> logger)
    {
        _options = options;
        _time = time;
        _directory = directory;
        _driver = driver;
        _logger = logger;
        var id = new NodeId(options.Id);

        _founding = ReadFounding(options) ?? (options.Join ? [] : Founders);
        _host = new RaftHost<ControlState>(
            new RaftHostOptions
            {
                Id = id,

                // 50 ms ticks: a 500 ms election timeout and a 100 ms heartbeat. Shorter ticks elect faster but, on a
                // busy host, change leaders for nothing, and every change costs lease renewals.
                TickInterval = TickInterval,

                // IMPORTANT: the members the cluster was founded with (recorded at the first start), not the peers
                // setting of this start: a manager started with other flags neither votes nor counts quorums with
                // other members than those Raft holds. A member that joins founds nothing.
                InitialMembers = _founding,

                // A joiner answers the leader before the configuration that names everyone reaches it.
                SeedPeers = _founding.Count == 0 ? options.Peers.Where(p => p.Id != options.Id).ToDictionary(p => new NodeId(p.Id), p => p.RaftAddress) : new Dictionary<NodeId, string>(),
                TransportAddress = Peer.TransportAddressOf,

                // A lease renewal reads the control state (4 a second): the leader holding its Raft lease answers
                // without a heartbeat round, which halves the Raft messages of an idle cluster.
                LeaseReads = true,
                Log = (level, message) => Log.Raft(logger, ToLogLevel(level), message),
            },
            new ControlStateMachine(_founding),
            new FileRaftStorage(new FileRaftStorageOptions { Directory = options.RaftDirectory, Log = (level, m) => Log.Raft(logger, ToLogLevel(level), m) }),
            new TcpRaftTransport(new TcpRaftTransportOptions
            {
                Id = id,
                ListenAddress = options.ListenAddress is null ? options.Self.RaftAddress : $"{options.ListenHost}:{options.Self.RaftPort}",
                ClusterKey = key.Bytes,
                Log = (level, m) => Log.Raft(logger, ToLogLevel(level), m),
            }),
            time);
        driver.Handle<TransferLeadership>(t => _ = TransferAsync(t));
        driver.Handle<CampaignFirst>(c => _ = CampaignFirstAsync(c));
    }

    private readonly IReadOnlyList<Member> _founding;
    private readonly MemberDirectory _directory;

    private IReadOnlyList<Member> Configured => [.. _options.Peers.Select(p => new Member(new NodeId(p.Id), p.RaftAddress, true))];

    /// <summary>Whom a first start founds the cluster with: the founders among the peers (every peer when the setting names none).</summary>
    private IReadOnlyList<Member> Founders => [.. _options.FoundingPeers.Select(p => new Member(new NodeId(p.Id), p.RaftAddress, true))];

    private string FoundingFile => Path.Combine(_options.RaftDirectory, "members");

    /// <summary>The founding members recorded at the first start (none for a member that joined); null before any start.</summary>
    private static IReadOnlyList<Member>? ReadFounding(InstanceOptions options)
    {
        var file = Path.Combine(options.RaftDirectory, "members");
        if (!File.Exists(file))
        {
            return null;
        }

        var members = new List<Member>();
        foreach (var item in File.ReadAllText(file).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var at = item.IndexOf('@', StringComparison.Ordinal);
            if (at <= 0 || !ulong.TryParse(item[..at], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
            {
                throw new InvalidOperationException($"{file}: '{item}' is not ID@ADDRESS; the founding members cannot be read");
            }

            members.Add(new Member(new NodeId(id), item[(at + 1)..], true));
        }

        return members;
    }

    /// <summary>Who leads, as this member believes.</summary>
    public MemberId Leader => MemberId.FromNodeId(_host.Status.Leader);

    /// <summary>This member leads and holds its Raft leader lease now.</summary>
    public bool HoldsLease => _host.HoldsLease;

    public RaftStatus Status => _host.Status;

    /// <summary>The control state applied here (the committed membership among it); may be stale.</summary>
    public ControlState State => _host.State;

    public RaftHostCounters Counters => _host.Counters;

    /// <summary>The Raft host stopped (its storage failed): set once, never cleared.</summary>
    public Exception? Fault => _host.Fault;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await _host.StartAsync(cancellationToken).ConfigureAwait(false);
        CheckMembership();
        Observe();
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The membership is Raft's (founded with the first start's peers, changed only through <c>/members</c>); the peers
    /// setting only says where members are. A manager whose peers setting puts a member Raft holds at another address
    /// was started with the wrong peers (or the wrong data): it refuses to start. Peers Raft does not hold are not
    /// members (yet, or any more); members the setting does not list are known from Raft. A member that is not (yet)
    /// in the membership it holds waits to be added.
    /// </summary>
    private void CheckMembership()
    {
        var held = _host.Status.Members;
        var conflicts = MembershipPlanner.Conflicts(held, _options.Peers);
        if (conflicts.Count > 0)
        {
            throw new InvalidOperationException(
                $"peers: this manager was started with members [{Describe(Configured)}] but its Raft state in {_options.RaftDirectory} holds [{Describe(held)}] ({string.Join("; ", conflicts)}); refusing to start (membership changes go through Raft, not through flags)");
        }

        if (!File.Exists(FoundingFile))
        {
            // Written once, at the first start: empty for a member that joins.
            File.WriteAllText(FoundingFile, Describe(_founding) + "\n");
        }

        if (!held.Any(m => m.Id.Value == _options.Id))
        {
            Log.Raft(_logger, LogLevel.Information, $"not a member of the cluster (yet): waiting to be added (the membership held here: [{Describe(held)}])");
        }
    }

    private static string Describe(IEnumerable<Member> members) =>
        string.Join(", ", members.OrderBy(m => m.Id.Value).Select(m => $"{m.Id}@{m.Address}"));

    /// <summary>The membership, with each member's match index when this member leads.</summary>
    public Task<RaftMembership> MembershipAsync(CancellationToken cancellationToken) => _host.MembershipAsync(cancellationToken);

    /// <summary>Proposes one membership change on this member (the leader) and waits until it applies here.</summary>
    public Task ChangeMembershipAsync(MembershipChange change, CancellationToken cancellationToken) => _host.ChangeMembershipAsync(change, cancellationToken);

    /// <summary>Hands Raft leadership to <paramref name="target"/> and waits until it leads.</summary>
    public Task TransferLeadershipAsync(MemberId target, CancellationToken cancellationToken) => _host.TransferLeadershipAsync(target.ToNodeId(), cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var last = _host.Status;
        var lastState = _host.State;

        // IMPORTANT: the loop runs since StartAsync: what it changed between StartAsync's observation and the two
        // reads above (entries applied at start, a leader heard from) would otherwise never reach the node, which then
        // stays at the epoch it first saw (0 for a joining or restarted member) until some later change. Observe once
        // more after taking the baseline, so every change is either delivered here or wakes the wait below.
        Observe();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _host.WaitForAsync(s => s.Role != last.Role || s.Term != last.Term || s.Leader != last.Leader || !ReferenceEquals(_host.State, lastState), stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or IOException or UnauthorizedAccessException)
            {
                // The host failed: tell the node (it stops taking part) and stop watching.
                Log.Raft(_logger, LogLevel.Critical, $"the Raft host stopped: {e.Message}");
                Observe();
                return;
            }

            last = _host.Status;
            lastState = _host.State;
            Observe();
        }
    }

    private void Observe()
    {
        var status = _host.Status;
        var view = new RaftView(status.Role, status.Term, MemberId.FromNodeId(status.Leader), _host.HoldsLease, _host.Fault is not null,
            (long)status.PriorLeasesEndedBefore.TotalMilliseconds);
        var state = _host.State;

        // The directory first: what the node then asks for (a slot, a report) finds the members it names.
        _directory.Update(state.Members);
        _driver.Step(now => new RaftObserved(now, view, state));
    }

    /// <summary>A linearizable read of the control state (ReadIndex).</summary>
    public Task<ControlState> ReadAsync(CancellationToken cancellationToken) => _host.ReadAsync(cancellationToken);

    /// <summary>Proposes on this member, which must lead (in <paramref name="onlyInTerm"/> when given); the answer says whether the command applied.</summary>
    public async Task<ManagerAnswer> ProposeAsync(ControlCommand command, CancellationToken cancellationToken, Term? onlyInTerm = null) =>
        (await TryProposeAsync(command, cancellationToken, onlyInTerm).ConfigureAwait(false)).Answer;

    /// <summary>
    /// As <see cref="ProposeAsync"/>; <c>NotLeader</c> is true when the command was not appended because another member
    /// leads now (leadership moved between the caller's look and the proposal): the caller may send it to that leader.
    /// </summary>
    public async Task<(ManagerAnswer Answer, bool NotLeader)> TryProposeAsync(ControlCommand command, CancellationToken cancellationToken, Term? onlyInTerm = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        try
        {
            // Written in the control format every voter reads, and a change of primary stamped here with the wall
            // clock, where the command goes to the log: the core that decided it keeps only monotonic time.
            var applied = await _host.ProposeAsync(command.ForFormat(_host.State.Format, _time.GetUtcNow()).Encode(), onlyInTerm, cancellationToken).ConfigureAwait(false);
            return (applied.Outcome == ApplyOutcome.Applied
                ? new ManagerAnswer(true, $"{command.Type} applied", applied.State.Epoch)
                : new ManagerAnswer(false, $"{command.Type} refused by the control state: {applied.Outcome} {applied.Reason}".TrimEnd(), applied.State.Epoch), false);
        }
        catch (NotLeaderException e)
        {
            return (new ManagerAnswer(false, e.Message), true);
        }
        catch (Exception e) when (e is ProposalLostException or InvalidOperationException)
        {
            return (new ManagerAnswer(false, e.Message), false);
        }
    }

    private async Task TransferAsync(TransferLeadership transfer)
    {
        Log.Raft(_logger, LogLevel.Information, transfer.Why);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _host.TransferLeadershipAsync(transfer.Target.ToNodeId(), limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or OperationCanceledException)
        {
            Log.Raft(_logger, LogLevel.Warning, $"handing Raft leadership to {_directory.Find(transfer.Target.Value)?.Name}: {e.Message}");
        }
    }

    private async Task CampaignFirstAsync(CampaignFirst campaign)
    {
        try
        {
            await _host.SetCampaignsFirstAsync(campaign.First, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or OperationCanceledException)
        {
            // The host failed or is stopping: the node hears of a failure through the next observation.
            Log.Raft(_logger, LogLevel.Warning, $"setting the election priority: {e.Message}");
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>How long a stopping primary waits for the switchover it asked for (well inside the host's 30 s shutdown timeout and a pod's 60 s grace).</summary>
    public static readonly TimeSpan StopSwitchoverWait = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Before any service stops (the HTTP server, which serves renewals, included): a primary taking writes asks for a
    /// switchover and, everything still running, waits (bounded) until the node says the stop may proceed; then a leader
    /// hands Raft leadership on, to whom the node chooses, and waits for it a little while, so that the primary's
    /// renewals go on. Both decisions are the node's.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_driver.Read((node, _) => node.StopWantsFreshReports))
        {
            await ReadReportsAfreshAsync(cancellationToken).ConfigureAwait(false);
        }

        var actions = _driver.Step(now => new StopRequested(now));
        if (_driver.Read((node, _) => node.StopHandOverAsked))
        {
            await WaitForStopHandOverAsync(cancellationToken).ConfigureAwait(false);

            // The second request: the node now hands Raft leadership on, if this member still leads.
            actions = _driver.Step(now => new StopRequested(now));
        }

        if (!actions.OfType<TransferLeadership>().Any())
        {
            return;
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await _host.WaitForAsync(s => s.Role != RaftRole.Leader, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Log.Raft(_logger, LogLevel.Warning, "stopping while still the Raft leader: the hand-over did not complete within 2 s");
        }
    }

    /// <summary>Has every other member's report read again, and waits (up to 1 s: a status read gives up after 800 ms) until the node has taken them in.</summary>
    private async Task ReadReportsAfreshAsync(CancellationToken cancellationToken)
    {
        var since = _driver.NowMs;
        _driver.PollPeersNow();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!_driver.Read((node, _) => node.HeardFromPeersSince(since)) && watch.Elapsed < TimeSpan.FromSeconds(1) && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Polls the node (every 20 ms, as a switchover polls its target) until it says the stop may proceed, for at most <see cref="StopSwitchoverWait"/>.</summary>
    private async Task WaitForStopHandOverAsync(CancellationToken cancellationToken)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        string? waiting;
        while ((waiting = _driver.Read((node, _) => node.StopWaitingFor)) is not null && watch.Elapsed < StopSwitchoverWait && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (waiting is null)
        {
            Log.Raft(_logger, LogLevel.Information, $"the switchover asked on stop is over after {watch.ElapsedMilliseconds} ms (epoch {_driver.Read((node, _) => node.Control.Epoch)}); stopping");
        }
        else
        {
            Log.Raft(_logger, LogLevel.Warning, $"stopping after {watch.ElapsedMilliseconds} ms although the switchover asked on stop is not over: waiting for {waiting}");
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await _host.DisposeAsync().ConfigureAwait(false);
    }

    private static LogLevel ToLogLevel(RaftLogLevel level) => level switch
    {
        RaftLogLevel.Debug => LogLevel.Debug,
        RaftLogLevel.Information => LogLevel.Information,
        RaftLogLevel.Warning => LogLevel.Warning,
        RaftLogLevel.Critical => LogLevel.Critical,
        _ => LogLevel.Information,
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 140, Message = "raft: {Message}")]
        public static partial void Raft(ILogger logger, LogLevel level, string message);
    }
}
