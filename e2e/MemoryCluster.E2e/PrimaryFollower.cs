using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Api;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>
/// A write route that follows the control state: it is fed every manager's /status as <see cref="StatusWatcher"/>
/// reads them (every 100 ms, each manager on a loop of its own, so a hung manager does not slow the others) and
/// routes writes to the instance named primary by the fresh answer (at most a second old) with the highest epoch.
/// Until a manager has answered, and while the answer names no primary, it uses the libpq-style multi-host
/// read-write connection string. Each time the route changes, the previous target's token is cancelled, so a write
/// stuck on a dead or hung primary is abandoned at once instead of waiting for its bound.
/// </summary>
internal sealed class PrimaryFollower : IWriteRoute, IDisposable
{
    private static readonly TimeSpan Fresh = TimeSpan.FromSeconds(1);

    private readonly LocalLayout _layout;
    private readonly object _gate = new();
    private readonly Dictionary<string, (ulong Epoch, string? Primary, long At)> _answers = [];
    private CancellationTokenSource _currentSource = new();
    private WriteTarget _current;
    private string? _named;

    public PrimaryFollower(LocalLayout layout)
    {
        _layout = layout;
        _current = new WriteTarget(ConnectionStrings.ReadWrite(layout), _currentSource.Token);
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

    public void Dispose()
    {
        lock (_gate)
        {
            _currentSource.Dispose();
        }
    }

    /// <summary>A manager's fresh /status (<see cref="StatusWatcher"/> calls this for every answer).</summary>
    public void Observe(Peer from, StatusDocument status)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(status);
        CancellationTokenSource? superseded;
        lock (_gate)
        {
            var now = Stopwatch.GetTimestamp();
            _answers[from.Name] = (status.Epoch.Value, status.Primary, now);
            var named = _answers.Values.Where(a => Stopwatch.GetElapsedTime(a.At, now) <= Fresh).OrderByDescending(a => a.Epoch).First().Primary;
            var member = _layout.Members.FirstOrDefault(m => m.Name == named);
            var connectionString = member is null ? ConnectionStrings.ReadWrite(_layout) : ConnectionStrings.Direct(_layout, member, pooled: true);
            if (member?.Name == _named && connectionString == _current.ConnectionString)
            {
                return;
            }

            superseded = _currentSource;
            _currentSource = new CancellationTokenSource();
            _current = new WriteTarget(connectionString, _currentSource.Token);
            _named = member?.Name;
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

    /// <summary>
    /// One instance over TCP. Cancelling a command still makes Npgsql send a cancel request (over a new connection to
    /// the server); CancellationTimeout = -1 then breaks the connection at once instead of waiting for the server
    /// to end the command. The writers never cancel an insert during a run (<see cref="SyncRepWarning"/>).
    /// </summary>
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
