using System.Text.Json;
using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using static MemoryCluster.Compute.Tests.Feed.FeedTests;

namespace MemoryCluster.Compute.Tests.Feed;

public sealed class SnapshotFileTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "mc-snapshot-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public void A_snapshot_gives_back_the_state_it_was_written_with_and_its_indexes_answer_alike()
    {
        var model = Loaded(new FeedPosition(42, Guid.NewGuid()));
        var written = model.Capture();
        MemorySnapshot.Write(_directory, written);

        var restored = new MemoryModel();
        restored.BeginLoad();
        var header = MemorySnapshot.Read(_directory, restored.LoadNode, restored.LoadTriple, restored.LoadSpace);
        Assert.NotNull(header);
        restored.FinishLoad(header);

        Assert.Equal(written.Position, restored.Position);
        Assert.Equal(1, model.SkippedEmbeddings);
        Assert.Equal(model.SkippedEmbeddings, restored.SkippedEmbeddings);
        var again = restored.Capture();
        Assert.Equal(written.Nodes, again.Nodes);
        Assert.Equal(written.Triples.OrderBy(t => t.Id), again.Triples.OrderBy(t => t.Id));
        Assert.Equal(written.Spaces.Select(s => (s.Model, s.Dimensions, Convert.ToHexString(s.Index))), again.Spaces.Select(s => (s.Model, s.Dimensions, Convert.ToHexString(s.Index))));
        Assert.Equal(Search(model), Search(restored));
        Assert.False(File.Exists(Path.Combine(_directory, MemorySnapshot.FileName + ".tmp")));
    }

    [Fact]
    public void An_index_saved_with_other_hnsw_settings_is_built_again_with_this_processs()
    {
        MemorySnapshot.Write(_directory, Loaded(new FeedPosition(3, Guid.NewGuid())).Capture());
        var restored = new MemoryModel(new MemoryCluster.Compute.Engine.Vectors.HnswOptions { Dimensions = 1, M = 8, EfSearch = 20 });
        restored.BeginLoad();
        restored.FinishLoad(MemorySnapshot.Read(_directory, restored.LoadNode, restored.LoadTriple, restored.LoadSpace)!);
        restored.Read(v =>
        {
            Assert.Equal(8, v.Spaces["m"].Index.Options.M);
            Assert.Equal(20, v.Spaces["m"].Index.Options.EfSearch);
            Assert.Equal(2, v.Spaces["m"].Index.Count);
            return 0;
        });
        Assert.Equal(Search(Loaded(new FeedPosition(3, Guid.NewGuid()))), Search(restored));
    }

    [Fact]
    public void No_snapshot_reads_as_none()
    {
        Assert.Null(MemorySnapshot.Read(_directory, _ => Assert.Fail("no row"), _ => Assert.Fail("no row"), (_, _, _) => Assert.Fail("no row")));
    }

    [Theory]
    [InlineData("flip", "hash does not match")]
    [InlineData("truncate", "hash does not match")]
    [InlineData("tiny", "shorter than a snapshot's header")]
    public void A_damaged_snapshot_is_refused_before_any_row_is_handed_out(string damage, string expected)
    {
        MemorySnapshot.Write(_directory, Loaded(new FeedPosition(7, Guid.NewGuid())).Capture());
        var path = Path.Combine(_directory, MemorySnapshot.FileName);
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "flip":
                bytes[bytes.Length / 2] ^= 0x40;
                File.WriteAllBytes(path, bytes);
                break;
            case "truncate":
                File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
                break;
            default:
                File.WriteAllBytes(path, bytes[..20]);
                break;
        }

        var rows = 0;
        var e = Assert.Throws<MemorySnapshotException>(() => MemorySnapshot.Read(_directory, _ => rows++, _ => rows++, (_, _, _) => rows++));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Equal(0, rows);

        MemorySnapshot.SetAside(_directory);
        Assert.False(File.Exists(path));
        Assert.True(File.Exists(path + ".rejected"));
    }

    private static MemoryModel Loaded(FeedPosition position)
    {
        var model = new MemoryModel();
        model.BeginLoad();
        for (var i = 1; i <= 200; i++)
        {
            model.LoadTriple(new TripleRow(i, $"e{i % 17}", i % 5 == 0 ? "sameAs" : "linked", $"e{(i * 7) % 23}", ObjectKind.Entity, 0.5f + (i % 2 / 4f), i % 3 == 0 ? i : null, i * 1000L, i % 4 == 0 ? (i * 1000L) + 500 : null, i % 8 == 0 ? i + 1000 : null));
        }

        model.LoadTriple(new TripleRow(500, "e1", "name", "first — ünïcode", ObjectKind.Literal, 1f, null, 0, null, null));
        model.LoadEmbedding(new EmbeddingRow("e1", "m", [1, 0, 0]));
        model.LoadEmbedding(new EmbeddingRow("e2", "m", [0, 1, 0]));
        model.LoadEmbedding(new EmbeddingRow("e3", "other", [0.25f, 0.5f]));
        model.LoadEmbedding(new EmbeddingRow("e4", "m", [1, 2])); // another dimension: skipped, and counted
        model.FinishLoad(position);
        return model;
    }

    // Each model's nearest entities to a few queries, by name.
    private static string[] Search(MemoryModel model) => model.Read(v =>
        v.Spaces.Values.OrderBy(s => s.Model, StringComparer.Ordinal).SelectMany(s => new[] { 0f, 0.5f, 1f }.Select(x =>
            $"{s.Model}: " + string.Join(',', s.Index.Search(Enumerable.Range(0, s.Dimensions).Select(i => i == 0 ? x : 1 - x).ToArray(), 3).Select(h => v.Graph.NodeName(h.Id))))).ToArray());
}

[Trait("Category", "Integration")]
public sealed class SnapshotRestartTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "mc-snapshot-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_restarted_service_starts_from_its_snapshot_and_applies_what_was_committed_while_it_was_down()
    {
        await using var database = await postgres.MigratedAsync();
        await using (var first = await StartAsync(database.Options.ConnectionString))
        {
            await WriteAsync(first, "a", "b", 20);
        }

        Assert.True(File.Exists(Path.Combine(_directory, MemorySnapshot.FileName)), "a clean stop writes a snapshot");

        // Committed while no compute process ran: the restart must apply it from the feed.
        await using (var connection = await OpenAsync(database))
        {
            await InsertAsync(connection, null, "while-down", "p", "z");
            await ExecuteAsync(connection, null, "delete from triples where subject = 'a0'");
        }

        await using var second = await StartAsync(database.Options.ConnectionString);
        var status = await second.GetJsonAsync("/status");
        Assert.Equal(0, status.GetProperty("loads").GetInt64());
        Assert.Equal(1, status.GetProperty("snapshot").GetProperty("loads").GetInt64());
        await AssertServesTheDatabaseAsync(second, database);
        Assert.Equal(200, (int)(await second.Client.GetAsync("/v1/entities/while-down/neighbors")).StatusCode);
        using var deleted = await second.Client.GetAsync("/v1/entities/a0/neighbors");
        Assert.DoesNotContain("b0", await deleted.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("b1", await (await second.Client.GetAsync("/v1/entities/a1/neighbors")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_damaged_snapshot_is_set_aside_and_everything_is_loaded_from_the_database()
    {
        await using var database = await postgres.MigratedAsync();
        await using (var first = await StartAsync(database.Options.ConnectionString))
        {
            await WriteAsync(first, "a", "b", 10);
        }

        var path = Path.Combine(_directory, MemorySnapshot.FileName);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[bytes.Length / 3] ^= 0x01;
        await File.WriteAllBytesAsync(path, bytes);

        await using var second = await StartAsync(database.Options.ConnectionString);
        var status = await second.GetJsonAsync("/status");
        Assert.Equal(1, status.GetProperty("loads").GetInt64());
        Assert.Equal(0, status.GetProperty("snapshot").GetProperty("loads").GetInt64());
        Assert.Equal(1, status.GetProperty("snapshot").GetProperty("rejected").GetInt64());
        Assert.True(File.Exists(path + ".rejected"));
        await AssertServesTheDatabaseAsync(second, database);
    }

    [Fact]
    public async Task A_snapshot_whose_commit_the_database_no_longer_has_is_not_served()
    {
        await using var database = await postgres.MigratedAsync();
        await using (var first = await StartAsync(database.Options.ConnectionString))
        {
            await WriteAsync(first, "a", "b", 3);
            await first.PostAsync("/v1/triples", new { triples = new[] { new { subject = "lost", predicate = "p", @object = "c" } } });
        }

        // What an asynchronous failover leaves: the snapshot's last commit gone, and a new commit takes its number.
        await using (var connection = await OpenAsync(database))
        {
            await LoseLastCommitAsync(connection, 4, "lost");
            await InsertAsync(connection, null, "new", "p", "d");
        }

        await using var second = await StartAsync(database.Options.ConnectionString);
        var status = await second.GetJsonAsync("/status");
        Assert.Equal(1, status.GetProperty("loads").GetInt64());
        Assert.Equal(1, status.GetProperty("snapshot").GetProperty("rejected").GetInt64());
        Assert.Equal(404, (int)(await second.Client.GetAsync("/v1/entities/lost/neighbors")).StatusCode);
        await AssertServesTheDatabaseAsync(second, database);
    }

    private Task<RunningService> StartAsync(string connectionString) =>
        RunningService.StartAsync(connectionString, tune: o => o with { Feed = o.Feed with { SnapshotDirectory = _directory } });

    private static async Task WriteAsync(RunningService service, string subject, string obj, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var (code, body) = await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = $"{subject}{i}", predicate = "p", @object = $"{obj}{i}" } } });
            Assert.True(code == 201, $"{code} {body}");
        }
    }

    // The service's position and triple count are the database's, and the feed's head is where it stands.
    private static async Task AssertServesTheDatabaseAsync(RunningService service, MemoryCluster.Compute.Store.Database database)
    {
        await using var connection = await OpenAsync(database);
        await using var count = MemoryCluster.Compute.Store.Database.Command(connection, "select (select count(*) from triples), (select seq from feed_head)");
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (triples, head) = (reader.GetInt64(0), reader.GetInt64(1));
        await Wait.UntilAsync(() => service.GetJsonAsync("/status").Result.GetProperty("seq").GetInt64() == head, $"the service applied commit {head}");
        JsonElement status = await service.GetJsonAsync("/status");
        Assert.Equal(triples, status.GetProperty("triples").GetInt32());
    }
}
