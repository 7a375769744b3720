using System.Diagnostics;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>
/// One insert PostgreSQL acknowledged: its id, when it was sent and acknowledged (Stopwatch ticks), the port of the
/// server that acknowledged it, and that server's <c>clock_timestamp()</c> in the insert's statement (UTC): an instant
/// at which it was out of recovery and about to commit the row. Every server runs on this machine's clock, so
/// server times order exactly, whatever the network did to the answer.
/// </summary>
internal readonly record struct AckedWrite(long Id, long SentAt, long AckedAt, int ServerPort, DateTime ServerAt);

/// <summary>
/// An insert that returned success with PostgreSQL's warning that its wait for synchronous replication was
/// cancelled: committed on that server only, so NOT acknowledged (<see cref="SyncRepWarning"/>).
/// </summary>
internal readonly record struct WarnedWrite(long Id, long SentAt, long At, int ServerPort);

/// <summary>An attempt that was not acknowledged: when the writer gave up on it (Stopwatch ticks), and why.</summary>
internal readonly record struct FailedAttempt(long At, string Reason);

/// <summary>Where the next write goes: a connection string, and a token cancelled once that is no longer the right place.</summary>
internal sealed record WriteTarget(string ConnectionString, CancellationToken Superseded);

/// <summary>Tells the writer where to write; a route may change its mind at any time (a failover).</summary>
internal interface IWriteRoute
{
    WriteTarget Current { get; }
}

/// <summary>
/// Inserts increasing ids every few milliseconds and records every insert PostgreSQL acknowledged, with its
/// times and the server that acknowledged it. The route says where: a fixed read-write connection string
/// (libpq-style multi-host, pooled, cleared on any error, so it follows a new primary the way any client does),
/// or <see cref="PrimaryFollower"/>. An attempt whose target was superseded meanwhile, or that has not been
/// answered within <see cref="AttemptBound"/>, is left behind (never cancelled: see <see cref="SyncRepWarning"/>).
/// An insert answered with the synchronous-replication warning is not acknowledged.
/// Bounded: it stops by itself after <c>maxDuration</c>.
/// </summary>
internal sealed class AckedWriter : IAsyncDisposable
{
    /// <summary>How long the writer waits for one attempt before it leaves it behind and tries the same id again.</summary>
    public static readonly TimeSpan AttemptBound = TimeSpan.FromSeconds(5);

    private readonly IWriteRoute _route;
    private readonly string _table;
    private readonly TimeSpan _interval;
    private readonly CancellationTokenSource _stop;
    private readonly List<AckedWrite> _acked = [];
    private readonly List<FailedAttempt> _failed = [];
    private readonly List<WarnedWrite> _warned = [];
    private readonly List<Task> _leftBehind = [];
    private readonly Task _loop;
    private long _failures;

    public AckedWriter(string connectionString, TimeSpan interval, TimeSpan maxDuration, string table = "writes")
        : this(new FixedRoute(connectionString), interval, maxDuration, table)
    {
    }

    public AckedWriter(IWriteRoute route, TimeSpan interval, TimeSpan maxDuration, string table)
    {
        _route = route;
        _table = table;
        _interval = interval;
        _stop = new CancellationTokenSource(maxDuration);
        _loop = Task.Run(RunAsync);
    }

    public static async Task CreateTableAsync(string connectionString, string table = "writes")
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        // writer: which writer inserted the row (the primary follower, or a member's session writer and its session).
        await using var command = new NpgsqlCommand($"create table if not exists {table} (id bigint primary key, at timestamptz not null default clock_timestamp(), writer text not null default 'follow')", connection);
        await command.ExecuteNonQueryAsync();
    }

    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>When each attempt that was not acknowledged ended (Stopwatch ticks), in order.</summary>
    public IReadOnlyList<long> FailedAt => [.. Failed.Select(f => f.At)];

    /// <summary>Each attempt that was not acknowledged: when it ended (Stopwatch ticks) and why, in order.</summary>
    public IReadOnlyList<FailedAttempt> Failed
    {
        get
        {
            lock (_acked)
            {
                return [.. _failed];
            }
        }
    }

    /// <summary>Inserts that returned success with the synchronous-replication warning: not acknowledged.</summary>
    public IReadOnlyList<WarnedWrite> Warned
    {
        get
        {
            lock (_acked)
            {
                return [.. _warned];
            }
        }
    }

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

    /// <summary>Every acknowledged write, in order.</summary>
    public IReadOnlyList<AckedWrite> Writes
    {
        get
        {
            lock (_acked)
            {
                return [.. _acked];
            }
        }
    }

    /// <summary>The longest time between two acknowledged writes within [from, to] (Stopwatch ticks).</summary>
    public TimeSpan LongestGap(long from, long to)
    {
        lock (_acked)
        {
            var times = _acked.Where(a => a.AckedAt >= from && a.AckedAt <= to).Select(a => a.AckedAt).ToList();
            var before = _acked.LastOrDefault(a => a.AckedAt < from).AckedAt;
            var after = _acked.FirstOrDefault(a => a.AckedAt > to).AckedAt;
            var points = new List<long> { before == 0 ? from : before };
            points.AddRange(times);
            points.Add(after == 0 ? to : after);
            var longest = points.Zip(points.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max();
            return Stopwatch.GetElapsedTime(0, longest);
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> writes were acknowledged; false when the writer stopped first.</summary>
    public Task<bool> WaitForAckedAsync(int count, TimeSpan timeout) => WaitForAsync(w => w.Count >= count, timeout);

    /// <summary>Waits until the acknowledged writes satisfy <paramref name="done"/>; false on timeout or when the writer stopped first.</summary>
    public async Task<bool> WaitForAsync(Func<IReadOnlyList<AckedWrite>, bool> done, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!Check(done))
        {
            if (watch.Elapsed > timeout || _loop.IsCompleted)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }

    private bool Check(Func<IReadOnlyList<AckedWrite>, bool> done)
    {
        lock (_acked)
        {
            return done(_acked);
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        Task[] leftBehind;
        lock (_leftBehind)
        {
            leftBehind = [.. _leftBehind];
        }

        // Attempts left behind end with the writer (cancelled) or by their own time limits; wait for them, bounded.
        await Task.WhenAll(leftBehind).WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);
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
            var target = _route.Current;

            // The attempt itself is cancelled only when the writer stops. When the route moves on, or the attempt
            // takes longer than AttemptBound, the writer stops waiting for it and goes on, leaving it behind:
            // cancelling it would make Npgsql open a new connection to the server to send a cancel request, which
            // a partition makes hang for seconds, and which turns a commit waiting for its synchronous standbys
            // into a local-only commit reported as a success (with a warning). An attempt left behind that is
            // still acknowledged later is recorded all the same.
            var work = AttemptAsync(target.ConnectionString, next);
            try
            {
                await work.WaitAsync(AttemptBound, target.Superseded);
                next++;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException or OperationCanceledException or SyncRepWarningException)
            {
                if (!work.IsCompleted)
                {
                    lock (_leftBehind)
                    {
                        _leftBehind.Add(work);
                    }
                }

                // Not acknowledged (failed, or abandoned because the primary changed): the same id is tried again,
                // so an id that did commit without an acknowledgement shows up as a duplicate-key error and is
                // then skipped.
                Interlocked.Increment(ref _failures);
                lock (_acked)
                {
                    _failed.Add(new FailedAttempt(Stopwatch.GetTimestamp(), e is TimeoutException && !work.IsCompleted ? $"no answer within {AttemptBound.TotalSeconds:0} s" : e.Message.ReplaceLineEndings(" ")));
                }

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

    /// <summary>
    /// One insert of <paramref name="id"/>; records it when acknowledged, whether or not the writer still waits for
    /// it. Throws <see cref="SyncRepWarningException"/> when it returned with the synchronous-replication warning.
    /// </summary>
    private async Task AttemptAsync(string connectionString, long id)
    {
        var sent = Stopwatch.GetTimestamp();
        await using var connection = new NpgsqlConnection(connectionString);
        var warning = new SyncRepWarning(connection);
        await connection.OpenAsync(_stop.Token);

        // No command timeout: Npgsql would send a cancel request when it fires (see SyncRepWarning). The writer
        // bounds its wait itself; the command is cancelled only when the writer stops, after every check.
        await using var command = new NpgsqlCommand($"insert into {_table} (id) values ($1) returning inet_server_port(), clock_timestamp()", connection) { CommandTimeout = 0 };
        command.Parameters.AddWithValue(id);
        int port;
        DateTime serverAt;
        await using (var reader = await command.ExecuteReaderAsync(_stop.Token))
        {
            await reader.ReadAsync(_stop.Token);
            (port, serverAt) = (reader.GetInt32(0), reader.GetFieldValue<DateTime>(1));
        }

        lock (_acked)
        {
            if (warning.Seen)
            {
                _warned.Add(new WarnedWrite(id, sent, Stopwatch.GetTimestamp(), port));
            }
            else
            {
                _acked.Add(new AckedWrite(id, sent, Stopwatch.GetTimestamp(), port, serverAt));
            }
        }

        if (warning.Seen)
        {
            throw new SyncRepWarningException(id, port);
        }
    }

    private sealed class FixedRoute(string connectionString) : IWriteRoute
    {
        public WriteTarget Current { get; } = new(connectionString, CancellationToken.None);
    }
}
