using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Npgsql;

namespace MemoryCluster.Compute.Tests.Store;

/// <summary>The trigger-kept identity components inside PostgreSQL, against an independent oracle and the compute model.</summary>
[Trait("Category", "Integration")]
public sealed class IdentityProjectionTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Random_links_supersessions_and_deletes_leave_the_components_the_oracle_and_the_model_find(int seed)
    {
        await using var db = await postgres.MigratedAsync();
        await using var sql = new NpgsqlConnection(db.Options.ConnectionString);
        await sql.OpenAsync();
        var random = new Random(seed);
        var ids = new List<long>();
        for (var step = 0; step < 150; step++)
        {
            var roll = random.Next(10);
            if (roll < 6 || ids.Count == 0)
            {
                // Links between 25 names (some self-links, some other predicates that must not count).
                var predicate = random.Next(5) == 0 ? "knows" : "sameAs";
                ids.Add(await ScalarAsync(sql, "insert into triples (subject, predicate, object, object_kind) values ($1, $2, $3, 'entity') returning id", $"n{random.Next(25)}", predicate, $"n{random.Next(25)}"));
            }
            else if (roll < 8)
            {
                await ScalarAsync(sql, "update triples set valid_to = now() where id = $1 and valid_to is null returning 0", ids[random.Next(ids.Count)]);
            }
            else
            {
                var id = ids[random.Next(ids.Count)];
                ids.Remove(id);
                await ScalarAsync(sql, "delete from triples where id = $1 returning 0", id);
            }
        }

        // The oracle: union-find over the current sameAs links, read back from the table.
        var links = new List<(string A, string B)>();
        await using (var read = new NpgsqlCommand("select subject, object from triples where predicate = 'sameAs' and valid_to is null", sql))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                links.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        var parent = Enumerable.Range(0, 25).ToDictionary(i => $"n{i}", i => $"n{i}");
        string Find(string x) => parent[x] == x ? x : parent[x] = Find(parent[x]);
        foreach (var (a, b) in links)
        {
            var (ra, rb) = (Find(a), Find(b));
            if (ra != rb)
            {
                parent[string.CompareOrdinal(ra, rb) < 0 ? rb : ra] = string.CompareOrdinal(ra, rb) < 0 ? ra : rb;
            }
        }

        var expected = parent.Keys.ToDictionary(n => n, n => parent.Keys.Where(m => Find(m) == Find(n)).Min(StringComparer.Ordinal)!);
        var model = new MemoryModel();
        model.BeginLoad();
        model.FinishLoad(await FeedReader.LoadAsync(db, model.LoadTriple, model.LoadEmbedding, CancellationToken.None));
        foreach (var name in parent.Keys)
        {
            var inSql = (string)(await new NpgsqlCommand($"select identity_component_of('{name}')", sql).ExecuteScalarAsync())!;
            Assert.True(expected[name] == inSql, $"seed {seed}: {name} is in {inSql} in PostgreSQL, the oracle says {expected[name]}");
            var inModel = model.Read(v => v.Graph.TryGetNode(name, out var node)
                ? Enumerable.Range(0, v.Graph.NodeCount).Where(m => v.Graph.IdentityComponentOf(m) == v.Graph.IdentityComponentOf(node)).Select(v.Graph.NodeName).Min(StringComparer.Ordinal)!
                : name);
            Assert.True(expected[name] == inModel, $"seed {seed}: {name} is in {inModel} in the compute model, the oracle says {expected[name]}");
        }

        // The rows the triggers kept are the rows a rebuild makes (a self-link alone left a row before migration 4).
        var kept = await RowsAsync(sql);
        await ScalarAsync(sql, "select 0::bigint from identity_rebuild()");
        Assert.Equal(await RowsAsync(sql), kept);
    }

    [Fact]
    public async Task A_self_link_alone_keeps_its_entity_a_component_of_its_own_with_no_row()
    {
        await using var db = await postgres.MigratedAsync();
        await using var sql = new NpgsqlConnection(db.Options.ConnectionString);
        await sql.OpenAsync();
        await ScalarAsync(sql, "insert into triples (subject, predicate, object, object_kind) values ('x', 'sameAs', 'x', 'entity') returning id");
        Assert.Empty(await RowsAsync(sql));

        // Linked to another entity as well: both have the component's row, as a rebuild gives them.
        await ScalarAsync(sql, "insert into triples (subject, predicate, object, object_kind) values ('x', 'sameAs', 'w', 'entity') returning id");
        var kept = await RowsAsync(sql);
        Assert.Equal(["w=w", "x=w"], kept);
        await ScalarAsync(sql, "select 0::bigint from identity_rebuild()");
        Assert.Equal(kept, await RowsAsync(sql));
    }

    private static async Task<List<string>> RowsAsync(NpgsqlConnection sql)
    {
        var rows = new List<string>();
        await using var read = new NpgsqlCommand("select entity || '=' || component from identity_components order by entity", sql);
        await using var reader = await read.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    private static async Task<long> ScalarAsync(NpgsqlConnection sql, string text, params object[] parameters)
    {
        await using var command = Database.Command(sql, text, null, parameters);
        return await command.ExecuteScalarAsync() is long value ? value : 0;
    }
}
