using System.Diagnostics;
using System.Globalization;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>
/// One member's writer: ONE long-lived session to that member (TCP, as the application role), opened when the
/// writer starts — so before any fault — and reopened only after it broke, through which it inserts every
/// <c>interval</c>, whatever the member's role: through a function (<see cref="CreateFunctionAsync"/>) that inserts
/// unless the server is in recovery, so that a replica refuses without logging an error 50 times a second, and the
/// session stays; on a primary it commits. A PostgreSQL whose postmaster is stopped, killed or cut off from the rest
/// of the cluster still commits on sessions that already exist: this writer is what sees such commits.
/// <para>
/// Ids come from a range of its own (<c>range * 1e9 + n</c>, a fresh id per attempt), and each row says which
/// member and session wrote it (<c>writer = 'mc-2#3'</c>). Every acknowledged insert is recorded with the times it
/// was sent and acknowledged. As the primary follower's writer, it never lets the driver cancel an insert during a
/// run (<see cref="SyncRepWarning"/>): an insert not answered within <see cref="StuckBound"/> is left behind with its
/// session (still recorded if acknowledged later) and a new session is opened; an insert answered with the
/// synchronous-replication warning is not acknowledged. Bounded: it stops by itself after <c>maxDuration</c>.
/// </para>
/// </summary>
internal sealed class SessionWriter : IAsyncDisposable
{
    /// <summary>How long one insert may go unanswered before its session is given up as broken.</summary>
    public static readonly TimeSpan StuckBound = TimeSpan.FromSeconds(15);

    /// <summary>The first id of range r is r * IdRange + 1; the primary follower's writer uses range 0.</summary>
    public const long IdRange = 1_000_000_000;

    private static readonly TimeSpan ReopenPause = TimeSpan.FromMilliseconds(200);

    private readonly Peer _member;
    private readonly string _connectionString;
    private readonly string _table;
    private readonly TimeSpan _interval;
    private readonly long _firstId;
    private readonly CancellationTokenSource _stop;
    private readonly List<AckedWrite> _acked = [];
    private readonly List<WarnedWrite> _warned = [];
    private readonly List<Task> _leftBehind = [];
    private readonly Task _loop;
    private long _sessions;
    private long _openSession;
    private long _refused;

    public SessionWriter(LocalLayout layout, Peer member, int range, string table, TimeSpan interval, TimeSpan maxDuration)
    {
        ArgumentNullException.ThrowIfNull(layout);
        _member = member;
        _table = table;
        _interval = interval;
        _firstId = (range * IdRange) + 1;

        // TCP keepalives: a session to a server that vanished (link down) breaks within seconds instead of never.
        _connectionString = new NpgsqlConnectionStringBuilder(ConnectionStrings.Direct(layout, member, pooled: false))
        {
            TcpKeepAlive = true,
            TcpKeepAliveTime = 2,
            TcpKeepAliveInterval = 1,
            CommandTimeout = 0,
        }.ConnectionString;
        _stop = new CancellationTokenSource(maxDuration);
        _loop = Task.Run(RunAsync);
    }

    public string Member => _member.Name;

    /// <summary>The function the session writers insert through: <c>FUNCTION(id, writer)</c>, false when the server is in recovery.</summary>
    public static string FunctionOf(string table) => table + "_insert";

    /// <summary>Creates <see cref="FunctionOf"/> for <paramref name="table"/> (made by <see cref="AckedWriter.CreateTableAsync"/>).</summary>
    public static async Task CreateFunctionAsync(string connectionString, string table)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"""
            create or replace function {FunctionOf(table)}(i bigint, w text) returns boolean language plpgsql as $$
            begin
              if pg_is_in_recovery() then
                return false;
              end if;
              insert into {table} (id, writer) values (i, w);
              return true;
            end $$
            """,
            connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Sessions opened so far (1 while the first session lives).</summary>
    public long Sessions => Interlocked.Read(ref _sessions);

    /// <summary>Whether a session is open now.</summary>
    public bool HasSession => Interlocked.Read(ref _openSession) != 0;

    /// <summary>Inserts refused because the member was not writable (read-only transaction), so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

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

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        Task[] leftBehind;
        lock (_leftBehind)
        {
            leftBehind = [.. _leftBehind];
        }

        // Inserts left behind end with the writer (cancelled now, after every check) or with their server; bounded.
        await Task.WhenAll(leftBehind).WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        var next = _firstId;
        NpgsqlConnection? session = null;
        SyncRepWarning? warning = null;
        var name = string.Empty;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (session is null)
                {
                    (session, warning, name) = await OpenAsync();
                    if (session is null)
                    {
                        await Task.Delay(ReopenPause, _stop.Token);
                        continue;
                    }
                }

                var id = next++;
                warning!.Reset();
                var sent = Stopwatch.GetTimestamp();
                var insert = InsertAsync(session, id, name);
                if (!await AnsweredWithinAsync(insert, StuckBound, _stop.Token))
                {
                    // Stuck (or the writer stops): leave the insert behind with its session — it is still recorded
                    // if it is acknowledged later — and go on with a new session.
                    LeaveBehind(insert, session, id, sent, warning);
                    session = null;
                    Interlocked.Exchange(ref _openSession, 0);
                    continue;
                }

                bool broken;
                try
                {
                    Record(id, sent, await insert, warning);
                    broken = false;
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction)
                {
                    Interlocked.Increment(ref _refused);
                    broken = false;
                }
                catch (RefusedException)
                {
                    Interlocked.Increment(ref _refused);
                    broken = false;
                }
                catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or TimeoutException)
                {
                    broken = session.FullState.HasFlag(System.Data.ConnectionState.Broken) || session.State != System.Data.ConnectionState.Open;
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }

                if (broken)
                {
                    await session.DisposeAsync();
                    session = null;
                    Interlocked.Exchange(ref _openSession, 0);
                }

                await Task.Delay(broken ? ReopenPause : _interval, _stop.Token);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            if (session is not null)
            {
                await session.DisposeAsync();
            }
        }
    }

    /// <summary>Whether <paramref name="task"/> ends within <paramref name="bound"/>; it is never cancelled here.</summary>
    public static async Task<bool> AnsweredWithinAsync(Task task, TimeSpan bound, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var timer = Task.Delay(bound, limit.Token);
        var first = await Task.WhenAny(task, timer);
        await limit.CancelAsync();
        return first == task;
    }

    private void LeaveBehind(Task<DateTime> insert, NpgsqlConnection session, long id, long sent, SyncRepWarning warning)
    {
        var left = insert.ContinueWith(
            async t =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    Record(id, sent, t.Result, warning);
                }

                await session.DisposeAsync();
            },
            CancellationToken.None,
            TaskContinuationOptions.None,
            TaskScheduler.Default).Unwrap();
        lock (_leftBehind)
        {
            _leftBehind.Add(left);
        }
    }

    private async Task<(NpgsqlConnection? Session, SyncRepWarning? Warning, string Name)> OpenAsync()
    {
        var connection = new NpgsqlConnection(_connectionString);
        var warning = new SyncRepWarning(connection);
        try
        {
            // Opening is bounded by the connection string's Timeout; no backend exists yet, so nothing is cancelled.
            await connection.OpenAsync(_stop.Token);
            var number = Interlocked.Increment(ref _sessions);
            Interlocked.Exchange(ref _openSession, 1);
            return (connection, warning, string.Create(CultureInfo.InvariantCulture, $"{_member.Name}#{number}"));
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or System.Net.Sockets.SocketException
                                      || (e is OperationCanceledException && !_stop.IsCancellationRequested))
        {
            await connection.DisposeAsync();
            return (null, null, string.Empty);
        }
    }

    /// <summary>
    /// The insert, and the server's clock in its statement; the driver may cancel it only when the writer stops.
    /// Throws <see cref="RefusedException"/> on a server in recovery.
    /// </summary>
    private async Task<DateTime> InsertAsync(NpgsqlConnection session, long id, string name)
    {
        await using var command = new NpgsqlCommand($"select {FunctionOf(_table)}($1, $2), clock_timestamp()", session) { CommandTimeout = 0 };
        command.Parameters.AddWithValue(id);
        command.Parameters.AddWithValue(name);
        await using var reader = await command.ExecuteReaderAsync(_stop.Token);
        await reader.ReadAsync(_stop.Token);
        if (!reader.GetBoolean(0))
        {
            throw new RefusedException();
        }

        return reader.GetFieldValue<DateTime>(1);
    }

    /// <summary>The server was in recovery: nothing was inserted.</summary>
    private sealed class RefusedException : Exception
    {
    }

    private void Record(long id, long sent, DateTime serverAt, SyncRepWarning warning)
    {
        lock (_acked)
        {
            if (warning.Seen)
            {
                _warned.Add(new WarnedWrite(id, sent, Stopwatch.GetTimestamp(), _member.PgPort));
            }
            else
            {
                _acked.Add(new AckedWrite(id, sent, Stopwatch.GetTimestamp(), _member.PgPort, serverAt));
            }
        }
    }
}
