using MemoryCluster.Compute.Store;
using Npgsql;

namespace MemoryCluster.Compute.Tests.Store;

[Trait("Category", "Integration")]
public sealed class MigrationRunnerTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Migrations_apply_on_an_empty_database_and_a_rerun_applies_none()
    {
        await using var database = new Database(new DatabaseOptions("rw", await postgres.NewDatabaseAsync()));
        var first = await MigrationRunner.MigrateAsync(database, Migration.Known, CancellationToken.None);
        Assert.Equal(Migration.Known.Select(m => m.Version), first.Select(m => m.Version));
        Assert.Empty(await MigrationRunner.MigrateAsync(database, Migration.Known, CancellationToken.None));
        Assert.Equal(Migration.Known.Count, await ScalarAsync(database, "select count(*) from schema_migrations"));
        Assert.Equal(0, await ScalarAsync(database, "select count(*) from triples"));
    }

    [Fact]
    public async Task Processes_starting_together_apply_each_migration_once()
    {
        await using var database = new Database(new DatabaseOptions("rw", await postgres.NewDatabaseAsync()));
        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => MigrationRunner.MigrateAsync(database, Migration.Known, CancellationToken.None)));
        Assert.Equal(Migration.Known.Count, runs.Sum(r => r.Count));
        Assert.Equal(Migration.Known.Count, await ScalarAsync(database, "select count(*) from schema_migrations"));
    }

    [Fact]
    public async Task A_migration_that_fails_leaves_the_schema_as_it_was()
    {
        await using var database = new Database(new DatabaseOptions("rw", await postgres.NewDatabaseAsync()));
        await MigrationRunner.MigrateAsync(database, Migration.Known, CancellationToken.None);
        var next = Migration.Known.Count + 1;
        Migration[] withBad =
        [
            .. Migration.Known,
            new(next, "good_part", "create table half_done (x int)"),
            new(next + 1, "bad_part", "alter table triples add column extra int; select 1/0"),
        ];

        var e = await Assert.ThrowsAsync<StoreException>(() => MigrationRunner.MigrateAsync(database, withBad, CancellationToken.None));
        Assert.Contains($"migration {next + 1} (bad_part)", e.Message, StringComparison.Ordinal);
        Assert.Contains("division by zero", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync(database, "select count(*) from pg_tables where tablename = 'half_done'"));
        Assert.Equal(0, await ScalarAsync(database, "select count(*) from information_schema.columns where table_name = 'triples' and column_name = 'extra'"));
        Assert.Equal(Migration.Known.Count, await ScalarAsync(database, "select count(*) from schema_migrations"));
    }

    [Fact]
    public async Task A_database_migrated_by_a_newer_build_is_refused_and_left_alone()
    {
        await using var database = new Database(new DatabaseOptions("rw", await postgres.NewDatabaseAsync()));
        Migration[] newer = [.. Migration.Known, new(Migration.Known.Count + 1, "future", "create table future (x int)")];
        await MigrationRunner.MigrateAsync(database, newer, CancellationToken.None);
        var e = await Assert.ThrowsAsync<StoreException>(() => MigrationRunner.MigrateAsync(database, Migration.Known, CancellationToken.None));
        Assert.Contains("newer than this build knows", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, await ScalarAsync(database, "select count(*) from pg_tables where tablename = 'future'"));
    }

    internal static Task<long> ScalarAsync(Database database, string sql) =>
        database.RunAsync("test scalar", async (connection, ct) =>
        {
            await using var command = new NpgsqlCommand(sql, connection);
            return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
        }, CancellationToken.None);
}
