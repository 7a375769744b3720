using System.Data;
using Npgsql;

namespace MemoryCluster.Compute.Store;

/// <summary>
/// Applies the schema migrations on the primary: under a transaction-scoped advisory lock (so that compute
/// processes starting together apply each once), all pending ones in one transaction with the rows that record
/// them, so that a migration that fails leaves the schema exactly as it was.
/// </summary>
public static class MigrationRunner
{
    /// <summary>The advisory lock's key: "mcschema" as a 64-bit number.</summary>
    public const long LockKey = 0x6D63736368656D61;

    /// <summary>Brings the schema to this build's; returns the migrations it applied (none when it was current).</summary>
    public static Task<IReadOnlyList<Migration>> MigrateAsync(Database database, IReadOnlyList<Migration> known, CancellationToken cancellationToken) =>
        database.InTransactionAsync("migrate schema", IsolationLevel.ReadCommitted, async (connection, transaction, ct) =>
        {
            await ExecuteAsync(connection, transaction, "select pg_advisory_xact_lock($1)", ct, LockKey).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction,
                "create table if not exists schema_migrations (version integer primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())",
                ct).ConfigureAwait(false);
            var applied = new List<AppliedMigration>();
            await using (var read = Database.Command(connection, "select version, name, checksum from schema_migrations order by version", transaction))
            await using (var reader = await read.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    applied.Add(new AppliedMigration(reader.GetInt32(0), reader.GetString(1), reader.GetString(2)));
                }
            }

            switch (MigrationPlanner.Plan(applied, known))
            {
                case MigrationPlan.Refuse refuse:
                    throw new InvalidOperationException(refuse.Reason);
                case MigrationPlan.Apply apply:
                    foreach (var m in apply.Pending)
                    {
                        try
                        {
                            await ExecuteAsync(connection, transaction, m.Sql, ct).ConfigureAwait(false);
                        }
                        catch (PostgresException e)
                        {
                            throw new StoreException($"migration {m.Version} ({m.Name})", $"{e.MessageText} (SQLSTATE {e.SqlState}); nothing was changed", e);
                        }

                        await ExecuteAsync(connection, transaction, "insert into schema_migrations (version, name, checksum) values ($1, $2, $3)", ct, m.Version, m.Name, m.Checksum).ConfigureAwait(false);
                    }

                    return apply.Pending;
                default:
                    throw new InvalidOperationException("unknown migration plan");
            }
        }, cancellationToken);

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken ct, params object?[] parameters)
    {
        await using var command = Database.Command(connection, sql, transaction, parameters);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
