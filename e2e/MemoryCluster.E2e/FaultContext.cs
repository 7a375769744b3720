using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Api;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>What a scenario can see and do while it runs: the cluster, the writer's progress, the managers' reports, the fault instant.</summary>
internal sealed class FaultContext(E2eCluster cluster, AckedWriter writer, StatusWatcher statuses, Peer primary, TextWriter log, CancellationToken cancellationToken)
{
    private readonly List<string> _notes = [];
    private readonly List<Func<StatusWatcher, string?>> _checks = [];

    public E2eCluster Cluster => cluster;

    public IReadOnlyList<Peer> Members => cluster.Layout.Members;

    /// <summary>Every manager's /status, as read every 100 ms.</summary>
    public StatusWatcher Statuses => statuses;

    /// <summary>The primary the fault is aimed at (after any preparation, such as a switchover).</summary>
    public Peer Primary { get; private set; } = primary;

    public CancellationToken CancellationToken => cancellationToken;

    /// <summary>The fault instant (Stopwatch ticks); 0 until <see cref="Fault"/>.</summary>
    public long FaultAt { get; private set; }

    /// <summary>What the scenario noted about this run, printed under its line.</summary>
    public IReadOnlyList<string> Notes
    {
        get
        {
            lock (_notes)
            {
                return [.. _notes];
            }
        }
    }

    /// <summary>Checks of the scenario's own to make once the cluster is back at full strength.</summary>
    public IReadOnlyList<Func<StatusWatcher, string?>> Checks => _checks;

    public NodeProcesses Node(Peer member) => new(cluster.Layout, member);

    public void Fault()
    {
        FaultAt = Stopwatch.GetTimestamp();
        log.WriteLine($"    fault at primary {Primary.Name}");
    }

    public void Note(string note)
    {
        lock (_notes)
        {
            _notes.Add(note);
        }
    }

    /// <summary>A check to make once the cluster is back at full strength: a violation, or null.</summary>
    public void AfterHealing(Func<StatusWatcher, string?> check) => _checks.Add(check);

    /// <summary>Waits until a write sent after the fault is acknowledged by another instance than <paramref name="old"/>; false on timeout.</summary>
    public Task<bool> WaitForWritesAwayFromAsync(Peer old, TimeSpan limit) =>
        writer.WaitForAsync(w => w.Count > 0 && w[^1].SentAt >= FaultAt && w[^1].ServerPort != old.PgPort, limit);

    /// <summary>
    /// The first write sent after the fault and acknowledged by another member than <paramref name="old"/>: which
    /// member, and seconds from the fault to its acknowledgement; null when there is none.
    /// </summary>
    public (string Member, double Seconds)? FirstWriteAwayFrom(Peer old)
    {
        var write = writer.Writes.FirstOrDefault(w => w.SentAt >= FaultAt && w.ServerPort != old.PgPort);
        return write.Id == 0
            ? null
            : (Members.FirstOrDefault(m => m.PgPort == write.ServerPort)?.Name ?? $"port {write.ServerPort}", Stopwatch.GetElapsedTime(FaultAt, write.AckedAt).TotalSeconds);
    }

    /// <summary>How many of the primary follower's writes sent after the fault <paramref name="member"/> acknowledged.</summary>
    public int AckedBy(Peer member) => writer.Writes.Count(w => w.SentAt >= FaultAt && w.ServerPort == member.PgPort);

    /// <summary>The highest epoch any manager reports now.</summary>
    public async Task<ulong> MaxEpochAsync() =>
        (await cluster.StatusAsync(cancellationToken)).Select(s => s.Status?.Epoch.Value ?? 0).DefaultIfEmpty(0UL).Max();

    /// <summary>A signed switchover request to the first manager that answers; the scenario then watches it happen.</summary>
    public async Task<ManagerAnswer> AskSwitchoverAsync(Peer target)
    {
        var api = cluster.Local.SigningApi();
        foreach (var member in Members)
        {
            try
            {
                return await api.SwitchoverAsync(member.HttpBase, target.Name, cancellationToken);
            }
            catch (InstanceApiException)
            {
            }
        }

        throw new InvalidOperationException($"no manager answered a switchover request to {target.Name}");
    }

    /// <summary>
    /// Asks every manager's /status in a tight loop (each ask bounded by 300 ms) until one reports an epoch above
    /// <paramref name="epoch"/>; that member and its report, or null after <paramref name="limit"/>.
    /// </summary>
    public async Task<(string Member, ulong Epoch, string? Primary)?> WaitForEpochAsync(ulong epoch, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < limit)
        {
            var answers = await Task.WhenAll(Members.Select(async m =>
            {
                using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                bound.CancelAfter(TimeSpan.FromMilliseconds(300));
                return (m.Name, Status: await LocalCluster.Api.TryStatusAsync(m.HttpBase, bound.Token));
            }));
            if (answers.FirstOrDefault(a => a.Status is { } s && s.Epoch.Value > epoch) is { Status: { } moved } found)
            {
                return (found.Name, moved.Epoch.Value, moved.Primary);
            }

            await Task.Delay(5, cancellationToken);
        }

        return null;
    }

    /// <summary>Waits (checking every 10 ms) until <paramref name="done"/> holds; false when it did not within <paramref name="limit"/>.</summary>
    public Task<bool> WaitUntilAsync(Func<bool> done, TimeSpan limit) => Poll.UntilAsync(done, limit, TimeSpan.FromMilliseconds(10), cancellationToken);

    /// <summary>Waits (checking every 100 ms: each check asks the managers) until <paramref name="done"/> holds; false when it did not within <paramref name="limit"/>.</summary>
    public Task<bool> WaitUntilAsync(Func<Task<bool>> done, TimeSpan limit) => Poll.UntilAsync(done, limit, TimeSpan.FromMilliseconds(100), cancellationToken);

    /// <summary><c>local up</c>: starts every manager that is not running (a node reboot) and waits for health.</summary>
    public async Task RestartAsync()
    {
        var (code, output) = await CliAsync("local", "up", "--timeout", "150");
        if (code != 0)
        {
            log.WriteLine($"    local up exited {code}:\n{output}");
        }
    }

    public Task<(int Code, string Output)> CliAsync(params string[] args) => cluster.CliAsync(args, cancellationToken);

    public async Task<Peer> RaftLeaderAsync() =>
        await RaftLeaderOrNullAsync() ?? throw new InvalidOperationException("no instance reports itself Raft leader");

    public async Task<Peer?> RaftLeaderOrNullAsync() =>
        (await cluster.StatusAsync(cancellationToken)).FirstOrDefault(s => s.Status?.Raft.Role == "leader").Member;

    /// <summary>A planned switchover, as preparation; the fault then aims at the new primary.</summary>
    public async Task SwitchoverAsync(Peer target)
    {
        var (code, output) = await CliAsync("local", "switchover", "--to", target.Name);
        if (code != 0)
        {
            throw new InvalidOperationException($"switchover to {target.Name} (preparation) failed:\n{output}");
        }

        Primary = target;
        log.WriteLine($"    switched the primary over to {target.Name} first");
    }

    /// <summary>
    /// A heavy write load on <paramref name="primary"/> for about <paramref name="duration"/> (at most 40 statements
    /// of 20,000 rows, each waited for at most 10 s, never cancelled); returns the WAL it wrote, in bytes.
    /// </summary>
    public async Task<long> BallastAsync(Peer primary, TimeSpan duration)
    {
        var connection = new NpgsqlConnection(ConnectionStrings.Direct(cluster.Layout, primary, pooled: false));
        await connection.OpenAsync(cancellationToken);
        Task? pending = null;
        try
        {
            pending = ExecuteAsync(connection, "create table if not exists e2e_ballast (id bigint, pad text)");
            await pending;
            var from = await LsnAsync(connection);
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 40 && watch.Elapsed < duration; i++)
            {
                pending = ExecuteAsync(connection, "insert into e2e_ballast select g, repeat('x', 400) from generate_series(1, 20000) g");
                if (!await SessionWriter.AnsweredWithinAsync(pending, TimeSpan.FromSeconds(10), cancellationToken))
                {
                    return 0;
                }

                await pending;
            }

            pending = null;
            return (long)(await LsnAsync(connection) - from);
        }
        finally
        {
            // A statement still running keeps its connection until it ends (closing it under the statement would not do).
            if (pending is { IsCompleted: false })
            {
                _ = pending.ContinueWith(_ => connection.DisposeAsync().AsTask(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
            else
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>The pid of <paramref name="primary"/>'s walsender that streams to <paramref name="standby"/>; null when there is none.</summary>
    public async Task<int?> WalSenderPidAsync(Peer primary, Peer standby)
    {
        await using var connection = new NpgsqlConnection(ConnectionStrings.Socket(cluster.Layout, primary));
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("select pid from pg_stat_replication where application_name = $1", connection);
        command.Parameters.AddWithValue(standby.Name);
        return await command.ExecuteScalarAsync(cancellationToken) is int pid ? pid : null;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync();
    }

    private async Task<ulong> LsnAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint", connection);
        return (ulong)(long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
