using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>A 50 ms instant at which two or more instances accepted writes.</summary>
internal sealed record DualPrimaryInstant(TimeSpan At, IReadOnlyList<string> Writable);

/// <summary>
/// One answer on one of the monitor's long-lived sessions: which member and session (a number, new each time a
/// session is opened), when the question was sent and answered (Stopwatch ticks), and whether it said writable.
/// </summary>
internal readonly record struct SessionAnswer(string Member, long Session, long From, long To, bool Writable);

/// <summary>
/// One answer from a member, by its own clock: <c>clock_timestamp()</c> (UTC) in the statement that asked, and whether
/// it was writable then (as the monitor counts it). Exact however late the answer arrived: every server runs on this
/// machine's clock.
/// </summary>
internal readonly record struct ServerAnswer(string Member, DateTime ServerAt, bool Writable);

/// <summary>
/// Samples every instance every 50 ms in two ways, each member and each way on its own loop so a hung instance
/// does not slow the others, and records when each one accepted writes.
/// <para>
/// New connections: "accepts writes" means a NEW connection succeeds and <c>select not pg_is_in_recovery()</c>
/// returns true, within 300 ms of that attempt's start (a later answer is no sample; the sample covers that attempt). The connection is TCP to the instance's PostgreSQL port, as the application role
/// (what a client sees); when TCP fails (say the instance is cut off by a partition), the same query is tried over
/// the instance's Unix socket, which crosses network namespaces, so that a primary still writable for clients on
/// its side of a partition is seen too.
/// </para>
/// <para>
/// Long-lived sessions: one session per instance over its Unix socket, opened at the start (so before any fault)
/// and reopened only when it broke or stayed unanswered for <see cref="SessionStuck"/>, asks the same question on
/// the same cadence. A primary whose postmaster is stopped or dead cannot fork a backend for a new connection but
/// still answers (and commits) on existing sessions. The question is never cancelled (a cancel request would break
/// the session): an answer later than 300 ms is not a sample, and the next question waits for it.
/// </para>
/// <para>
/// A writable sample covers the whole interval from sending it to its answer (at most 300 ms). Time is cut
/// into 50 ms instants; an instant is a dual-primary instant when writable samples of two or more instances
/// overlap it. That errs towards reporting: two primaries a few milliseconds apart count.
/// </para>
/// <para>
/// Every answer, both ways and however late, also gives the member's own <c>clock_timestamp()</c> with its state
/// (<see cref="ServerAnswers"/>): exact instants, against which the writers' server times are checked
/// (<see cref="StatusChecks.ExecutedWhileAnotherWritable"/>). A new connection refused because the postmaster shuts
/// down counts as "not writable" at the moment the refusal was read: a shutdown is not undone before a restart.
/// </para>
/// <para>
/// Quorum mode, for scenarios whose fault leaves the old primary's PostgreSQL out of recovery by design (its manager
/// and watchdog frozen: nothing of the node can stop it, and the replicas stop streaming from it instead, see
/// docs/failover.md): with <c>acknowledgingStandbys</c> k &gt; 0 a writable sample counts only when the instance has
/// at least k walsenders (<c>pg_stat_replication</c> rows, any state: errs towards counting), since with fewer no
/// commit of it can be acknowledged. The samples left out are kept: <see cref="OutOfRecoveryInstants"/> reports
/// the instants two instances were out of recovery at all.
/// </para>
/// Bounded: it stops by itself after <c>maxDuration</c>.
/// </summary>
internal sealed class DualPrimaryMonitor : IAsyncDisposable
{
    /// <summary>
    /// Whether the instance is out of recovery, and how many walsenders it has (rows of <c>pg_stat_replication</c>:
    /// visible to any role, only their details are not).
    /// </summary>
    private const string Question = "select not pg_is_in_recovery(), (select count(*) from pg_stat_replication)::int, clock_timestamp()";

    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan SampleTimeout = TimeSpan.FromMilliseconds(300);

    /// <summary>A session whose question stays unanswered this long is left behind and a new one opened.</summary>
    public static readonly TimeSpan SessionStuck = TimeSpan.FromSeconds(5);

    private readonly LocalLayout _layout;
    private readonly CancellationTokenSource _stop;
    private readonly Task[] _loops;
    private readonly long _origin = Stopwatch.GetTimestamp();
    private readonly List<(string Member, long From, long To)> _writable = [];
    private readonly List<(string Member, long From, long To)> _outOfRecovery = [];
    private readonly int _acknowledgingStandbys;
    private readonly List<SessionAnswer> _answers = [];
    private readonly List<ServerAnswer> _serverAnswers = [];
    private readonly List<Task> _leftBehind = [];
    private readonly Dictionary<string, long> _openSessions = new(StringComparer.Ordinal);
    private long _samples;
    private long _sessionSamples;
    private long _sessionNumbers;

    public DualPrimaryMonitor(LocalLayout layout, TimeSpan maxDuration, int acknowledgingStandbys = 0)
    {
        _layout = layout;
        _acknowledgingStandbys = acknowledgingStandbys;
        _stop = new CancellationTokenSource(maxDuration);
        _loops = [.. layout.Members.Select(m => Task.Run(() => SampleLoopAsync(m))), .. layout.Members.Select(m => Task.Run(() => SessionLoopAsync(m)))];
    }

    /// <summary>Samples taken so far over new connections, over every instance.</summary>
    public long Samples => Interlocked.Read(ref _samples);

    /// <summary>Answers received so far on the long-lived sessions, over every instance.</summary>
    public long SessionSamples => Interlocked.Read(ref _sessionSamples);

    /// <summary>The members that have a long-lived session open now.</summary>
    public IReadOnlySet<string> OpenSessions
    {
        get
        {
            lock (_openSessions)
            {
                return _openSessions.Keys.ToHashSet(StringComparer.Ordinal);
            }
        }
    }

    /// <summary>Every answer on the long-lived sessions within [from, to] (by answer time), in order.</summary>
    public IReadOnlyList<SessionAnswer> SessionAnswers(long from = long.MinValue, long to = long.MaxValue)
    {
        lock (_writable)
        {
            return [.. _answers.Where(a => a.To >= from && a.To <= to)];
        }
    }

    /// <summary>Every answer (both ways, however late), by the answering server's clock.</summary>
    public IReadOnlyList<ServerAnswer> ServerAnswers()
    {
        lock (_writable)
        {
            return [.. _serverAnswers];
        }
    }

    /// <summary>Every writable sample (both ways) that overlaps [from, to].</summary>
    public IReadOnlyList<(string Member, long From, long To)> WritableSamples(long from = long.MinValue, long to = long.MaxValue)
    {
        lock (_writable)
        {
            return [.. _writable.Where(w => w.To >= from && w.From <= to)];
        }
    }

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

    /// <summary>
    /// The instants within [from, to] at which two or more instances were out of recovery, whether or not they could
    /// acknowledge a commit (the same as <see cref="Instants"/> unless the monitor counts only acknowledging primaries).
    /// </summary>
    public IReadOnlyList<DualPrimaryInstant> OutOfRecoveryInstants(long from, long to)
    {
        lock (_writable)
        {
            return InstantsOf(_outOfRecovery, _origin, (long)(Period.TotalSeconds * Stopwatch.Frequency), from, to);
        }
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
        Task[] leftBehind;
        lock (_leftBehind)
        {
            leftBehind = [.. _leftBehind];
        }

        // Questions left behind end now (cancelled with the monitor) or with their server; bounded.
        await Task.WhenAll(leftBehind).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task SessionLoopAsync(Peer member)
    {
        var socket = ConnectionStrings.Socket(_layout, member);
        using var timer = new PeriodicTimer(Period);
        NpgsqlConnection? session = null;
        long number = 0;
        Task<(bool OutOfRecovery, int Senders, DateTime ServerAt)>? pending = null;
        long pendingFrom = 0;
        try
        {
            do
            {
                if (session is null)
                {
                    session = await OpenSessionAsync(socket);
                    if (session is null)
                    {
                        continue;
                    }

                    number = Interlocked.Increment(ref _sessionNumbers);
                    lock (_openSessions)
                    {
                        _openSessions[member.Name] = number;
                    }
                }

                if (pending is null)
                {
                    pendingFrom = Stopwatch.GetTimestamp();
                    pending = AskAsync(session);
                }

                // Never cancelled: an answer later than SampleTimeout is no sample, and the next tick waits for it.
                var limit = Stopwatch.GetElapsedTime(pendingFrom) < SampleTimeout ? SampleTimeout - Stopwatch.GetElapsedTime(pendingFrom) : Period;
                if (!await SessionWriter.AnsweredWithinAsync(pending, limit, _stop.Token))
                {
                    if (Stopwatch.GetElapsedTime(pendingFrom) >= SessionStuck)
                    {
                        LeaveBehind(pending, session);
                        (session, pending) = (null, null);
                        Forget(member.Name, number);
                    }

                    continue;
                }

                var answered = Stopwatch.GetTimestamp();
                var question = pending;
                pending = null;
                if (question.IsCompletedSuccessfully)
                {
                    Interlocked.Increment(ref _sessionSamples);
                    Take(member.Name, await question, pendingFrom, answered, session: number);
                }
                else
                {
                    _stop.Token.ThrowIfCancellationRequested();
                    await session.DisposeAsync();
                    session = null;
                    Forget(member.Name, number);
                }
            }
            while (await timer.WaitForNextTickAsync(_stop.Token));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            if (session is not null)
            {
                if (pending is not null)
                {
                    LeaveBehind(pending, session);
                }
                else
                {
                    await session.DisposeAsync();
                }
            }
        }
    }

    private void Forget(string member, long number)
    {
        lock (_openSessions)
        {
            if (_openSessions.TryGetValue(member, out var open) && open == number)
            {
                _openSessions.Remove(member);
            }
        }
    }

    private void LeaveBehind(Task question, NpgsqlConnection session)
    {
        var left = question.ContinueWith(_ => session.DisposeAsync().AsTask(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
        lock (_leftBehind)
        {
            _leftBehind.Add(left);
        }
    }

    private async Task<NpgsqlConnection?> OpenSessionAsync(string connectionString)
    {
        // Cancelling an open is safe: no backend exists yet, so no cancel request is sent.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(1));
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(timeout.Token);
            return connection;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException or IOException or System.Net.Sockets.SocketException)
        {
            await connection.DisposeAsync();
            _stop.Token.ThrowIfCancellationRequested();
            return null;
        }
    }

    /// <summary>The question on a long-lived session; cancelled only when the monitor stops.</summary>
    private async Task<(bool OutOfRecovery, int Senders, DateTime ServerAt)> AskAsync(NpgsqlConnection session)
    {
        await using var command = new NpgsqlCommand(Question, session) { CommandTimeout = 0 };
        return await ReadAsync(command, _stop.Token);
    }

    private static async Task<(bool OutOfRecovery, int Senders, DateTime ServerAt)> ReadAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetBoolean(0), reader.GetInt32(1), reader.GetFieldValue<DateTime>(2));
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
                // A late answer is no sample, but its server time is exact: kept, and the socket tried as for none.
                if (!Take(member.Name, await WritableAsync(tcp)))
                {
                    Take(member.Name, await WritableAsync(socket));
                }

                Interlocked.Increment(ref _samples);
            }
            while (await timer.WaitForNextTickAsync(_stop.Token));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Records an answer over a new connection; whether it was a sample (answered within <see cref="SampleTimeout"/>).</summary>
    private bool Take(string member, ((bool OutOfRecovery, int Senders, DateTime ServerAt) Answer, long From, long To)? answer) =>
        answer is { } a && Take(member, a.Answer, a.From, a.To);

    /// <summary>
    /// Records an answer asked at <paramref name="from"/> and read at <paramref name="to"/>: its server time always
    /// (exact however late it was read), as a long-lived <paramref name="session"/>'s answer when it came on one, and as
    /// a sample (out of recovery at all, and writable as the monitor counts it) only when read within
    /// <see cref="SampleTimeout"/>; whether it was a sample.
    /// </summary>
    private bool Take(string member, (bool OutOfRecovery, int Senders, DateTime ServerAt) answer, long from, long to, long? session = null)
    {
        var writable = answer.OutOfRecovery && answer.Senders >= _acknowledgingStandbys;
        var sample = Stopwatch.GetElapsedTime(from, to) <= SampleTimeout;
        lock (_writable)
        {
            if (session is { } number)
            {
                _answers.Add(new SessionAnswer(member, number, from, to, writable));
            }

            _serverAnswers.Add(new ServerAnswer(member, answer.ServerAt, writable));
            if (sample && answer.OutOfRecovery)
            {
                _outOfRecovery.Add((member, from, to));
            }

            if (sample && writable)
            {
                _writable.Add((member, from, to));
            }
        }

        return sample;
    }

    /// <summary>
    /// The answer to <see cref="Question"/> over a new connection, with when this attempt began and when the answer was
    /// read: a sample covers only its own attempt (a TCP attempt to a cut-off instance before it is not part of it).
    /// Null when it could not be asked, or not answered within <see cref="SampleTimeout"/> (the attempt is cancelled
    /// then). An answer read later all the same (a slow cancellation, or the monitor's own continuation delayed on a
    /// loaded machine) is returned but is no sample: it would stretch the sample over time the instance may no longer
    /// have been writable, as the long-lived sessions' rule says too; its server time is exact all the same.
    /// </summary>
    private async Task<((bool OutOfRecovery, int Senders, DateTime ServerAt) Answer, long From, long To)?> WritableAsync(string connectionString)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(SampleTimeout);
        var from = Stopwatch.GetTimestamp();
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(timeout.Token);
            await using var command = new NpgsqlCommand(Question, connection);
            var answer = await ReadAsync(command, timeout.Token);
            return (answer, from, Stopwatch.GetTimestamp());
        }
        catch (PostgresException e) when (ShuttingDown(e))
        {
            // The postmaster refused the connection because it shuts down: from then on nothing of it commits again
            // before a restart, so "not writable" holds at the moment the refusal was read (by this machine's clock,
            // the servers' clock too), though no server time came with it.
            return ((false, 0, DateTime.UtcNow), from, Stopwatch.GetTimestamp());
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException or IOException or System.Net.Sockets.SocketException)
        {
            _stop.Token.ThrowIfCancellationRequested();
            return null;
        }
    }

    /// <summary>PostgreSQL's "the database system is shutting down" (57P03, cannot connect now).</summary>
    public static bool ShuttingDown(PostgresException e) =>
        e.SqlState == PostgresErrorCodes.CannotConnectNow && e.MessageText.Contains("shutting down", StringComparison.Ordinal);
}
