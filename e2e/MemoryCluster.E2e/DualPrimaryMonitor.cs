using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>A 50 ms instant at which two or more instances accepted writes.</summary>
internal sealed record DualPrimaryInstant(TimeSpan At, IReadOnlyList<string> Writable);

/// <summary>
/// Samples every instance every 50 ms, each on its own loop so a hung instance does not slow the others, and
/// records when each one accepted writes.
/// <para>
/// "Accepts writes" means: a NEW connection succeeds and <c>select not pg_is_in_recovery()</c> returns true,
/// within 300 ms. The connection is TCP to the instance's PostgreSQL port, as the application role (what a
/// client sees); when TCP fails (say the instance is cut off by a partition), the same query is tried over the
/// instance's Unix socket, which crosses network namespaces, so that a primary still writable for clients on
/// its side of a partition is seen too.
/// </para>
/// <para>
/// A writable sample covers the whole interval from sending it to its answer (at most ~300 ms). Time is cut
/// into 50 ms instants; an instant is a dual-primary instant when writable samples of two or more instances
/// overlap it. That errs towards reporting: two primaries a few milliseconds apart count.
/// </para>
/// Bounded: it stops by itself after <c>maxDuration</c>.
/// </summary>
internal sealed class DualPrimaryMonitor : IAsyncDisposable
{
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan SampleTimeout = TimeSpan.FromMilliseconds(300);

    private readonly LocalLayout _layout;
    private readonly CancellationTokenSource _stop;
    private readonly Task[] _loops;
    private readonly long _origin = Stopwatch.GetTimestamp();
    private readonly List<(string Member, long From, long To)> _writable = [];
    private long _samples;

    public DualPrimaryMonitor(LocalLayout layout, TimeSpan maxDuration)
    {
        _layout = layout;
        _stop = new CancellationTokenSource(maxDuration);
        _loops = [.. layout.Members.Select(m => Task.Run(() => SampleLoopAsync(m)))];
    }

    /// <summary>Samples taken so far, over every instance.</summary>
    public long Samples => Interlocked.Read(ref _samples);

    /// <summary>The dual-primary instants within [from, to] (Stopwatch ticks), each with the instances writable then.</summary>
    public IReadOnlyList<DualPrimaryInstant> Instants(long from, long to)
    {
        lock (_writable)
        {
            return InstantsOf(_writable, _origin, (long)(Period.TotalSeconds * Stopwatch.Frequency), from, to);
        }
    }

    /// <summary>
    /// Cuts time from <paramref name="origin"/> into instants of <paramref name="period"/> ticks and returns, within
    /// [from, to], those that writable samples of two or more instances overlap.
    /// </summary>
    public static IReadOnlyList<DualPrimaryInstant> InstantsOf(IEnumerable<(string Member, long From, long To)> writable, long origin, long period, long from, long to)
    {
        var byInstant = new SortedDictionary<long, SortedSet<string>>();
        foreach (var (member, start, end) in writable.Where(w => w.To >= from && w.From <= to))
        {
            for (var i = (Math.Max(start, from) - origin) / period; i <= (Math.Min(end, to) - origin) / period; i++)
            {
                if (!byInstant.TryGetValue(i, out var names))
                {
                    byInstant[i] = names = new SortedSet<string>(StringComparer.Ordinal);
                }

                names.Add(member);
            }
        }

        return [.. byInstant.Where(p => p.Value.Count >= 2).Select(p => new DualPrimaryInstant(TimeSpan.FromSeconds((double)(p.Key * period) / Stopwatch.Frequency), [.. p.Value]))];
    }

    /// <summary>The instances seen writable within [from, to].</summary>
    public IReadOnlySet<string> WritableMembers(long from, long to)
    {
        lock (_writable)
        {
            return _writable.Where(w => w.To >= from && w.From <= to).Select(w => w.Member).ToHashSet(StringComparer.Ordinal);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
        _stop.Dispose();
    }

    private async Task SampleLoopAsync(Peer member)
    {
        var tcp = ConnectionStrings.Direct(_layout, member, pooled: false);
        var socket = ConnectionStrings.Socket(_layout, member);
        using var timer = new PeriodicTimer(Period);
        try
        {
            do
            {
                var from = Stopwatch.GetTimestamp();
                var writable = await WritableAsync(tcp) ?? await WritableAsync(socket);
                Interlocked.Increment(ref _samples);
                if (writable == true)
                {
                    lock (_writable)
                    {
                        _writable.Add((member.Name, from, Stopwatch.GetTimestamp()));
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(_stop.Token));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>True or false when the instance answered; null when it could not be asked in time.</summary>
    private async Task<bool?> WritableAsync(string connectionString)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(SampleTimeout);
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(timeout.Token);
            await using var command = new NpgsqlCommand("select not pg_is_in_recovery()", connection);
            return (bool)(await command.ExecuteScalarAsync(timeout.Token))!;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException or IOException or System.Net.Sockets.SocketException)
        {
            _stop.Token.ThrowIfCancellationRequested();
            return null;
        }
    }
}
