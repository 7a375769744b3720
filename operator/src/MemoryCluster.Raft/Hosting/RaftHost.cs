using System.Globalization;
using System.Text;

namespace MemoryCluster.Raft;

/// <summary>
/// Runs one Raft node: the core on a single loop, ticks from a <see cref="TimeProvider"/>, persistence and
/// sending per Ready (persist, then send), committed entries applied to the caller's state machine.
/// Commands are opaque bytes to Raft: the caller encodes them, and its state machine decodes them.
/// </summary>
/// <typeparam name="TState">The state machine's immutable state, published after every apply.</typeparam>
public sealed class RaftHost<TState> : IAsyncDisposable
    where TState : class
{
    private const int MaxInboundQueued = 10_000;

    private readonly RaftHostOptions _options;
    private readonly IRaftStorage _storage;
    private readonly IRaftTransport _transport;
    private readonly TimeProvider _time;
    private readonly Mailbox _inbox = new();
    private readonly IStateMachine<TState> _stateMachine;
    private readonly Dictionary<LogIndex, PendingEntry> _pendingEntries = [];
    private readonly Dictionary<ulong, (Term Term, TaskCompletionSource<TState> Done)> _pendingReads = [];
    private readonly List<(LogIndex Index, TaskCompletionSource<TState> Done)> _readsAwaitingApply = [];
    private readonly List<(Func<RawNode, bool> Condition, TaskCompletionSource Done)> _waiters = [];
    private readonly long[] _tickTimestamps;
    private readonly CancellationTokenSource _stop = new();
    private RawNode? _node;
    private Task? _loop;
    private int _inboundQueued;
    private ulong _nextReadContext;
    private LogIndex _peersConfigIndex = new(ulong.MaxValue);
    private RaftRole _lastRole;
    private volatile RaftStatus? _status;
    private volatile TState _state;
    private volatile Exception? _fault;

    /// <summary>Creates a host; nothing runs until <see cref="StartAsync"/>.</summary>
    /// <param name="options">The node's identity, founding members and timings.</param>
    /// <param name="stateMachine">
    /// The state machine committed entries are applied to, in its state before any entry (e.g. knowing the
    /// founding members). The host owns it from here on: only the host's loop may call it.
    /// </param>
    /// <param name="storage">Durable storage; the host disposes of it.</param>
    /// <param name="transport">The transport to the other members; the host disposes of it.</param>
    /// <param name="timeProvider">The clock for ticks and leases (the system's by default).</param>
    public RaftHost(RaftHostOptions options, IStateMachine<TState> stateMachine, IRaftStorage storage, IRaftTransport transport, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(stateMachine);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(transport);
        if (options.TickInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("TickInterval must be positive.", nameof(options));
        }

        _options = options;
        _storage = storage;
        _transport = transport;
        _time = timeProvider ?? TimeProvider.System;
        _tickTimestamps = new long[Math.Max(64, options.ElectionTicks * 4)];
        _stateMachine = stateMachine;
        _state = _stateMachine.Current;
    }

    public NodeId Id => _options.Id;

    public RaftHostCounters Counters { get; } = new();

    /// <summary>The latest status (updated by the loop after every step).</summary>
    public RaftStatus Status => _status ?? new RaftStatus(_options.Id, RaftRole.Unknown, Term.Zero, NodeId.None, LogIndex.Zero, LogIndex.Zero, [], null, false);

    /// <summary>The locally applied state; may be stale. Use <see cref="ReadAsync"/> for a linearizable read.</summary>
    public TState State => _state;

    /// <summary>
    /// Why the host stopped taking part (storage failed, or the core found an impossible state); null while it
    /// runs. Once set, every request fails and the node must be restarted.
    /// </summary>
    public Exception? Fault => _fault;

    /// <summary>Whether this node holds the leader lease right now (on the host's monotonic clock).</summary>
    public bool HoldsLease => _status is { LeaseValidUntilTimestamp: { } until } && _time.GetTimestamp() < until;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var persisted = _storage.Load();
        _node = new RawNode(
            new RaftOptions
            {
                Id = _options.Id,
                ElectionTicks = _options.ElectionTicks,
                HeartbeatTicks = _options.HeartbeatTicks,
                ClockDriftBound = _options.ClockDriftBound,
                InitialMembers = _options.InitialMembers,
                RandomSeed = Random.Shared.Next(),
            },
            persisted);
        if (persisted.Snapshot is not null)
        {
            _stateMachine.Restore(persisted.Snapshot);
            _state = _stateMachine.Current;
        }

        UpdatePeers();
        PublishStatus();
        await _transport.StartAsync(Receive, cancellationToken).ConfigureAwait(false);
        _loop = StartLoop(_stop.Token);
    }

    // ---------------------------------------------------------------- public requests

    /// <summary>
    /// Proposes an encoded command on the leader and returns once it is applied here, with the outcome the
    /// state machine gave it and the state after it.
    /// </summary>
    public Task<ApplyResult<TState>> ProposeAsync(byte[] command, CancellationToken cancellationToken) => ProposeAsync(command, null, cancellationToken);

    /// <summary>
    /// Proposes a command on the leader and returns once it is applied here; with <paramref name="onlyInTerm"/>, only
    /// while this node leads in that term (else <see cref="NotLeaderException"/>): a decision this leader made from
    /// what it knew in that term is never committed in another leader's term. A leadership transfer under way is
    /// waited out (at most an election timeout): then the command is proposed, or NotLeader says who leads now.
    /// </summary>
    public async Task<ApplyResult<TState>> ProposeAsync(byte[] command, Term? onlyInTerm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);

        // The log keeps the bytes: a copy, so that a caller reusing its buffer cannot change a proposed entry.
        var data = (byte[])command.Clone();
        return await ProposeWhenFreeAsync(node =>
        {
            if (onlyInTerm is { } term && (node.Role != RaftRole.Leader || node.Term != term))
            {
                throw new NotLeaderException(node.Leader, $"not the leader in term {term} any more (term {node.Term}, {node.Role})");
            }

            var (index, refusal) = node.Propose(data);

            // A leadership transfer under way ends within an election timeout (the target leads, or the core
            // abandons it): wait it out rather than refuse, so that a caller meets a leader or a NotLeader.
            if (refusal == RaftRefusal.TransferInProgress)
            {
                return null;
            }

            Counters.Proposed.Add();
            return Track(node, index, refusal);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="propose"/> on the loop until it proposes (returns what tracks the entry; null: the core is
    /// busy and refused, nothing was appended), once a tick, and waits until the entry is applied here.
    /// </summary>
    private async Task<ApplyResult<TState>> ProposeWhenFreeAsync(Func<RawNode, TaskCompletionSource<ApplyResult<TState>>?> propose, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await OnLoopAsync(propose, cancellationToken).ConfigureAwait(false) is { } done)
            {
                return await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            await Task.Delay(_options.TickInterval, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A linearizable read (ReadIndex), on the leader or on a follower (which asks the leader): the state once
    /// this node has applied the index the leader confirmed with a quorum (or, with <see cref="RaftHostOptions.LeaseReads"/>,
    /// by holding its lease).
    /// </summary>
    public async Task<TState> ReadAsync(CancellationToken cancellationToken)
    {
        var done = await OnLoopAsync(node =>
        {
            var context = ++_nextReadContext;
            var refusal = node.ReadIndex(context, _options.LeaseReads && LeaseHeldNow(node));
            if (refusal != RaftRefusal.None)
            {
                throw new NotLeaderException(node.Leader, $"read refused: {refusal}");
            }

            var tcs = new TaskCompletionSource<TState>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pendingReads[context] = (node.Term, tcs);
            return tcs;
        }, cancellationToken).ConfigureAwait(false);
        return await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hands leadership to <paramref name="target"/> and waits until it leads.</summary>
    public async Task TransferLeadershipAsync(NodeId target, CancellationToken cancellationToken)
    {
        var done = await OnLoopAsync(node =>
        {
            var refusal = node.TransferLeadership(target);
            if (refusal != RaftRefusal.None)
            {
                throw refusal == RaftRefusal.NotLeader
                    ? new NotLeaderException(node.Leader, "transfer refused: not the leader")
                    : new InvalidOperationException($"transfer to {target} refused: {refusal}");
            }

            // Over when the target leads, or when the transfer ended and some leader is known: an abandoned transfer
            // steps this leader down, and the election after it may be won by any member.
            return Wait(n => n.Leader == target || (n.TransferTarget.IsNone && !n.Leader.IsNone));
        }, cancellationToken).ConfigureAwait(false);
        await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        var status = Status;
        if (status.Leader != target)
        {
            throw new TimeoutException($"leadership transfer to {target} was abandoned; leader is {status.Leader}");
        }
    }

    /// <summary>Adds a voter the safe way: as a learner, then promoted once it has caught up.</summary>
    public async Task AddVoterAsync(NodeId id, string address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        await ChangeMembershipAsync(new MembershipChange(MembershipChangeType.AddLearner, id, address), cancellationToken).ConfigureAwait(false);
        await ChangeMembershipAsync(new MembershipChange(MembershipChangeType.PromoteLearner, id), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a member (voter or learner); its id is never reused.</summary>
    public Task RemoveMemberAsync(NodeId id, CancellationToken cancellationToken) =>
        ChangeMembershipAsync(new MembershipChange(MembershipChangeType.RemoveNode, id), cancellationToken);

    /// <summary>Proposes one membership change, retrying while the cluster is busy, and waits until it is applied here.</summary>
    public async Task ChangeMembershipAsync(MembershipChange change, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change);
        await ProposeWhenFreeAsync(node =>
        {
            if (node.Role == RaftRole.Leader && AlreadyInEffect(node, change))
            {
                // Idempotent: a retried call after a lost answer succeeds once the change is committed.
                var settled = new TaskCompletionSource<ApplyResult<TState>>();
                settled.SetResult(new ApplyResult<TState>(ApplyOutcome.Applied, _stateMachine.Current));
                return settled;
            }

            var (index, refusal) = node.ProposeMembershipChange(change);
            return refusal is RaftRefusal.ChangeInProgress or RaftRefusal.NoCommitInCurrentTerm or RaftRefusal.LearnerNotCaughtUp or RaftRefusal.TransferInProgress
                ? null
                : Track(node, index, refusal);
        }, cancellationToken).ConfigureAwait(false);
    }

    private static bool AlreadyInEffect(RawNode node, MembershipChange change)
    {
        if (node.ConfigIndex > node.Commit)
        {
            return false;
        }

        var member = node.Config.Find(change.Node);
        return change.Type switch
        {
            MembershipChangeType.AddLearner => member is not null && member.Address == change.Address,
            MembershipChangeType.PromoteLearner => member is { IsVoter: true },
            MembershipChangeType.RemoveNode => member is null && node.Config.RetiredIds.Contains(change.Node),
            _ => false,
        };
    }

    /// <summary>The membership and, on the leader, each member's match index, read on the loop.</summary>
    public Task<RaftMembership> MembershipAsync(CancellationToken cancellationToken) =>
        OnLoopAsync(node => new RaftMembership(
            node.Role,
            node.Config,
            node.ConfigIndex,
            node.Commit,
            node.Role == RaftRole.Leader
                ? node.Config.Members.ToDictionary(m => m.Id, m => m.Id == node.Id ? node.LastIndex : node.MatchOf(m.Id))
                : new Dictionary<NodeId, LogIndex>()), cancellationToken);

    /// <summary>Makes this node campaign first when the leader goes silent, or not (<see cref="RawNode.SetCampaignsFirst"/>).</summary>
    public Task SetCampaignsFirstAsync(bool first, CancellationToken cancellationToken) =>
        OnLoopAsync(node =>
        {
            node.SetCampaignsFirst(first);
            return true;
        }, cancellationToken);

    /// <summary>Waits until <paramref name="condition"/> holds for this node's status.</summary>
    public async Task WaitForAsync(Func<RaftStatus, bool> condition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var done = await OnLoopAsync(_ => Wait(_ => condition(Status)), cancellationToken).ConfigureAwait(false);
        await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The counters in Prometheus text format.</summary>
    public string ToPrometheus(TransportCounters? transport = null)
    {
        var s = Status;
        var sb = new StringBuilder();
        void Line(string name, double value, string help)
        {
            sb.Append(CultureInfo.InvariantCulture, $"# HELP memorycluster_raft_{name} {help}\n");
            sb.Append(CultureInfo.InvariantCulture, $"memorycluster_raft_{name}{{node=\"{s.Id}\"}} {value}\n");
        }

        Line("term", s.Term.Value, "Current term.");
        Line("is_leader", s.Role == RaftRole.Leader ? 1 : 0, "1 when this node leads.");
        Line("holds_lease", HoldsLease ? 1 : 0, "1 when this node holds the leader lease.");
        Line("commit_index", s.Commit.Value, "Commit index.");
        Line("applied_index", s.Applied.Value, "Applied index.");
        Line("ticks_total", Counters.Ticks, "Ticks.");
        Line("messages_stepped_total", Counters.MessagesStepped, "Messages received and stepped.");
        Line("proposals_total", Counters.Proposals, "Proposals.");
        Line("entries_applied_total", Counters.EntriesApplied, "Entries applied.");
        Line("became_leader_total", Counters.TimesBecameLeader, "Times this node became leader.");
        Line("snapshots_total", Counters.SnapshotsTaken, "Snapshots taken.");
        Line("inbound_dropped_total", Counters.InboundMessagesDropped, "Inbound messages dropped because the loop was behind.");
        if (transport is not null)
        {
            Line("transport_sent_total", transport.MessagesSent, "Messages sent.");
            Line("transport_received_total", transport.MessagesReceived, "Messages received.");
            Line("transport_dropped_total", transport.MessagesDropped, "Messages dropped (queue full or peer unknown).");
            Line("transport_frames_rejected_total", transport.FramesRejected, "Frames rejected (MAC, counter, size, content).");
            Line("transport_handshakes_rejected_total", transport.HandshakesRejected, "Handshakes rejected (wrong key or target).");
        }

        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _inbox.Close();
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
        }

        await _transport.DisposeAsync().ConfigureAwait(false);
        FailAll(new ObjectDisposedException(nameof(RaftHost<TState>)));
        _inbox.Dispose();
        _storage.Dispose();
        _stop.Dispose();
    }

    // ---------------------------------------------------------------- the loop

    private void Receive(Message message)
    {
        // Bounded: a flood of (authenticated) messages is dropped rather than queued without limit.
        if (Interlocked.Increment(ref _inboundQueued) > MaxInboundQueued)
        {
            Interlocked.Decrement(ref _inboundQueued);
            Counters.InboundDropped.Add();
            return;
        }

        Post(() =>
        {
            Interlocked.Decrement(ref _inboundQueued);
            Counters.Stepped.Add();
            _node!.Step(message);
        });
    }

    private void Post(Action action)
    {
        if (!_inbox.TryPost(action))
        {
            // Stopped: late messages are dropped.
        }
    }

    private async Task<T> OnLoopAsync<T>(Func<RawNode, T> action, CancellationToken cancellationToken)
    {
        if (_fault is not null)
        {
            throw new InvalidOperationException("The Raft host has failed.", _fault);
        }

        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try
            {
                tcs.TrySetResult(action(_node!));
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                tcs.TrySetException(e);
            }
        });
        return await tcs.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private TaskCompletionSource<ApplyResult<TState>> Track(RawNode node, LogIndex index, RaftRefusal refusal)
    {
        if (refusal == RaftRefusal.NotLeader)
        {
            throw new NotLeaderException(node.Leader, "not the leader");
        }

        if (refusal != RaftRefusal.None)
        {
            throw new ProposalRefusedException(refusal);
        }

        var tcs = new TaskCompletionSource<ApplyResult<TState>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pendingEntries[index] = new PendingEntry(node.Term, tcs);
        return tcs;
    }

    private TaskCompletionSource Wait(Func<RawNode, bool> condition)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters.Add((condition, tcs));
        return tcs;
    }

    private void Tick(RawNode node)
    {
        node.Tick();
        _tickTimestamps[node.TickCount % _tickTimestamps.Length] = _time.GetTimestamp();
        Counters.TickCounter.Add();
    }

    /// <summary>Runs the loop on a thread of its own; the task completes when the loop ends.</summary>
    private Task StartLoop(CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                RunLoop(ct);
                done.TrySetResult();
            }
            catch (Exception e)
            {
                // Seen by DisposeAsync, as an exception of the loop's task was before it had a thread of its own.
                _fault ??= e;
                done.TrySetException(e);
            }
        })
        {
            IsBackground = true,
            Name = $"raft {_options.Id}",
        };
        thread.Start();
        return done.Task;
    }

    /// <summary>
    /// The loop: ticks when a tick is due, then runs what was posted, and sleeps until the next tick or post. One
    /// thread wakes per tick, not a timer's and then the loop's. After a stall the next tick is an interval away
    /// (ticks never bunch up, which the lease relies on).
    /// </summary>
    private void RunLoop(CancellationToken ct)
    {
        var batch = new List<Action>(256);
        var interval = (long)(_options.TickInterval.TotalSeconds * _time.TimestampFrequency);
        var nextTick = _time.GetTimestamp() + interval;
        try
        {
            while (true)
            {
                var now = _time.GetTimestamp();
                if (now >= nextTick)
                {
                    nextTick = Math.Max(nextTick + interval, now + (interval / 2));
                    Tick(_node!);
                    Process();
                }

                var waitMs = (int)Math.Ceiling((nextTick - _time.GetTimestamp()) * 1000.0 / _time.TimestampFrequency);
                if (!_inbox.WaitAndTake(batch, 256, Math.Max(0, waitMs), ct))
                {
                    break;
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                foreach (var action in batch)
                {
                    action();
                }

                Process();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            // IMPORTANT: storage failed (or the core found an impossible state). Crash-only: stop taking part,
            // never continue with state that may not be durable.
            _fault = e;
            _options.Log?.Invoke(RaftLogLevel.Critical, $"raft host {_options.Id} stopped: {e}");
            FailAll(e);
        }
    }

    private void Process()
    {
        var node = _node!;
        var rounds = ReadyProcessor.Drain(node, _storage, _stateMachine, _transport.Send, OnApplied, OnReadState);
        Counters.Readies.Add(rounds);
        _state = _stateMachine.Current;
        if (node.Applied.Value - node.SnapshotIndex.Value >= (ulong)_options.SnapshotEvery)
        {
            var snapshot = node.Compact(node.Applied, _stateMachine.TakeSnapshot());
            _storage.Compact(snapshot);
            Counters.Snapshots.Add();
        }

        foreach (var (context, (term, tcs)) in _pendingReads.Where(p => p.Value.Term != node.Term).ToList())
        {
            // The leader that would have answered is gone; the caller retries.
            tcs.TrySetException(new NotLeaderException(node.Leader, "the term changed during the read"));
            _pendingReads.Remove(context);
        }

        if (node.Role == RaftRole.Leader && _lastRole != RaftRole.Leader)
        {
            Counters.BecameLeader.Add();
            _options.Log?.Invoke(RaftLogLevel.Information, $"raft {_options.Id}: leader in term {node.Term}");
        }

        if (node.Role != _lastRole)
        {
            _options.Log?.Invoke(RaftLogLevel.Debug, $"raft {_options.Id}: {_lastRole} -> {node.Role} in term {node.Term} (leader {node.Leader}, voters {string.Join(",", node.Config.Voters)})");
        }

        _lastRole = node.Role;
        UpdatePeers();
        PublishStatus();

        // IMPORTANT: reads complete after the status is published: a caller that reads, then samples HoldsLease (a
        // lease grant), must see the lease the read's heartbeat round gave a new leader. Completed before, its
        // continuation raced the publication and a new leader refused its first grants for a renewal interval.
        for (var i = _readsAwaitingApply.Count - 1; i >= 0; i--)
        {
            if (_readsAwaitingApply[i].Index <= node.Applied)
            {
                _readsAwaitingApply[i].Done.TrySetResult(_stateMachine.Current);
                _readsAwaitingApply.RemoveAt(i);
            }
        }

        for (var i = _waiters.Count - 1; i >= 0; i--)
        {
            if (_waiters[i].Condition(node))
            {
                _waiters[i].Done.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }
    }

    private void OnApplied(Entry entry, ApplyResult<TState> result)
    {
        Counters.Applied.Add();

        // Publish the state before completing the proposal, so a caller never sees its own write missing.
        _state = result.State;
        if (_pendingEntries.Remove(entry.Index, out var pending))
        {
            if (pending.Term == entry.Term)
            {
                pending.Done.TrySetResult(result);
            }
            else
            {
                pending.Done.TrySetException(new ProposalLostException($"entry {entry.Index} was replaced by a leader of term {entry.Term}"));
            }
        }
    }

    private void OnReadState(ReadState read)
    {
        if (_pendingReads.Remove(read.RequestContext, out var pending))
        {
            _readsAwaitingApply.Add((read.Index, pending.Done));
        }
    }

    private void UpdatePeers()
    {
        var node = _node!;
        if (node.ConfigIndex == _peersConfigIndex)
        {
            return;
        }

        _peersConfigIndex = node.ConfigIndex;
        var addresses = new Dictionary<NodeId, string>(_options.SeedPeers);
        foreach (var m in node.Config.Members)
        {
            addresses[m.Id] = _options.TransportAddress is { } map ? map(m.Address) : m.Address;
        }

        addresses.Remove(_options.Id);
        _transport.UpdatePeers(addresses);
    }

    private void PublishStatus()
    {
        var node = _node!;
        var leaseUntil = LeaseUntil(node);
        _status = new RaftStatus(node.Id, node.Role, node.Term, node.Leader, node.Commit, node.Applied, node.Config.Members, leaseUntil,
            leaseUntil is { } u && _time.GetTimestamp() < u,
            node.Role == RaftRole.Leader ? _options.TickInterval * node.Options.PriorLeasesEndedTicksBefore(node.ElectionQuietTicks) : TimeSpan.Zero);
    }

    /// <summary>Whether the node holds its leader lease now, on this host's monotonic clock (called on the loop).</summary>
    private bool LeaseHeldNow(RawNode node) => LeaseUntil(node) is { } until && _time.GetTimestamp() < until;

    private long? LeaseUntil(RawNode node)
    {
        long? leaseUntil = null;
        if (node.LeaseValidUntilTick is { } untilTick)
        {
            // The lease counts from the time of the tick in which the acknowledged round was sent (no later
            // than the real send), for LeaseDuration on this host's monotonic clock.
            var sentTick = untilTick - node.Options.LeaseTicks;
            var sentAt = _tickTimestamps[sentTick % _tickTimestamps.Length];
            if (sentTick > 0 && node.TickCount - sentTick < _tickTimestamps.Length)
            {
                leaseUntil = sentAt + (long)(_options.LeaseDuration.TotalSeconds * _time.TimestampFrequency);
            }
        }

        return leaseUntil;
    }

    private void FailAll(Exception e)
    {
        foreach (var p in _pendingEntries.Values)
        {
            p.Done.TrySetException(e);
        }

        foreach (var r in _pendingReads.Values)
        {
            r.Done.TrySetException(e);
        }

        foreach (var r in _readsAwaitingApply)
        {
            r.Done.TrySetException(e);
        }

        foreach (var w in _waiters)
        {
            w.Done.TrySetException(e);
        }
    }

    private readonly record struct PendingEntry(Term Term, TaskCompletionSource<ApplyResult<TState>> Done);
}
