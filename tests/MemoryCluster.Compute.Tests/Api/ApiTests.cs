using System.Net;
using System.Text;

namespace MemoryCluster.Compute.Tests.Api;

[Trait("Category", "Integration")]
public sealed class ApiTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task A_write_is_visible_in_the_answer_to_the_next_read()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        for (var i = 0; i < 20; i++)
        {
            var (status, body) = await service.PostAsync("/v1/triples", new
            {
                triples = new object[]
                {
                    new { subject = $"p{i}", predicate = "knows", @object = $"p{i + 1}", confidence = 0.9 },
                    new { subject = $"p{i}", predicate = "name", @object = $"Person {i}", objectKind = "literal" },
                },
                source = new { session = "s1", actor = "test", metadata = new { n = i } },
            });
            Assert.True(status == 201, $"{status} {body}");
            Assert.Equal(2, body.GetProperty("ids").GetArrayLength());
            var neighbors = await service.GetJsonAsync($"/v1/entities/p{i}/neighbors?direction=out");
            Assert.Equal($"p{i + 1}", Assert.Single(neighbors.GetProperty("neighbors").EnumerateArray()).GetProperty("entity").GetString());
            Assert.Equal($"Person {i}", Assert.Single(neighbors.GetProperty("literals").EnumerateArray()).GetProperty("value").GetString());
            Assert.True(neighbors.GetProperty("seq").GetInt64() >= body.GetProperty("seq").GetInt64());
        }

        var reached = await service.PostAsync("/v1/traverse", new { start = "p0", hops = 3, direction = "out" }, authorized: false);
        Assert.Equal(200, reached.Status);
        Assert.Equal(["p0", "p1", "p2", "p3"], reached.Body.GetProperty("reached").EnumerateArray().Select(r => r.GetProperty("entity").GetString()).Order());
        var path = await service.PostAsync("/v1/paths", new { from = "p0", to = "p5", direction = "out" }, authorized: false);
        Assert.Equal(6, path.Body.GetProperty("nodes").GetArrayLength());
    }

    [Fact]
    public async Task A_supersession_closes_the_old_triple_and_only_once()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        var (_, written) = await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "alice", predicate = "worksAt", @object = "acme" } } });
        var id = written.GetProperty("ids")[0].GetInt64();
        var (status, replaced) = await service.PostAsync($"/v1/triples/{id}/supersede", new { subject = "alice", predicate = "worksAt", @object = "globex" });
        Assert.Equal(201, status);
        var neighbors = await service.GetJsonAsync("/v1/entities/alice/neighbors");
        Assert.Equal("globex", Assert.Single(neighbors.GetProperty("neighbors").EnumerateArray()).GetProperty("entity").GetString());
        var asOfBefore = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O"));
        Assert.Empty((await service.GetJsonAsync($"/v1/entities/alice/neighbors?asOf={asOfBefore}")).GetProperty("neighbors").EnumerateArray());

        var again = await service.PostAsync($"/v1/triples/{id}/supersede", new { subject = "alice", predicate = "worksAt", @object = "initech" });
        Assert.Equal(409, again.Status);
        Assert.Contains($"already superseded by triple {replaced.GetProperty("ids")[0].GetInt64()}", again.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(404, (await service.PostAsync("/v1/triples/999999/supersede", new { subject = "a", predicate = "b", @object = "c" })).Status);
    }

    [Fact]
    public async Task Bad_requests_get_a_problem_naming_the_field_and_change_nothing()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        await service.PostAsync("/v1/embeddings", new { model = "m", embeddings = new[] { new { entity = "a", vector = new[] { 1f, 0f, 0f } } } });
        var before = (await service.GetJsonAsync("/status")).GetProperty("seq").GetInt64();

        async Task Refused(string path, object body, string field, string words)
        {
            var (status, problem) = await service.PostAsync(path, body);
            Assert.True(status == 400, $"{path}: {status} {problem}");
            var messages = problem.GetProperty("errors").GetProperty(field).EnumerateArray().Select(m => m.GetString()).ToList();
            Assert.Contains(messages, m => m!.Contains(words, StringComparison.Ordinal));
        }

        await Refused("/v1/triples", new { triples = new object[] { new { subject = "a", predicate = "p", @object = "b" }, new { subject = "", predicate = "p", @object = "b" } } }, "triples[1].subject", "must not be empty");
        await Refused("/v1/triples", new { triples = new[] { new { subject = "a", predicate = "p", @object = "b", confidence = 1.5 } } }, "triples[0].confidence", "between 0 and 1");
        await Refused("/v1/triples", new { triples = new[] { new { subject = "a", predicate = "p", @object = "b", objectKind = "thing" } } }, "triples[0].objectKind", "'entity' or 'literal'");
        await Refused("/v1/triples", new { triples = Enumerable.Range(0, 1001).Select(i => new { subject = "a", predicate = "p", @object = $"b{i}" }) }, "triples", "at most 1000");
        await Refused("/v1/embeddings", new { model = "m", embeddings = new[] { new { entity = "b", vector = new[] { 1f, 0f } } } }, "embeddings[0].vector", "the model has 3");
        await Refused("/v1/search/vector", new { model = "m", vector = new[] { 1f }, k = 5 }, "vector", "the model has 3");
        await Refused("/v1/traverse", new { start = "a", hops = 50 }, "hops", "between 1 and 6");

        using (var malformed = await service.Writer.PostAsync("/v1/triples", new StringContent("{\"triples\": [", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
            Assert.Equal("application/problem+json", malformed.Content.Headers.ContentType?.MediaType);
        }

        var unauthorized = await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "a", predicate = "p", @object = "b" } } }, authorized: false);
        Assert.Equal(401, unauthorized.Status);
        using (var unknown = await service.Client.GetAsync("/v1/entities/nobody/neighbors"))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Contains("no entity 'nobody'", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(before, (await service.GetJsonAsync("/status")).GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Vector_and_fusion_search_find_the_nearest_entity_and_explain_the_hit()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "cat", predicate = "isA", @object = "animal" }, new { subject = "dog", predicate = "isA", @object = "animal" } } });
        var (status, _) = await service.PostAsync("/v1/embeddings", new
        {
            model = "m",
            embeddings = new[] { new { entity = "cat", vector = new[] { 1f, 0f, 0f } }, new { entity = "dog", vector = new[] { 0.9f, 0.1f, 0f } }, new { entity = "car", vector = new[] { 0f, 0f, 1f } } },
        });
        Assert.Equal(201, status);
        var (_, found) = await service.PostAsync("/v1/search/vector", new { model = "m", vector = new[] { 1f, 0f, 0f }, k = 2 }, authorized: false);
        Assert.Equal(["cat", "dog"], found.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("entity").GetString()));
        var (fusionStatus, fused) = await service.PostAsync("/v1/search/fusion", new { model = "m", vector = new[] { 1f, 0f, 0f }, candidates = 2, hops = 1, topN = 5 }, authorized: false);
        Assert.Equal(200, fusionStatus);
        var hits = fused.GetProperty("hits").EnumerateArray().ToList();
        Assert.Contains(hits, h => h.GetProperty("entity").GetString() == "animal" && h.GetProperty("explanation").GetString()!.Contains("-[isA]->", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Identity_components_join_names_linked_by_sameAs_and_split_when_a_link_is_superseded()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        var (_, written) = await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "bob", predicate = "sameAs", @object = "robert" }, new { subject = "robert", predicate = "sameAs", @object = "rob" }, new { subject = "bob", predicate = "knows", @object = "alice" } } });
        var component = await service.GetJsonAsync("/v1/components/rob");
        Assert.Equal(3, component.GetProperty("size").GetInt32());
        Assert.Equal("bob", component.GetProperty("component").GetString());
        var link = written.GetProperty("ids")[1].GetInt64();
        await service.PostAsync($"/v1/triples/{link}/supersede", new { subject = "robert", predicate = "knows", @object = "rob" });
        Assert.Equal(1, (await service.GetJsonAsync("/v1/components/rob")).GetProperty("size").GetInt32());
        Assert.Equal(2, (await service.GetJsonAsync("/v1/components/bob")).GetProperty("size").GetInt32());
    }

    [Fact]
    public async Task Status_and_metrics_report_the_feed_position_and_the_pools()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        var (_, written) = await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "a", predicate = "p", @object = "b" } } });
        var status = await service.GetJsonAsync("/status");
        Assert.Equal(written.GetProperty("seq").GetInt64(), status.GetProperty("seq").GetInt64());
        Assert.True(status.GetProperty("ready").GetBoolean());
        using var metrics = await service.Client.GetAsync("/metrics");
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.Contains($"memorycluster_compute_feed_seq {written.GetProperty("seq").GetInt64()}", text, StringComparison.Ordinal);
        Assert.Contains("memorycluster_compute_pool_size{endpoint=\"rw\"} 8", text, StringComparison.Ordinal);
        var (code, output) = await MemoryCluster.Cli.Tests.Promtool.CheckMetricsAsync(text);
        Assert.True(code == 0, output);
    }
}
