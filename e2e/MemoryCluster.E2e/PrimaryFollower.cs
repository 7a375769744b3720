using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Manager;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>
/// A write route that follows the control state: every 100 ms it asks every manager for /status and routes
/// writes to the instance named primary by the answer with the highest epoch. While no manager answers, or
/// none names a primary, it falls back to the libpq-style multi-host read-write connection string. Each time
/// the route changes, the previous target's token is cancelled, so a write stuck on a dead or hung primary is
/// abandoned at once instead of waiting for its timeout.
/// </summary>
internal sealed class PrimaryFollower : IWriteRoute, IAsyncDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan StatusTimeout = TimeSpan.FromMilliseconds(600);

    private readonly LocalCluster _cluster;
    private readonly CancellationTokenSource _stop;
    private readonly Task _loop;
    private readonly object _gate = new();
    private CancellationTokenSource _currentSource = new();
    private WriteTarget _current;
    private string? _named;

    public PrimaryFollower(LocalLayout layout, TimeSpan maxDuration)
    {
        _cluster = new LocalCluster(layout, TextWriter.Null);
        _current = new WriteTarget(ConnectionStrings.ReadWrite(layout), _currentSource.Token);
        _stop = new CancellationTokenSource(maxDuration);
        _loop = Task.Run(RunAsync);
    }

    public WriteTarget Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <summary>The instance the control state names primary, as last seen; null while unknown.</summary>
    public string? Named
    {
        get
        {
            lock (_gate)
            {
                return _named;
            }
        }
    }

    /// <summary>The primary named by the answer with the highest epoch, or null.</summary>
    public static string? NamedPrimary(IReadOnlyList<(Peer Member, StatusDocument? Status)> statuses) =>
        statuses.Where(s => s.Status is not null).Select(s => s.Status!).OrderByDescending(s => s.Epoch).FirstOrDefault()?.Primary;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
        _currentSource.Dispose();
    }

    private async Task RunAsync()
    {
        var layout = _cluster.Layout;
        while (!_stop.IsCancellationRequested)
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
            {
                timeout.CancelAfter(StatusTimeout);
                var named = NamedPrimary(await _cluster.StatusAsync(timeout.Token));
                var member = layout.Members.FirstOrDefault(m => m.Name == named);
                Route(member?.Name, member is null ? ConnectionStrings.ReadWrite(layout) : ConnectionStrings.Direct(layout, member, pooled: true));
            }

            try
            {
                await Task.Delay(Period, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Route(string? named, string connectionString)
    {
        CancellationTokenSource? superseded = null;
        lock (_gate)
        {
            if (named == _named && connectionString == _current.ConnectionString)
            {
                return;
            }

            superseded = _currentSource;
            _currentSource = new CancellationTokenSource();
            _current = new WriteTarget(connectionString, _currentSource.Token);
            _named = named;
        }

        superseded.Cancel();
        superseded.Dispose();
    }
}

/// <summary>Npgsql connection strings for a local cluster, as the application role.</summary>
internal static class ConnectionStrings
{
    /// <summary>Every instance, read-write: Npgsql finds the primary (re-checked within a second), as a libpq client would.</summary>
    public static string ReadWrite(LocalLayout layout) => new NpgsqlConnectionStringBuilder(Direct(layout, layout.Members[0], pooled: true))
    {
        Host = string.Join(',', layout.Members.Select(m => $"{m.Host}:{m.PgPort}")),
        TargetSessionAttributes = "read-write",

        // Npgsql remembers which host was primary for HostRecheckSeconds (default 10): re-check within a second.
        HostRecheckSeconds = 1,
    }.ConnectionString;

    /// <summary>One instance over TCP. A cancelled command breaks its connection at once (no cancel request to a server that may be hung).</summary>
    public static string Direct(LocalLayout layout, Peer member, bool pooled) => new NpgsqlConnectionStringBuilder
    {
        Host = member.Host,
        Port = member.PgPort,
        Username = "app",
        Database = "app",
        Passfile = layout.PgPassFile,
        Pooling = pooled,
        Timeout = 2,
        CancellationTimeout = -1,
    }.ConnectionString;

    /// <summary>One instance over its private Unix socket, as the superuser (trusted there); the socket works across network namespaces.</summary>
    public static string Socket(LocalLayout layout, Peer member) => new NpgsqlConnectionStringBuilder
    {
        Host = Path.Combine(layout.InstanceDirectory(member), "run"),
        Port = member.PgPort,
        Username = "postgres",
        Database = "postgres",
        Pooling = false,
        Timeout = 2,
        CancellationTimeout = -1,
    }.ConnectionString;
}
