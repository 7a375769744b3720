using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.E2e;

/// <summary>
/// One manager's /status answer, reduced to what the checks read (the fields are /status's own, see
/// docs/instance-manager.md), with when the request was sent and its answer arrived (Stopwatch ticks): the state
/// it shows lies between the two.
/// </summary>
internal sealed record StatusSample(
    string Member,
    long AskedAt,
    long AnsweredAt,
    InstanceRole Role,
    bool Ready,
    bool PostgresRunning,
    bool MayWrite,
    string? Watchdog,
    ulong Epoch,
    string? Primary,
    WalLine? Line,
    Lsn? FlushLsn,
    bool PositionSettled,
    FollowState Follow,
    bool SteppingDown,
    string RaftRole,
    long StateAgeMs,
    long StateQueryMs,
    IReadOnlyList<(string Name, Lsn Flush)> Standbys)
{
    /// <summary>On the Raft leader failing over in quorum mode: the epoch whose primary the replicas must stop streaming from (0: none).</summary>
    public ulong DetachFrom { get; init; }

    /// <summary>Replica: the epoch whose primary it has stopped streaming from, as its state proves (0: none).</summary>
    public ulong DetachedFrom { get; init; }

    /// <summary>On the Raft leader while the primary has failed: what it did or why it cannot.</summary>
    public string? Failover { get; init; }

    public static StatusSample Of(string member, long askedAt, long answeredAt, StatusDocument s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return new StatusSample(
            member,
            askedAt,
            answeredAt,
            s.Role,
            s.Ready,
            s.PostgresRunning,
            s.MayWrite,
            s.Watchdog,
            s.Epoch.Value,
            s.Primary,
            s.Line,
            s.FlushLsn,
            s.PositionSettled,
            s.Follow,
            s.SteppingDown,
            s.Raft.Role,
            s.StateAgeMs,
            s.StateQueryMs,
            [.. s.Standbys.Select(x => (x.Name, x.FlushLsn))])
        {
            DetachFrom = s.DetachFrom.Value,
            DetachedFrom = s.DetachedFrom.Value,
            Failover = s.Failover,
        };
    }
}

/// <summary>
/// Reads every manager's /status every 100 ms, each on a loop of its own (a hung manager slows nothing), through
/// <see cref="InstanceApiClient"/>, and keeps every answer: the checks of <see cref="StatusChecks"/> read them
/// after each run, the scenarios wait on them, and the primary follower is fed from them (one poll serves all).
/// Bounded: it stops by itself after <c>maxDuration</c>.
/// </summary>
internal sealed class StatusWatcher : IAsyncDisposable
{
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan StatusTimeout = TimeSpan.FromMilliseconds(600);

    private readonly Action<Peer, StatusDocument>? _observer;
    private readonly CancellationTokenSource _stop;
    private readonly Task[] _loops;
    private readonly List<StatusSample> _samples = [];
    private readonly Dictionary<string, StatusSample> _latest = new(StringComparer.Ordinal);

    public StatusWatcher(LocalLayout layout, TimeSpan maxDuration, Action<Peer, StatusDocument>? observer = null)
    {
        _observer = observer;
        _stop = new CancellationTokenSource(maxDuration);
        _loops = [.. layout.Members.Select(m => Task.Run(() => PollAsync(m)))];
    }

    /// <summary>Every answer received within [from, to] (Stopwatch ticks), in the order they arrived.</summary>
    public IReadOnlyList<StatusSample> Samples(long from = long.MinValue, long to = long.MaxValue)
    {
        lock (_samples)
        {
            return [.. _samples.Where(s => s.AnsweredAt >= from && s.AnsweredAt <= to)];
        }
    }

    /// <summary>The last answer of <paramref name="member"/>; null when it never answered.</summary>
    public StatusSample? Latest(string member)
    {
        lock (_samples)
        {
            return _latest.GetValueOrDefault(member);
        }
    }

    /// <summary>
    /// Waits for an answer that arrives from now on and matches <paramref name="match"/>, checking every 20 ms;
    /// null when none came within <paramref name="limit"/>.
    /// </summary>
    public async Task<StatusSample?> WaitForAsync(Func<StatusSample, bool> match, TimeSpan limit, CancellationToken cancellationToken)
    {
        var since = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(since) < limit)
        {
            lock (_samples)
            {
                for (var i = _samples.Count - 1; i >= 0 && _samples[i].AnsweredAt >= since; i--)
                {
                    if (match(_samples[i]))
                    {
                        return _samples[i];
                    }
                }
            }

            await Task.Delay(20, cancellationToken);
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
        _stop.Dispose();
    }

    private async Task PollAsync(Peer member)
    {
        using var timer = new PeriodicTimer(Period);
        try
        {
            do
            {
                var asked = Stopwatch.GetTimestamp();
                StatusDocument? status;
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    timeout.CancelAfter(StatusTimeout);
                    status = await LocalCluster.Api.TryStatusAsync(member.HttpBase, timeout.Token);
                }

                if (status is null)
                {
                    continue;
                }

                var sample = StatusSample.Of(member.Name, asked, Stopwatch.GetTimestamp(), status);
                lock (_samples)
                {
                    _samples.Add(sample);
                    _latest[member.Name] = sample;
                }

                _observer?.Invoke(member, status);
            }
            while (await timer.WaitForNextTickAsync(_stop.Token));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }
}
