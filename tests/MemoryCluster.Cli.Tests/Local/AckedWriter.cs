using System.Diagnostics;
using Npgsql;

namespace MemoryCluster.Cli.Tests.Local;

/// <summary>
/// Inserts increasing ids through a read-write connection string every few milliseconds and records every
/// insert PostgreSQL acknowledged, with its time; pooled connections, cleared on any error, so it follows
/// a new primary the way any libpq client does. Bounded: it stops by itself after <c>maxDuration</c>.
/// </summary>
internal sealed class AckedWriter : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly TimeSpan _interval;
    private readonly CancellationTokenSource _stop;
    private readonly List<(long Id, long AtTicks)> _acked = [];
    private readonly Task _loop;
    private long _failures;

    public AckedWriter(string connectionString, TimeSpan interval, TimeSpan maxDuration)
    {
        _connectionString = connectionString;
        _interval = interval;
        _stop = new CancellationTokenSource(maxDuration);
        _loop = Task.Run(RunAsync);
    }

    public static async Task CreateTableAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("create table if not exists writes (id bigint primary key, at timestamptz not null default clock_timestamp())", connection);
        await command.ExecuteNonQueryAsync();
    }

    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Every acknowledged id, in order.</summary>
    public IReadOnlyList<long> Acked
    {
        get
        {
            lock (_acked)
            {
                return [.. _acked.Select(a => a.Id)];
            }
        }
    }

    /// <summary>The longest time between two acknowledged writes within [from, to] (Stopwatch ticks).</summary>
    public TimeSpan LongestGap(long from, long to)
    {
        lock (_acked)
        {
            var times = _acked.Where(a => a.AtTicks >= from && a.AtTicks <= to).Select(a => a.AtTicks).ToList();
            var before = _acked.LastOrDefault(a => a.AtTicks < from).AtTicks;
            var after = _acked.FirstOrDefault(a => a.AtTicks > to).AtTicks;
            var points = new List<long> { before == 0 ? from : before };
            points.AddRange(times);
            points.Add(after == 0 ? to : after);
            var longest = points.Zip(points.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max();
            return Stopwatch.GetElapsedTime(0, longest);
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> writes were acknowledged; false when the writer stopped first.</summary>
    public async Task<bool> WaitForAckedAsync(int count, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (Acked.Count < count)
        {
            if (watch.Elapsed > timeout || _loop.IsCompleted)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        long next = 1;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(_connectionString);
                await connection.OpenAsync(_stop.Token);
                await using var command = new NpgsqlCommand("insert into writes (id) values ($1)", connection) { CommandTimeout = 5 };
                command.Parameters.AddWithValue(next);
                await command.ExecuteNonQueryAsync(_stop.Token);
                lock (_acked)
                {
                    _acked.Add((next, Stopwatch.GetTimestamp()));
                }

                next++;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException)
            {
                // Not acknowledged: the same id is tried again, so an id that did commit without an
                // acknowledgement shows up as a duplicate-key error and is then skipped.
                Interlocked.Increment(ref _failures);

                // Pooled connections may point at a server that is no longer the primary: start afresh.
                NpgsqlConnection.ClearAllPools();
                if (e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
                {
                    next++;
                }
            }

            try
            {
                await Task.Delay(_interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
