using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Npgsql;

namespace MemoryCluster.Compute.Tests.Feed;

[Trait("Category", "Integration")]
public sealed class FeedTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Commits_are_numbered_in_commit_order_not_in_id_order()
    {
        await using var database = await postgres.MigratedAsync();
        await using var first = await OpenAsync(database);
        await using var second = await OpenAsync(database);
        await using var t1 = await first.BeginTransactionAsync();
        await InsertAsync(first, t1, "a", "knows", "b"); // takes the lower id
        await using var t2 = await second.BeginTransactionAsync();
        await InsertAsync(second, t2, "c", "knows", "d");
        await t2.CommitAsync(); // commits first, with the higher id
        await t1.CommitAsync();

        var commits = await FeedReader.ReadAsync(database, FeedPosition.Start, 100, CancellationToken.None);
        Assert.Equal([1L, 2L], commits.Select(c => c.Seq));
        Assert.Equal("c", Assert.IsType<FeedChange.TripleWritten>(Assert.Single(commits[0].Changes)).Row.Subject);
        Assert.Equal("a", Assert.IsType<FeedChange.TripleWritten>(Assert.Single(commits[1].Changes)).Row.Subject);
        Assert.True(((FeedChange.TripleWritten)commits[0].Changes[0]).Row.Id > ((FeedChange.TripleWritten)commits[1].Changes[0]).Row.Id);
    }

    [Fact]
    public async Task A_rolled_back_transaction_takes_no_number_and_a_batch_gets_one()
    {
        await using var database = await postgres.MigratedAsync();
        await using var connection = await OpenAsync(database);
        await using (var rolledBack = await connection.BeginTransactionAsync())
        {
            await InsertAsync(connection, rolledBack, "x", "p", "y");
            await rolledBack.RollbackAsync();
        }

        await using (var batch = await connection.BeginTransactionAsync())
        {
            for (var i = 0; i < 50; i++)
            {
                await InsertAsync(connection, batch, $"s{i}", "p", $"o{i}");
            }

            await batch.CommitAsync();
        }

        var commits = await FeedReader.ReadAsync(database, FeedPosition.Start, 100, CancellationToken.None);
        var commit = Assert.Single(commits);
        Assert.Equal(1, commit.Seq);
        Assert.Equal(50, commit.Changes.Count);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"s{i}"), commit.Changes.Cast<FeedChange.TripleWritten>().Select(c => c.Row.Subject));
    }

    [Fact]
    public async Task Concurrent_writers_committing_out_of_order_reach_a_follower_exactly_once()
    {
        // Writers on 6 connections hold their transactions open for random times, so commits land out of id
        // order; a follower reads the feed all along. At the end it must hold exactly what PostgreSQL holds,
        // and it must have seen every commit once: as many commits as transactions that committed.
        await using var database = await postgres.MigratedAsync(maxConnections: 10);
        var model = new MemoryModel();
        var random = new Random(7);
        var committed = 0;
        using var done = new CancellationTokenSource();
        var applied = new List<long>();
        var follower = Task.Run(async () =>
        {
            while (true)
            {
                var stop = done.IsCancellationRequested;
                var batch = await FeedReader.ReadAsync(database, model.Position, 50, CancellationToken.None);
                model.Apply(batch);
                applied.AddRange(batch.Select(c => c.Seq));
                if (stop && batch.Count == 0)
                {
                    return;
                }
            }
        });

        var writers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            await using var connection = await OpenAsync(database);
            for (var i = 0; i < 40; i++)
            {
                int hold;
                bool rollBack;
                lock (random)
                {
                    hold = random.Next(0, 15);
                    rollBack = random.Next(10) == 0;
                }

                await using var transaction = await connection.BeginTransactionAsync();
                var id = await InsertAsync(connection, transaction, $"w{w}", "wrote", $"n{i}");
                if (i % 7 == 3)
                {
                    await ExecuteAsync(connection, transaction, "update triples set valid_to = now(), confidence = 0.5 where id = $1", id);
                }

                if (i % 11 == 5)
                {
                    await ExecuteAsync(connection, transaction, "delete from triples where id = $1", id);
                }

                await Task.Delay(hold);
                if (rollBack)
                {
                    await transaction.RollbackAsync();
                }
                else
                {
                    await transaction.CommitAsync();
                    Interlocked.Increment(ref committed);
                }
            }
        })).ToList();

        await Task.WhenAll(writers);
        await done.CancelAsync();
        await follower;

        Assert.Equal(Enumerable.Range(1, committed).Select(i => (long)i), applied);
        await AssertModelEqualsDatabaseAsync(model, database);
    }

    [Fact]
    public async Task A_bulk_load_then_the_feed_equals_the_database()
    {
        await using var database = await postgres.MigratedAsync();
        await using (var connection = await OpenAsync(database))
        {
            for (var i = 0; i < 100; i++)
            {
                await InsertAsync(connection, null, $"e{i % 10}", i % 3 == 0 ? "sameAs" : "linked", $"e{(i * 7) % 13}");
            }

            await ExecuteAsync(connection, null, "insert into triples (subject, predicate, object, object_kind) values ('e1', 'name', 'first', 'literal')");
            await ExecuteAsync(connection, null, "insert into embedding_models (model, dims) values ('m', 3)");
            await ExecuteAsync(connection, null, "insert into embeddings (entity, model, dims, vector) values ('e1', 'm', 3, '{1,0,0}'), ('e2', 'm', 3, '{0,1,0}')");
        }

        var model = new MemoryModel();
        model.BeginLoad();
        var position = await FeedReader.LoadAsync(database, model.LoadTriple, model.LoadEmbedding, CancellationToken.None);
        model.FinishLoad(position);
        Assert.Equal(102, position.Seq);

        await using (var connection = await OpenAsync(database))
        {
            await ExecuteAsync(connection, null, "update triples set valid_to = now() where id = 5");
            await ExecuteAsync(connection, null, "delete from triples where id = 6");
            await ExecuteAsync(connection, null, "update embeddings set vector = '{0,0,1}' where entity = 'e1'");
        }

        model.Apply(await FeedReader.ReadAsync(database, model.Position, 100, CancellationToken.None));
        Assert.Equal(105, model.Position.Seq);
        await AssertModelEqualsDatabaseAsync(model, database);
        Assert.True(model.Read(v => v.Spaces["m"].Index.Contains(v.Graph.TryGetNode("e1", out var n) ? n : -1)));
    }

    [Fact]
    public async Task An_embedding_moved_to_another_key_leaves_its_old_key_and_a_model_keeps_one_dimension()
    {
        // Adversarial review: an update of an embedding's key reached the feed as the new row only, and the old key's
        // vector stayed indexed; a model's vectors of two dimensions made processes disagree.
        await using var database = await postgres.MigratedAsync();
        await TripleStore.WriteEmbeddingsAsync(database, "m", [new NewEmbedding("e1", [1f, 0f]), new NewEmbedding("e2", [0f, 1f])], CancellationToken.None);
        var model = new MemoryModel();
        model.Apply(await FeedReader.ReadAsync(database, model.Position, 100, CancellationToken.None));
        await using var connection = await OpenAsync(database);
        await ExecuteAsync(connection, null, "update embeddings set entity = 'e9' where entity = 'e1'");
        model.Apply(await FeedReader.ReadAsync(database, model.Position, 100, CancellationToken.None));
        Assert.True(model.Read(v => !v.Spaces["m"].Index.Contains(v.Graph.TryGetNode("e1", out var n) ? n : -1) && v.Spaces["m"].Index.Contains(v.Graph.TryGetNode("e9", out var m) ? m : -1)));
        await AssertModelEqualsDatabaseAsync(model, database);

        var other = await Assert.ThrowsAsync<StoreException>(() => TripleStore.WriteEmbeddingsAsync(database, "m", [new NewEmbedding("e3", [1f, 0f, 0f])], CancellationToken.None));
        Assert.Equal("23503", other.SqlState);
    }

    [Fact]
    public async Task Pruning_keeps_the_last_commit_and_a_follower_left_behind_is_told_to_reload()
    {
        await using var database = await postgres.MigratedAsync();
        await using var connection = await OpenAsync(database);
        for (var i = 0; i < 3; i++)
        {
            await InsertAsync(connection, null, $"s{i}", "p", "o");
        }

        var commits = await FeedReader.ReadAsync(database, FeedPosition.Start, 10, CancellationToken.None);
        await ExecuteAsync(connection, null, "update feed_commits set committed_at = now() - interval '2 hours'");
        Assert.Equal(2, await FeedReader.PruneAsync(database, TimeSpan.FromHours(1), CancellationToken.None));
        Assert.Equal(0, await FeedReader.PruneAsync(database, TimeSpan.FromHours(1), CancellationToken.None));
        Assert.IsType<FeedVerdict.Continues>(await FeedReader.CheckAsync(database, commits[2].Position, CancellationToken.None));
        var behind = Assert.IsType<FeedVerdict.Diverged>(await FeedReader.CheckAsync(database, commits[0].Position, CancellationToken.None));
        Assert.Contains("no longer in the database's feed", behind.Reason, StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync(connection, "select count(*) from feed_changes ch join feed_commits c on c.txid = ch.txid where c.seq < 3"));
        Assert.Equal(1, await ScalarAsync(connection, "select count(*) from feed_changes"));
    }

    private static async Task<long> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task A_follower_whose_last_commit_was_lost_is_told_to_reload()
    {
        await using var database = await postgres.MigratedAsync();
        await using var connection = await OpenAsync(database);
        await InsertAsync(connection, null, "a", "p", "b");
        await InsertAsync(connection, null, "b", "p", "c");
        var commits = await FeedReader.ReadAsync(database, FeedPosition.Start, 10, CancellationToken.None);
        var applied = commits[^1].Position;
        Assert.IsType<FeedVerdict.Continues>(await FeedReader.CheckAsync(database, applied, CancellationToken.None));

        // What a failover that lost commit 2 leaves: the history ends at 1, then a new commit takes number 2.
        await ExecuteAsync(connection, null, "delete from feed_commits where seq = 2");
        await ExecuteAsync(connection, null, "update feed_head set seq = 1");
        Assert.IsType<FeedVerdict.Diverged>(await FeedReader.CheckAsync(database, applied, CancellationToken.None));
        await InsertAsync(connection, null, "x", "p", "y");
        var verdict = Assert.IsType<FeedVerdict.Diverged>(await FeedReader.CheckAsync(database, applied, CancellationToken.None));
        Assert.Contains("another commit", verdict.Reason, StringComparison.Ordinal);

        // Every read checks it too (adversarial review: a read on a connection to another server went on from a
        // number another history gave another commit, and stayed wrong for good).
        var read = await Assert.ThrowsAsync<StoreException>(() => FeedReader.ReadAsync(database, applied, 10, CancellationToken.None));
        Assert.IsType<FeedDivergedException>(read.InnerException);
    }

    [Fact]
    public async Task A_running_service_whose_last_commit_was_lost_loads_again_and_ends_equal_to_the_database()
    {
        await using var database = await postgres.MigratedAsync();
        await using var service = await RunningService.StartAsync(database.Options.ConnectionString);
        await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "a", predicate = "p", @object = "b" } } });
        await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "lost", predicate = "p", @object = "c" } } });

        // What an asynchronous failover leaves: commit 2 and its triple gone, then a new commit takes number 2.
        await using var connection = await OpenAsync(database);
        await LoseLastCommitAsync(connection, 2, "lost");
        await InsertAsync(connection, null, "new", "p", "d");

        await Wait.UntilAsync(() => service.GetJsonAsync("/status").Result.GetProperty("loads").GetInt64() == 2, "the service loaded again");
        await service.WaitReadyAsync(TimeSpan.FromSeconds(60));
        var status = await service.GetJsonAsync("/status");
        Assert.Equal(2, status.GetProperty("seq").GetInt64());
        Assert.Equal(2, status.GetProperty("triples").GetInt32());
        using var gone = await service.Client.GetAsync("/v1/entities/lost/neighbors");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, gone.StatusCode);
    }

    internal static async Task AssertModelEqualsDatabaseAsync(MemoryModel model, Database database)
    {
        var rows = new List<TripleRow>();
        var vectors = new List<EmbeddingRow>();
        var position = await FeedReader.LoadAsync(database, rows.Add, vectors.Add, CancellationToken.None);
        Assert.Equal(position, model.Position);
        model.Read(view =>
        {
            Assert.Equal(rows.Count, view.TripleCount);
            foreach (var row in rows)
            {
                var found = view.Triple(row.Id);
                Assert.NotNull(found);
                var held = found.Value;
                Assert.Equal(row, held.Row);
                if (row.Kind == ObjectKind.Entity)
                {
                    Assert.Equal(row.ValidTo is null, view.Graph.IsVisible(held.Edge, default));
                }
            }

            foreach (var v in vectors)
            {
                Assert.True(view.Graph.TryGetNode(v.Entity, out var node));
                var stored = new float[v.Vector.Length];
                Assert.True(view.Spaces[v.Model].Index.TryGetVector(node, stored));
            }

            return 0;
        });
    }

    /// <summary>What an asynchronous failover leaves: commit <paramref name="seq"/> (the last) and the triples of <paramref name="subject"/> gone.</summary>
    internal static async Task LoseLastCommitAsync(NpgsqlConnection connection, long seq, string subject)
    {
        await ExecuteAsync(connection, null, "set session_replication_role = replica");
        await ExecuteAsync(connection, null, "delete from triples where subject = $1", subject);
        await ExecuteAsync(connection, null, "delete from feed_changes ch using feed_commits c where c.seq = $1 and ch.txid = c.txid", seq);
        await ExecuteAsync(connection, null, "delete from feed_commits where seq = $1", seq);
        await ExecuteAsync(connection, null, "update feed_head set seq = $1", seq - 1);
        await ExecuteAsync(connection, null, "set session_replication_role = origin");
    }

    internal static async Task<NpgsqlConnection> OpenAsync(Database database)
    {
        var connection = new NpgsqlConnection(database.Options.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    internal static async Task<long> InsertAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string s, string p, string o)
    {
        await using var command = Database.Command(connection, "insert into triples (subject, predicate, object, object_kind) values ($1, $2, $3, 'entity') returning id", transaction, s, p, o);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    internal static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, params object[] parameters)
    {
        await using var command = Database.Command(connection, sql, transaction, parameters);
        await command.ExecuteNonQueryAsync();
    }
}
