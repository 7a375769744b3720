using System.Data;
using Npgsql;

namespace MemoryCluster.Compute.Store;

/// <summary>How to reach one endpoint (read-write or read-only) and how many connections it may hold.</summary>
/// <param name="Name">The endpoint's role in logs and metrics: <c>rw</c> or <c>ro</c>.</param>
/// <param name="ConnectionString">libpq-style keywords Npgsql accepts; multi-host lists follow a failover.</param>
/// <param name="MaxConnections">The pool's bound: checkouts beyond it wait (and are counted as waiting).</param>
public sealed record DatabaseOptions(string Name, string ConnectionString, int MaxConnections = 8)
{
    /// <summary>How long a statement may run before it is cancelled.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a checkout waits for a free connection before it fails.</summary>
    public TimeSpan CheckoutTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>The pool's figures: its bound, connections open (busy and idle), checkouts waiting, connections that broke.</summary>
public readonly record struct PoolStats(int Size, int Busy, int Idle, int Waiting, long Failed);

/// <summary>
/// The one way this service talks to PostgreSQL (the runtime contract of docs/compute.md, "Database layer"): one
/// <see cref="NpgsqlDataSource"/> per endpoint; parameters always sent apart from the SQL text; statements run
/// twice on a connection are prepared there and reused; a bounded pool whose idle connections are checked by a
/// keepalive and replaced when broken; transactions that roll back on any error and surface the original one;
/// errors named by statement, never carrying parameter values; pool figures; and a shutdown that drains.
/// Nested transactions are not offered: a transaction's work gets its connection and transaction explicitly, so
/// code cannot open a second one inside it by accident.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private static int _instances;

    private readonly NpgsqlDataSource _source;
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _busy;
    private int _waiting;
    private long _failed;
    private int _disposed;

    public Database(DatabaseOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1);
        Options = options;
        var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString)
        {
            MaxPoolSize = options.MaxConnections,
            MinPoolSize = 0,
            // Prepared on a connection once used twice there, then reused (up to 64 statements per connection).
            MaxAutoPrepare = 64,
            AutoPrepareMinUsages = 2,
            // Idle connections are probed every 5 s; one that broke (server restarted, network cut) is discarded
            // and the next checkout opens a new one.
            KeepAlive = 5,
            ConnectionIdleLifetime = 60,
            CommandTimeout = (int)Math.Ceiling(options.CommandTimeout.TotalSeconds),
            // Never: it would put row values (parameters among them) into error messages.
            IncludeErrorDetail = false,
            ApplicationName = $"memorycluster-compute-{options.Name}",
        };
        // Unique in the process: the pool's figures are read from Npgsql's meter by this name.
        PoolName = $"compute-{options.Name}-{Interlocked.Increment(ref _instances)}";
        var sourceBuilder = new NpgsqlDataSourceBuilder(builder.ConnectionString) { Name = PoolName };
        _source = sourceBuilder.Build();
        _slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
    }

    public DatabaseOptions Options { get; }

    /// <summary>The underlying data source (for COPY and LISTEN, which hold a connection of their own).</summary>
    internal NpgsqlDataSource Source => _source;

    public PoolStats Stats
    {
        get
        {
            var busy = Volatile.Read(ref _busy);
            return new PoolStats(Options.MaxConnections, busy, Math.Max(0, OpenConnections() - busy), Volatile.Read(ref _waiting), Interlocked.Read(ref _failed));
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a checked-out connection; <paramref name="statement"/> names it in errors. For
    /// reads and other work that may run twice: when the connection turns out broken (the server restarted or
    /// closed it while it sat idle in the pool), Npgsql discards it and the work runs once more on a new one.
    /// </summary>
    public async Task<T> RunAsync<T>(string statement, Func<NpgsqlConnection, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            await using var lease = await CheckoutAsync(statement, cancellationToken).ConfigureAwait(false);
            try
            {
                return await work(lease.Connection, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                var broken = lease.Failed(e);
                if (broken && attempt == 0)
                {
                    continue;
                }

                throw StoreException.From(statement, e);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a transaction and commits; any error rolls it back and is rethrown as it was
    /// (wrapped once, with the statement's name), even when the rollback itself fails.
    /// </summary>
    public async Task<T> InTransactionAsync<T>(string statement, IsolationLevel isolation, Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var lease = await CheckoutAsync(statement, cancellationToken).ConfigureAwait(false);
        NpgsqlTransaction? transaction = null;
        var ended = false;
        try
        {
            transaction = await lease.Connection.BeginTransactionAsync(isolation, cancellationToken).ConfigureAwait(false);
            var result = await work(lease.Connection, transaction, cancellationToken).ConfigureAwait(false);
            ended = true;
            // IMPORTANT: never cancelled. A cancel during COMMIT makes PostgreSQL stop waiting for the synchronous
            // standbys and keep the commit locally: visible, in the feed, and on no standby (a failover loses it).
            await transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            return result;
        }
        catch (Exception e)
        {
            if (transaction is not null && !ended)
            {
                try
                {
                    await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // The connection broke: PostgreSQL rolls back a transaction whose session ended. The original
                    // error is the one to report.
                }
            }

            _ = lease.Failed(e);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw StoreException.From(statement, e);
        }
        finally
        {
            if (transaction is not null)
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>A command on <paramref name="connection"/> with positional parameters ($1, $2, ...), never inlined.</summary>
    public static NpgsqlCommand Command(NpgsqlConnection connection, string sql, NpgsqlTransaction? transaction = null, params object?[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var p in parameters)
        {
            command.Parameters.Add(p is NpgsqlParameter np ? np : new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        return command;
    }

    /// <summary>Stops new checkouts, waits up to <paramref name="timeout"/> for those in use, then closes every connection.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        if (Volatile.Read(ref _busy) > 0)
        {
            await Task.WhenAny(_drained.Task, Task.Delay(timeout)).ConfigureAwait(false);
        }

        await DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _closing.CancelAsync().ConfigureAwait(false);
        await _source.DisposeAsync().ConfigureAwait(false);
        _closing.Dispose();
    }

    private async Task<Lease> CheckoutAsync(string statement, CancellationToken cancellationToken)
    {
        if (_closing.IsCancellationRequested)
        {
            throw new StoreException(statement, $"the {Options.Name} database is shutting down", null);
        }

        Interlocked.Increment(ref _waiting);
        bool got;
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token))
        {
            try
            {
                got = await _slots.WaitAsync(Options.CheckoutTimeout, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new StoreException(statement, $"the {Options.Name} database is shutting down", null);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }

        if (!got)
        {
            throw new StoreException(statement, $"no {Options.Name} connection free within {Options.CheckoutTimeout.TotalSeconds:0.#} s ({Options.MaxConnections} in use)", null);
        }

        Interlocked.Increment(ref _busy);
        try
        {
            var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return new Lease(this, connection);
        }
        catch (Exception e)
        {
            Release();
            Interlocked.Increment(ref _failed);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw StoreException.From(statement, e);
        }
    }

    private void Release()
    {
        _slots.Release();
        if (Interlocked.Decrement(ref _busy) == 0 && _closing.IsCancellationRequested)
        {
            _drained.TrySetResult();
        }
    }

    // Npgsql's own pool knows how many physical connections are open; it publishes the count through its meter.
    private int OpenConnections() => NpgsqlPoolProbe.Open(PoolName);

    private string PoolName { get; }

    private sealed class Lease(Database owner, NpgsqlConnection connection) : IAsyncDisposable
    {
        public NpgsqlConnection Connection { get; } = connection;

        /// <summary>Counts a connection that broke; true when it did (rather than the statement failing on a sound one).</summary>
        public bool Failed(Exception e)
        {
            var broken = Connection.FullState.HasFlag(ConnectionState.Broken) || e is PostgresException { SqlState: "57P01" or "57P02" or "57P03" }
                || (e is NpgsqlException { IsTransient: true } && e is not PostgresException);
            if (broken)
            {
                Interlocked.Increment(ref owner._failed);
            }

            return broken;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await Connection.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                owner.Release();
            }
        }
    }
}
