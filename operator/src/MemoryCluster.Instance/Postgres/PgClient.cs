using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MemoryCluster.Instance.Node;
using Npgsql;

namespace MemoryCluster.Instance.Postgres;

/// <summary>What one state query tells about a running server.</summary>
/// <param name="InRecovery">True on a standby.</param>
/// <param name="Timeline">Primary: the timeline it writes. Standby: the WAL receiver's, when one runs (else timeline 0).</param>
/// <param name="WriteLsn">Primary: current WAL insert position.</param>
/// <param name="FlushLsn">Primary: WAL flushed to disk.</param>
/// <param name="ReceiveLsn">Standby: last WAL position received and flushed; null until streaming was first requested in this postmaster's life.</param>
/// <param name="ReplayLsn">Standby: last WAL position replayed.</param>
/// <param name="Receiver">Standby: the WAL receiver's state.</param>
/// <param name="ReceiverSource">Standby: host:port the WAL receiver is connected to.</param>
/// <param name="Standbys">Primary: pg_stat_replication, with each standby's reply age.</param>
/// <param name="ReceiptAgeSeconds">Standby: how long ago the WAL receiver last heard from the primary (its own clock).</param>
/// <param name="Sync"><c>synchronous_standby_names</c> as this session sees it (after any reload it processed); null when not in our form.</param>
public sealed record PgState(
    bool InRecovery,
    TimelineId Timeline,
    Lsn WriteLsn,
    Lsn FlushLsn,
    Lsn? ReceiveLsn,
    Lsn ReplayLsn,
    WalReceiverStatus Receiver,
    string? ReceiverSource,
    IReadOnlyList<StandbyObservation> Standbys,
    double? ReceiptAgeSeconds,
    QuorumSetting? Sync = null);

/// <summary>
/// The manager's SQL connection to its own PostgreSQL, over the private Unix socket as the superuser. Every
/// value goes in as a parameter; the one exception, role passwords in DDL, sends a SCRAM verifier, never the
/// password itself.
/// </summary>
public sealed class PgClient(string socketDirectory, int port)
{
    // Pooled (at most two idle connections): the state is read several times a second, and a fresh backend each
    // time costs a fork. The pool is cleared whenever PostgreSQL starts or exits (ResetPool).
    private readonly string _connectionString = ConnectionString(socketDirectory, port, pooling: true);

    // For some health probes: a new connection, since a postmaster that cannot fork a backend is not healthy.
    private readonly string _probeConnectionString = ConnectionString(socketDirectory, port, pooling: false);

    private static string ConnectionString(string socketDirectory, int port, bool pooling) => new NpgsqlConnectionStringBuilder
    {
        Host = socketDirectory,
        Port = port,
        Username = "postgres",
        Database = "postgres",
        Pooling = pooling,
        MinPoolSize = 0,
        MaxPoolSize = 3,
        Timeout = 3,
        CommandTimeout = 5,
        ApplicationName = "memorycluster-instance-manager",

        // The manager's own writes (roles, grants, the app database) are set up before any standby exists in
        // quorum mode; they must not wait for synchronous replication.
        Options = "-c synchronous_commit=local",
    }.ConnectionString;

    /// <summary>Drops pooled connections: after PostgreSQL started or exited they lead nowhere.</summary>
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

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The health probe's query: <c>pg_is_in_recovery()</c> within <paramref name="timeout"/>, over a new connection when <paramref name="fresh"/>.</summary>
    public async Task<bool> InRecoveryAsync(TimeSpan timeout, bool fresh, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await using var connection = new NpgsqlConnection(fresh ? _probeConnectionString : _connectionString);
            await connection.OpenAsync(limit.Token).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select pg_is_in_recovery()", connection);
            return (bool)(await command.ExecuteScalarAsync(limit.Token).ConfigureAwait(false))!;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"postgres did not answer the health probe within {timeout.TotalMilliseconds} ms");
        }
    }

    /// <summary>One state query: recovery, positions, the WAL receiver, and (on a primary) its standbys.</summary>
    public async Task<PgState> GetStateAsync(CancellationToken cancellationToken)
    {
        const string sql = """
            select pg_is_in_recovery(),
                   case when pg_is_in_recovery() then null else pg_current_wal_insert_lsn() end,
                   case when pg_is_in_recovery() then null else pg_current_wal_flush_lsn() end,
                   pg_last_wal_receive_lsn(),
                   pg_last_wal_replay_lsn(),
                   r.received_tli,
                   r.status,
                   r.sender_host || ':' || r.sender_port,
                   case when pg_is_in_recovery() then null else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
                   extract(epoch from now() - r.last_msg_receipt_time)::float8,
                   current_setting('synchronous_standby_names')
            from (select 1) one left join pg_stat_wal_receiver r on true;
            select application_name, state, coalesce(sync_state, ''), coalesce(flush_lsn, '0/0'), coalesce(replay_lsn, '0/0'), extract(epoch from replay_lag)::float8,
                   extract(epoch from now() - reply_time)::float8
            from pg_stat_replication order by application_name
            """;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var inRecovery = reader.GetBoolean(0);
        Lsn? Read(int i) => reader.IsDBNull(i) ? null : new Lsn((ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(i));
        var write = Read(1) ?? Lsn.Zero;
        var flush = Read(2) ?? Lsn.Zero;
        var receive = Read(3);
        var replay = Read(4) ?? Lsn.Zero;
        var timeline = !inRecovery ? (uint)reader.GetInt32(8) : reader.IsDBNull(5) ? 0u : (uint)reader.GetInt32(5);
        var receiver = reader.IsDBNull(6) ? WalReceiverStatus.None : ReceiverStatus(reader.GetString(6));
        var source = reader.IsDBNull(7) ? null : reader.GetString(7);
        double? receiptAge = reader.IsDBNull(9) ? null : reader.GetDouble(9);
        var sync = QuorumSetting.Parse(reader.GetString(10));
        var standbys = new List<StandbyObservation>();
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            standbys.Add(new StandbyObservation(
                reader.GetString(0),
                reader.GetString(1),
                reader.GetString(2),
                new Lsn((ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(3)),
                new Lsn((ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(4)),
                reader.IsDBNull(5) ? null : reader.GetDouble(5),
                reader.IsDBNull(6) ? null : reader.GetDouble(6)));
        }

        return new PgState(inRecovery, new TimelineId(timeline), write, flush, receive, replay, receiver, source, standbys, receiptAge, sync);
    }

    private static WalReceiverStatus ReceiverStatus(string status) => status switch
    {
        "starting" => WalReceiverStatus.Starting,
        "streaming" => WalReceiverStatus.Streaming,
        "waiting" => WalReceiverStatus.Waiting,
        "restarting" => WalReceiverStatus.Restarting,
        "stopping" => WalReceiverStatus.Stopping,
        "stopped" => WalReceiverStatus.Stopped,
        _ => WalReceiverStatus.Unknown,
    };

    /// <summary>The statistics behind the metrics, in one round trip (each query cheap: views and catalog sizes).</summary>
    public async Task<PgStats> ReadStatsAsync(CancellationToken cancellationToken)
    {
        const string sql = """
            select coalesce(state, 'unknown'), count(*)::float8 from pg_stat_activity where backend_type = 'client backend' group by 1;
            select coalesce(sum(xact_commit), 0)::float8, coalesce(sum(xact_rollback), 0)::float8, coalesce(sum(deadlocks), 0)::float8 from pg_stat_database;
            select datname, pg_database_size(oid)::float8 from pg_database where datallowconn;
            select wal_bytes::float8 from pg_stat_wal;
            select checkpoints_timed::float8, checkpoints_req::float8 from pg_stat_bgwriter;
            select coalesce(extract(epoch from max(clock_timestamp() - xact_start)), 0)::float8 from pg_stat_activity where backend_type = 'client backend' and xact_start is not null;
            select application_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8, extract(epoch from replay_lag)::float8
            from pg_stat_replication where not pg_is_in_recovery()
            """;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 2 };
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var backends = new Dictionary<string, double>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            backends[reader.GetString(0)] = reader.GetDouble(1);
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var (commits, rollbacks, deadlocks) = (reader.GetDouble(0), reader.GetDouble(1), reader.GetDouble(2));
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var sizes = new Dictionary<string, double>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            sizes[reader.GetString(0)] = reader.GetDouble(1);
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var wal = reader.GetDouble(0);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var (timed, requested) = (reader.GetDouble(0), reader.GetDouble(1));
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var oldest = reader.GetDouble(0);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var standbys = new List<StandbyLag>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            standbys.Add(new StandbyLag(reader.GetString(0), (long)reader.GetDouble(1), reader.IsDBNull(2) ? null : reader.GetDouble(2)));
        }

        return new PgStats(backends, commits, rollbacks, deadlocks, sizes, wal, timed, requested, oldest, standbys);
    }

    /// <summary>Signals promotion (<c>pg_promote(wait => false)</c>): returns at once; see <see cref="WaitOutOfRecoveryAsync"/>.</summary>
    public async Task SignalPromoteAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("select pg_promote(false)", connection);
        if (!(bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
        {
            throw new InvalidOperationException("pg_promote refused to signal the promotion");
        }
    }

    /// <summary>Waits until the server has left recovery (promotion done), within <paramref name="timeout"/>.</summary>
    public async Task WaitOutOfRecoveryAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            await using (var connection = await OpenAsync(cancellationToken).ConfigureAwait(false))
            {
                await using var command = new NpgsqlCommand("select pg_is_in_recovery()", connection);
                if (!(bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                {
                    return;
                }
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"postgres on port {port} was still in recovery {timeout.TotalSeconds:0} s after the promotion was signalled");
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>CHECKPOINT (a minute at most).</summary>
    public async Task CheckpointAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("checkpoint", connection) { CommandTimeout = 60 };
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates the physical slots that are missing (slots are not replicated: every primary keeps its own, and every
    /// replica keeps them ready for its promotion; they survive it) and, with <paramref name="dropOthers"/>, drops
    /// those not in use that belong to no member any more (a member removed from the cluster: a slot nobody streams
    /// from would keep WAL without end). On a standby, advances them to its replay position. One round trip: on a
    /// promotion the replicas wait for the slots, and on a busy host each round trip costs tens of ms.
    /// </summary>
    public async Task EnsureSlotsAsync(IReadOnlyCollection<string> slots, bool dropOthers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(slots);
        var names = slots.Distinct(StringComparer.Ordinal).ToArray();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "select pg_create_physical_replication_slot(s, true) from unnest($1::text[]) s where not exists (select 1 from pg_replication_slots where slot_name = s)")
        {
            Parameters = { new NpgsqlParameter { Value = names } },
        });
        if (dropOthers)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_type = 'physical' and not active and not temporary and slot_name <> all($1)")
            {
                Parameters = { new NpgsqlParameter { Value = names } },
            });
        }

        // A standby keeps them for a promotion: nobody streams from them there, so they are moved to what it has
        // replayed (in memory; written at its next restartpoint), or they would keep every WAL file from their creation.
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "select pg_replication_slot_advance(slot_name, pg_last_wal_replay_lsn()) from pg_replication_slots " +
            "where pg_is_in_recovery() and slot_type = 'physical' and not active and restart_lsn < pg_last_wal_replay_lsn() and slot_name = any($1)")
        {
            Parameters = { new NpgsqlParameter { Value = names } },
        });

        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates <paramref name="role"/> if missing and sets its password, sending only a SCRAM verifier; writes nothing
    /// when the role exists with a verifier of that password already (every promotion runs this: roles replicate,
    /// and a catalog write is a commit that waits for its WAL flush while the replicas wait for this primary).
    /// </summary>
    public async Task EnsureRoleAsync(string role, string password, bool replication, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var identifier = QuoteIdentifier(role);
        await using (var exists = new NpgsqlCommand("select coalesce(rolpassword, '') from pg_authid where rolname = $1", connection))
        {
            exists.Parameters.AddWithValue(role);
            switch (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))
            {
                case null:
                    await using (var create = new NpgsqlCommand($"create role {identifier} login{(replication ? " replication" : string.Empty)}", connection))
                    {
                        await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    break;
                case string stored when ScramVerifierMatches(stored, password):
                    return;
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
        string[] functions =
        [
            "pg_catalog.pg_ls_dir(text, boolean, boolean)",
            "pg_catalog.pg_stat_file(text, boolean)",
            "pg_catalog.pg_read_binary_file(text)",
            "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
        ];
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var missing = new List<string>();
        await using (var query = new NpgsqlCommand("select f from unnest($2::text[]) f where not has_function_privilege($1, f, 'execute')", connection))
        {
            query.Parameters.AddWithValue(role);
            query.Parameters.AddWithValue(functions);
            await using var reader = await query.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                missing.Add(reader.GetString(0));
            }
        }

        foreach (var function in missing)
        {
            await using var grant = new NpgsqlCommand($"grant execute on function {function} to {QuoteIdentifier(role)}", connection);
            await grant.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

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

    public Task ReloadAsync(CancellationToken cancellationToken) => ExecuteAsync("select pg_reload_conf()", cancellationToken);

    /// <summary>The parameters changed in the configuration files that PostgreSQL takes only at its next start (<c>pg_settings.pending_restart</c>).</summary>
    public async Task<IReadOnlyList<string>> PendingRestartAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("select name from pg_settings where pending_restart order by name", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

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
    internal static string ScramVerifier(string password, byte[]? salt = null, int iterations = 4096)
    {
        salt ??= RandomNumberGenerator.GetBytes(16);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        return string.Create(CultureInfo.InvariantCulture, $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}");
    }

    /// <summary>
    /// Whether <paramref name="stored"/> (<c>pg_authid.rolpassword</c>) is a SCRAM-SHA-256 verifier of
    /// <paramref name="password"/>: the same keys computed with its salt and iteration count. Anything else (md5,
    /// empty, malformed) is not.
    /// </summary>
    internal static bool ScramVerifierMatches(string stored, string password)
    {
        const string prefix = "SCRAM-SHA-256$";
        if (!stored.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = stored[prefix.Length..].Split('$');
        var head = parts.Length == 2 ? parts[0].Split(':') : [];
        if (head.Length != 2
            || !int.TryParse(head[0], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations is < 1 or > 1_000_000)
        {
            return false;
        }

        byte[] salt;
        try
        {
            salt = Convert.FromBase64String(head[1]);
        }
        catch (FormatException)
        {
            return false;
        }

        return salt.Length > 0 && CryptographicOperations.FixedTimeEquals(
            Encoding.ASCII.GetBytes(ScramVerifier(password, salt, iterations)), Encoding.ASCII.GetBytes(stored));
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}

/// <summary>One standby's lag, as its primary sees it.</summary>
public sealed record StandbyLag(string Name, long LagBytes, double? LagSeconds);

/// <summary>PostgreSQL's statistics for the metrics (cumulative ones as PostgreSQL counts them).</summary>
public sealed record PgStats(
    IReadOnlyDictionary<string, double> BackendsByState,
    double Commits,
    double Rollbacks,
    double Deadlocks,
    IReadOnlyDictionary<string, double> DatabaseSizes,
    double WalBytes,
    double CheckpointsTimed,
    double CheckpointsRequested,
    double OldestTransactionSeconds,
    IReadOnlyList<StandbyLag> Standbys);
