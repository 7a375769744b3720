using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace MemoryCluster.Instance.Postgres;

/// <summary>What one query round tells about a running server.</summary>
/// <param name="InRecovery">True on a replica.</param>
/// <param name="Timeline">The timeline the server writes (primary) or receives (replica).</param>
/// <param name="WriteLsn">Primary: current WAL insert position. Replica: last replayed position.</param>
/// <param name="ReceiveLsn">Replica: last WAL position received and flushed to disk. Primary: its flush position.</param>
/// <param name="ReplayLsn">Replica: last WAL position replayed. Primary: same as <paramref name="WriteLsn"/>.</param>
/// <param name="Streaming">Replica: the WAL receiver is streaming. Primary: false.</param>
internal sealed record PgState(bool InRecovery, long Timeline, ulong WriteLsn, ulong ReceiveLsn, ulong ReplayLsn, bool Streaming);

/// <summary>One standby as the primary's pg_stat_replication shows it.</summary>
internal sealed record StandbyState(string ApplicationName, string State, string SyncState, ulong FlushLsn, ulong ReplayLsn);

/// <summary>
/// The manager's SQL connection to its own PostgreSQL, over the private Unix socket as the superuser. Every
/// value goes in as a parameter; the one exception, role passwords in DDL, sends a SCRAM verifier, never the
/// password itself.
/// </summary>
internal sealed class PgClient(string socketDirectory, int port)
{
    // Pooled (at most two idle connections): the state is read several times a second, and a fresh backend
    // each time costs a fork. The pool is cleared whenever Postgres starts or exits (ResetPool).
    private readonly string _connectionString = ConnectionString(socketDirectory, port, pooling: true);

    // The health probe's: a new connection every time, not a pooled one, since a postmaster that cannot fork a
    // backend is not healthy.
    private readonly string _probeConnectionString = ConnectionString(socketDirectory, port, pooling: false);

    private static string ConnectionString(string socketDirectory, int port, bool pooling) => new NpgsqlConnectionStringBuilder
    {
        Host = socketDirectory,
        Port = port,
        Username = "postgres",
        Database = "postgres",
        Pooling = pooling,
        MinPoolSize = 0,
        MaxPoolSize = 2,
        Timeout = 3,
        CommandTimeout = 5,
        ApplicationName = "memorycluster-instance-manager",

        // The manager's own writes (roles, grants, the app database) are set up before any standby exists in
        // quorum mode; they must not wait for synchronous replication.
        Options = "-c synchronous_commit=local",
    }.ConnectionString;

    private int _lastReceivedTimeline;

    /// <summary>Drops pooled connections: after Postgres started or exited they lead nowhere.</summary>
    public void ResetPool()
    {
        using var connection = new NpgsqlConnection(_connectionString);
        NpgsqlConnection.ClearPool(connection);
    }

    /// <summary>True when the server answers a query.</summary>
    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select 1", connection);
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Waits until the server answers, or throws when <paramref name="timeout"/> passes first or the server
    /// exits (<paramref name="exited"/> completes) meanwhile.
    /// </summary>
    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken, Task? exited = null)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!await IsReadyAsync(cancellationToken).ConfigureAwait(false))
        {
            if (exited is { IsCompleted: true })
            {
                throw new InvalidOperationException($"postgres on port {port} exited while starting");
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"postgres on port {port} did not accept connections within {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The health probe's query: <c>pg_is_in_recovery()</c> on a fresh connection, all within <paramref name="timeout"/>.</summary>
    public async Task<bool> InRecoveryAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await using var connection = new NpgsqlConnection(_probeConnectionString);
            await connection.OpenAsync(limit.Token).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select pg_is_in_recovery()", connection);
            return (bool)(await command.ExecuteScalarAsync(limit.Token).ConfigureAwait(false))!;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"postgres did not answer the health probe within {timeout.TotalMilliseconds} ms");
        }
    }

    public async Task<PgState> GetStateAsync(CancellationToken cancellationToken)
    {
        const string sql = """
            select pg_is_in_recovery(),
                   case when pg_is_in_recovery() then null else pg_current_wal_lsn() end,
                   case when pg_is_in_recovery() then null else pg_current_wal_flush_lsn() end,
                   pg_last_wal_receive_lsn(),
                   pg_last_wal_replay_lsn(),
                   (select received_tli from pg_stat_wal_receiver),
                   (select status from pg_stat_wal_receiver),
                   case when pg_is_in_recovery() then null else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
                   (select timeline_id from pg_control_checkpoint())
            """;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var inRecovery = reader.GetBoolean(0);
        ulong Lsn(int i) => reader.IsDBNull(i) ? 0 : (ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(i);
        if (!inRecovery)
        {
            var current = Lsn(1);
            return new PgState(false, reader.GetInt32(7), current, Lsn(2), current, false);
        }

        var receive = Lsn(3);
        var replay = Lsn(4);

        // The WAL receiver's timeline while it runs. Without one (the primary just died) the last checkpoint's
        // timeline can be older than what was received since, so the last timeline streamed is kept (timelines
        // of one data directory only grow, through rewind and re-clone too).
        var checkpointTimeline = reader.GetInt32(8);
        if (!reader.IsDBNull(5))
        {
            _lastReceivedTimeline = reader.GetInt32(5);
        }

        var timeline = Math.Max(checkpointTimeline, _lastReceivedTimeline);
        var streaming = !reader.IsDBNull(6) && reader.GetString(6) == "streaming";
        return new PgState(true, timeline, replay, Math.Max(receive, replay), replay, streaming);
    }

    public async Task<IReadOnlyList<StandbyState>> GetStandbysAsync(CancellationToken cancellationToken)
    {
        const string sql = "select application_name, state, sync_state, coalesce(flush_lsn, '0/0'), coalesce(replay_lsn, '0/0') from pg_stat_replication order by application_name";
        var result = new List<StandbyState>();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(new StandbyState(
                reader.GetString(0),
                reader.GetString(1),
                reader.GetString(2),
                (ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(3),
                (ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(4)));
        }

        return result;
    }

    /// <summary>Creates the physical slots that are missing (slots are not replicated: every primary keeps its own).</summary>
    public async Task EnsureSlotsAsync(IEnumerable<string> slots, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        foreach (var slot in slots)
        {
            await using var command = new NpgsqlCommand(
                "select pg_create_physical_replication_slot($1, true) where not exists (select 1 from pg_replication_slots where slot_name = $1)",
                connection);
            command.Parameters.AddWithValue(slot);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Creates <paramref name="role"/> if missing and sets its password, sending only a SCRAM verifier.</summary>
    public async Task EnsureRoleAsync(string role, string password, bool replication, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var identifier = QuoteIdentifier(role);
        await using (var exists = new NpgsqlCommand("select 1 from pg_roles where rolname = $1", connection))
        {
            exists.Parameters.AddWithValue(role);
            if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
            {
                await using var create = new NpgsqlCommand($"create role {identifier} login{(replication ? " replication" : string.Empty)}", connection);
                await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        // DDL takes no parameters; a SCRAM verifier is what PostgreSQL stores anyway, so the password itself
        // never reaches the server, its logs or pg_stat_activity.
        await using var alter = new NpgsqlCommand($"alter role {identifier} password '{ScramVerifier(password)}'", connection);
        await alter.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Lets <paramref name="role"/> run pg_rewind against this server: the four file functions PostgreSQL
    /// documents for a non-superuser rewind source. Grants replicate, so doing it once on the first primary
    /// covers every later one.
    /// </summary>
    public async Task GrantRewindAsync(string role, CancellationToken cancellationToken)
    {
        var identifier = QuoteIdentifier(role);
        foreach (var function in new[]
        {
            "pg_catalog.pg_ls_dir(text, boolean, boolean)",
            "pg_catalog.pg_stat_file(text, boolean)",
            "pg_catalog.pg_read_binary_file(text)",
            "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
        })
        {
            await ExecuteAsync($"grant execute on function {function} to {identifier}", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Promotes the replica, then checkpoints. Without the checkpoint pg_control keeps the old timeline until the
    /// next scheduled one, and a pg_rewind against this server decides "same timeline, no rewind required",
    /// leaving the old primary unable to follow.
    /// </summary>
    /// <summary>Creates database <paramref name="database"/> owned by <paramref name="owner"/> if it is missing.</summary>
    public async Task EnsureDatabaseAsync(string database, string owner, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var exists = new NpgsqlCommand("select 1 from pg_database where datname = $1", connection);
        exists.Parameters.AddWithValue(database);
        if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
        {
            await using var create = new NpgsqlCommand($"create database {QuoteIdentifier(database)} owner {QuoteIdentifier(owner)}", connection);
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<bool> PromoteAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("select pg_promote(true, 30)", connection) { CommandTimeout = 35 };
        if (!(bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
        {
            return false;
        }

        await using var checkpoint = new NpgsqlCommand("checkpoint", connection) { CommandTimeout = 60 };
        await checkpoint.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public Task ReloadAsync(CancellationToken cancellationToken) => ExecuteAsync("select pg_reload_conf()", cancellationToken);

    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A PostgreSQL SCRAM-SHA-256 verifier (RFC 5802/7677, 4096 iterations) for an ASCII password.</summary>
    internal static string ScramVerifier(string password, byte[]? salt = null)
    {
        salt ??= RandomNumberGenerator.GetBytes(16);
        const int iterations = 4096;
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return string.Create(CultureInfo.InvariantCulture, $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}");
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}

/// <summary>PostgreSQL's text form of a WAL position, <c>X/Y</c>.</summary>
internal static class Lsn
{
    public static string Format(ulong lsn) => string.Create(CultureInfo.InvariantCulture, $"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}");

    public static ulong Parse(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            throw new FormatException($"'{text}' is not a WAL position (X/Y)");
        }

        return (ulong.Parse(text[..slash], NumberStyles.HexNumber, CultureInfo.InvariantCulture) << 32)
            | ulong.Parse(text[(slash + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }
}
