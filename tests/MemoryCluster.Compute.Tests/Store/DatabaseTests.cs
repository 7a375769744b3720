using System.Data;
using MemoryCluster.Compute.Store;
using Npgsql;

namespace MemoryCluster.Compute.Tests.Store;

/// <summary>The database layer's contract (docs/compute.md, "Database layer"), item by item, on a real server.</summary>
[Trait("Category", "Integration")]
public sealed class DatabaseTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>
{
    private async Task<Database> OpenAsync(int max = 2, TimeSpan? checkout = null) =>
        new(new DatabaseOptions("rw", await postgres.NewDatabaseAsync(), max) { CheckoutTimeout = checkout ?? TimeSpan.FromSeconds(15) });

    private static Task<long> ScalarAsync(Database db, string sql, params object[] parameters) =>
        db.RunAsync("scalar", async (c, ct) =>
        {
            await using var command = Database.Command(c, sql, null, parameters);
            return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
        }, CancellationToken.None);

    [Fact]
    public async Task Parameters_travel_apart_from_the_SQL_text()
    {
        await using var db = await OpenAsync();
        const string hostile = "x'); drop table pg_class; --";
        var seen = new TaskCompletionSource<string>();
        var query = db.RunAsync("echo", async (c, ct) =>
        {
            await using var command = Database.Command(c, "select $1::text || '' from pg_sleep(0.3)", null, hostile);
            return (string)(await command.ExecuteScalarAsync(ct))!;
        }, CancellationToken.None);

        // What the server was sent, as another session sees it: the placeholder, not the value.
        await using var admin = new NpgsqlConnection(db.Options.ConnectionString);
        await admin.OpenAsync();
        string? text = null;
        for (var i = 0; i < 200 && text is null; i++)
        {
            await using var look = new NpgsqlCommand("select query from pg_stat_activity where query like '%pg_sleep(0.3)%' and pid <> pg_backend_pid()", admin);
            text = (string?)await look.ExecuteScalarAsync();
            if (text is null)
            {
                await Task.Delay(10);
            }
        }

        Assert.Equal(hostile, await query);
        Assert.NotNull(text);
        Assert.Contains("$1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("drop table", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_statement_run_again_on_a_connection_is_prepared_there_once()
    {
        await using var db = await OpenAsync(max: 1);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(i, await ScalarAsync(db, "select $1::bigint /* prepared-marker */", (long)i));
        }

        Assert.Equal(1, await ScalarAsync(db, "select count(*) from pg_prepared_statements where statement like '%prepared-marker%' and statement not like '%pg_prepared_statements%'"));
    }

    [Fact]
    public async Task The_pool_is_bounded_counts_waiting_checkouts_and_times_them_out_clearly()
    {
        await using var db = await OpenAsync(max: 2, checkout: TimeSpan.FromMilliseconds(400));
        var release = new TaskCompletionSource();
        var holders = Enumerable.Range(0, 2).Select(_ => db.RunAsync("hold", async (c, ct) =>
        {
            await release.Task.WaitAsync(ct);
            return 0;
        }, CancellationToken.None)).ToList();
        await Wait.UntilAsync(() => db.Stats.Busy == 2, "both connections are checked out");
        var waiting = ScalarAsync(db, "select 1");
        await Wait.UntilAsync(() => db.Stats.Waiting == 1, "the third checkout waits");
        var e = await Assert.ThrowsAsync<StoreException>(() => waiting);
        Assert.Equal("scalar: no rw connection free within 0.4 s (2 in use)", e.Message);
        release.SetResult();
        await Task.WhenAll(holders);
        Assert.Equal(1, await ScalarAsync(db, "select 1"));
        Assert.Equal(new PoolStats(2, 0, db.Stats.Idle, 0, 0), db.Stats);
        Assert.InRange(db.Stats.Idle, 1, 2);
    }

    [Fact]
    public async Task A_connection_the_server_closed_while_idle_is_replaced_and_the_read_succeeds()
    {
        await using var db = await OpenAsync(max: 1);
        var pid = await ScalarAsync(db, "select pg_backend_pid()");
        await using (var admin = new NpgsqlConnection(db.Options.ConnectionString))
        {
            await admin.OpenAsync();
            await using var kill = new NpgsqlCommand($"select pg_terminate_backend({pid})", admin);
            await kill.ExecuteScalarAsync();
        }

        var again = await ScalarAsync(db, "select pg_backend_pid()");
        Assert.NotEqual(pid, again);
        Assert.Equal(1, db.Stats.Failed);
    }

    [Fact]
    public async Task A_transaction_that_fails_rolls_back_and_surfaces_the_original_error()
    {
        await using var db = await OpenAsync();
        await MigrationRunner.MigrateAsync(db, Migration.Known, CancellationToken.None);
        var thrown = await Assert.ThrowsAsync<StoreException>(() => db.InTransactionAsync<int>("insert then fail", IsolationLevel.ReadCommitted, async (c, t, ct) =>
        {
            await using var insert = Database.Command(c, "insert into sources (session) values ($1)", t, "s");
            await insert.ExecuteNonQueryAsync(ct);
            throw new InvalidOperationException("the caller's own failure");
        }, CancellationToken.None));
        Assert.Equal("insert then fail: the caller's own failure", thrown.Message);
        Assert.IsType<InvalidOperationException>(thrown.InnerException);

        var sql = await Assert.ThrowsAsync<StoreException>(() => db.InTransactionAsync<int>("insert then divide", IsolationLevel.ReadCommitted, async (c, t, ct) =>
        {
            await using var insert = Database.Command(c, "insert into sources (session) values ($1)", t, "s");
            await insert.ExecuteNonQueryAsync(ct);
            await using var divide = Database.Command(c, "select 1 / $1", t, 0);
            return (int)(await divide.ExecuteScalarAsync(ct))!;
        }, CancellationToken.None));
        Assert.Equal("22012", sql.SqlState);
        Assert.StartsWith("insert then divide: division by zero", sql.Message, StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync(db, "select count(*) from sources"));
    }

    [Fact]
    public async Task An_error_names_the_statement_and_never_a_parameter_value()
    {
        await using var db = await OpenAsync();
        await MigrationRunner.MigrateAsync(db, Migration.Known, CancellationToken.None);
        const string secret = "patient-7731-secret";
        await TripleStore.WriteEmbeddingsAsync(db, "m", [new NewEmbedding(secret, [1f])], CancellationToken.None);
        var e = await Assert.ThrowsAsync<StoreException>(() => db.InTransactionAsync<int>("insert embedding", IsolationLevel.ReadCommitted, async (c, t, ct) =>
        {
            await using var insert = Database.Command(c, "insert into embeddings (entity, model, dims, vector) values ($1, 'm', 1, '{1}')", t, secret);
            return await insert.ExecuteNonQueryAsync(ct);
        }, CancellationToken.None));
        Assert.Equal("23505", e.SqlState);
        Assert.StartsWith("insert embedding: duplicate key value violates unique constraint", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Draining_lets_statements_under_way_finish_refuses_new_ones_and_closes_every_connection()
    {
        var db = await OpenAsync(max: 2);
        var name = new NpgsqlConnectionStringBuilder(db.Options.ConnectionString).Database!;
        var slow = ScalarAsync(db, "select 7 from pg_sleep(0.5)");
        await Wait.UntilAsync(() => db.Stats.Busy == 1, "the slow statement runs");
        var drain = db.DrainAsync(TimeSpan.FromSeconds(10));
        var refused = await Assert.ThrowsAsync<StoreException>(() => ScalarAsync(db, "select 1"));
        Assert.Contains("shutting down", refused.Message, StringComparison.Ordinal);
        Assert.Equal(7, await slow);
        await drain;
        await using var admin = new NpgsqlConnection(postgres.ConnectionString("postgres"));
        await admin.OpenAsync();
        await using var count = new NpgsqlCommand("select count(*) from pg_stat_activity where datname = $1", admin) { Parameters = { new() { Value = name } } };
        await Wait.UntilAsync(() => (long)count.ExecuteScalar()! == 0, "every connection of the drained pool is closed");
    }
}
