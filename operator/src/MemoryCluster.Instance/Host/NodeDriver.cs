using System.Diagnostics;
using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Owns the <see cref="InstanceNode"/>: every input goes through <see cref="Step"/>, one at a time, and the actions it
/// returns are handed, in order and under the same lock, to the service that carries each kind out (handlers only
/// queue work or write a small file, so nothing blocks here). It also ticks the node, on the manager's clock. Time is the host's monotonic
/// clock in milliseconds from the driver's start.
/// </summary>
internal sealed partial class NodeDriver : BackgroundService
{

    private readonly InstanceNode _node;
    private readonly ManagerClock _clock;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _origin;
    private readonly Lock _gate = new();
    private readonly Dictionary<Type, Action<NodeAction>> _handlers = [];
    private Node.Started? _started;
    private bool _stopping;
    private long _lastTickMs;
    private long _nextTickAt = long.MaxValue;
    private long _pollInterval = long.MaxValue;
    private long _observeInterval = long.MaxValue;

    /// <summary>
    /// Raised (under the driver's lock: handlers only wake a loop) when the node wants other members' reports or its
    /// PostgreSQL's state sooner than the loops that read them were told when they went to sleep: something started
    /// happening, and a loop sleeping a second must not make the leader wait that second.
    /// </summary>
    public event Action? Quickened;

    public NodeDriver(InstanceNode node, ManagerClock clock, TimeProvider time, ILogger<NodeDriver> logger)
    {
        _node = node;
        _clock = clock;
        _time = time;
        _logger = logger;
        _origin = time.GetTimestamp();
    }

    /// <summary>The node's clock: milliseconds since the driver was made, from the host's monotonic clock.</summary>
    public long NowMs => (long)_time.GetElapsedTime(_origin).TotalMilliseconds;

    /// <summary>A node-clock instant as a <see cref="Stopwatch"/> timestamp (CLOCK_MONOTONIC on Linux, shared by every process on the host).</summary>
    public long ToTimestamp(long nodeMs) => _origin + (long)(nodeMs * (_time.TimestampFrequency / 1000.0));

    /// <summary>Registers who carries out actions of type <typeparamref name="T"/> (and its subtypes).</summary>
    public void Handle<T>(Action<T> handler)
        where T : NodeAction
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_gate)
        {
            _handlers[typeof(T)] = a => handler((T)a);
        }
    }

    /// <summary>The first input, once the host has prepared the data directory; sent when the driver starts.</summary>
    public void SetStarted(DataKind data, Control.Epoch fencedEpoch, string? fenceReason) =>
        _started = new Node.Started(0, data, fencedEpoch, fenceReason);

    /// <summary>
    /// Steps the node with <paramref name="input"/> (built with the current time) and carries out what it returns.
    /// Once the host is stopping nothing is stepped any more: PostgreSQL is then stopped cleanly by its supervisor,
    /// which is no crash to fence and record.
    /// </summary>
    public IReadOnlyList<NodeAction> Step(Func<long, NodeInput> input)
    {
        ArgumentNullException.ThrowIfNull(input);
        lock (_gate)
        {
            if (_stopping)
            {
                return [];
            }

            var actions = _node.Step(input(NowMs));
            foreach (var action in actions)
            {
                Dispatch(action);
            }

            var nextTick = _node.NextTickAt(_lastTickMs);
            if (nextTick < _nextTickAt)
            {
                // The node wants its next tick sooner (something started happening): the clock asks again at once.
                _nextTickAt = nextTick;
                _clock.Nudge();
            }

            var poll = _node.PeerPollIntervalMs;
            var observe = _node.ObserveIntervalMs;
            var quickened = poll < _pollInterval || observe < _observeInterval;
            _pollInterval = poll;
            _observeInterval = observe;
            if (quickened)
            {
                Quickened?.Invoke();
            }

            return actions;
        }
    }

    /// <summary>Asks the loops that read the other members' reports to read them now.</summary>
    public void PollPeersNow() => Quickened?.Invoke();

    /// <summary>Reads the node (status, checks) under the same lock as <see cref="Step"/>.</summary>
    public T Read<T>(Func<InstanceNode, long, T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        lock (_gate)
        {
            return read(_node, NowMs);
        }
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _stopping = true;
        }

        return base.StopAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = _started ?? throw new InvalidOperationException("the driver was not told what the host found at start");
        Step(now => started with { Now = now });
        _clock.Subscribe(_ => TickIfDue());
        return Task.CompletedTask;
    }

    /// <summary>
    /// On the manager's clock: ticks the node when it asks (<see cref="InstanceNode.NextTickAt"/>: every 50 to 250 ms,
    /// and at the lease's deadline) and says when the next tick is due.
    /// </summary>
    private long TickIfDue()
    {
        lock (_gate)
        {
            var now = NowMs;
            if (_stopping)
            {
                return long.MaxValue;
            }

            if (now >= _node.NextTickAt(_lastTickMs))
            {
                _lastTickMs = now;
                foreach (var action in _node.Step(new Tick(now)))
                {
                    Dispatch(action);
                }
            }

            _nextTickAt = _node.NextTickAt(_lastTickMs);
            return _nextTickAt - now;
        }
    }

    private void Dispatch(NodeAction action)
    {
        if (action is Note note)
        {
            Log.Node(_logger, note.Level, note.Message);
            return;
        }

        for (var type = action.GetType(); type is not null && type != typeof(object); type = type.BaseType)
        {
            if (_handlers.TryGetValue(type, out var handler))
            {
                handler(action);
                return;
            }
        }

        Log.Unhandled(_logger, action.GetType().Name);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 100, Message = "{Message}")]
        public static partial void Node(ILogger logger, LogLevel level, string message);

        [LoggerMessage(101, LogLevel.Critical, "no one carries out {Action}: a bug in the host's wiring")]
        public static partial void Unhandled(ILogger logger, string action);
    }
}
