using Microsoft.Extensions.Hosting;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// The manager's clock for its periodic work: the node's ticks (<see cref="NodeDriver"/>) and the role label's check.
/// A thread of its own calls each subscriber when it asked to be called next, and sleeps until the earliest of those
/// times (or a <see cref="Nudge"/>): an idle replica's manager wakes four times a second for them, not once per timer
/// per concern (a .NET timer wakes its thread two or three times per expiry, and each wake of a thread costs more than
/// the work it does), and a beat never waits for a thread-pool thread. Subscribers only step the node or queue work.
/// Started first and stopped last. A subscriber that throws stops the host.
/// </summary>
internal sealed class ManagerClock(TimeProvider time) : BackgroundService
{
    /// <summary>The longest sleep: a subscriber is asked again at least this often.</summary>
    public static readonly TimeSpan MaxSleep = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _nudge = new(false, spinCount: 0);
    private Func<long, long>[] _subscribers = [];

    /// <summary>
    /// Calls <paramref name="beat"/> from now on, with the time in milliseconds (monotonic); it does what is due and
    /// returns in how many milliseconds it wants to be called again.
    /// </summary>
    public void Subscribe(Func<long, long> beat)
    {
        ArgumentNullException.ThrowIfNull(beat);
        lock (_gate)
        {
            _subscribers = [.. _subscribers, beat];
        }

        Nudge();
    }

    /// <summary>Asks every subscriber again now (one of them may want to be called sooner than it said).</summary>
    public void Nudge() => _nudge.Set();

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run(stoppingToken);
                done.TrySetResult();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                done.TrySetResult();
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "manager clock",
        };
        thread.Start();
        return done.Task;
    }

    private void Run(CancellationToken stoppingToken)
    {
        var maxSleep = (long)MaxSleep.TotalMilliseconds;
        while (!stoppingToken.IsCancellationRequested)
        {
            _nudge.Reset();
            var now = NowMs();
            var sleep = maxSleep;

            // Every subscriber at every wake: each knows best whether anything of its own is due.
            foreach (var beat in Volatile.Read(ref _subscribers))
            {
                sleep = Math.Min(sleep, beat(now));
            }

            _nudge.Wait((int)Math.Max(1, sleep), stoppingToken);
        }
    }

    private long NowMs() => (long)(time.GetTimestamp() * 1000.0 / time.TimestampFrequency);

    public override void Dispose()
    {
        _nudge.Dispose();
        base.Dispose();
    }
}
