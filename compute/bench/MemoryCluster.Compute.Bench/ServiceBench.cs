using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace MemoryCluster.Compute.Bench;

/// <summary>
/// <c>make bench-compute</c>: the compute service on a durable PostgreSQL 15 (fsync and synchronous commit on),
/// measured through its HTTP API: the start-up load, write-to-visible latency, fusion latency, neighbours and
/// 3-hop against the same queries in SQL, and request throughput on loopback.
/// </summary>
internal static class ServiceBench
{
    private const int Dimensions = 64;
    private const string Token = "bench-token-0123456789";

    public static async Task<JsonObject> RunAsync(BenchSettings settings)
    {
        using var server = PostgresServer.Start(settings.PgBin, durable: true);
        var connection = server.ConnectionString.Replace("Pooling=false;", string.Empty, StringComparison.Ordinal);
        var entities = Math.Max(1000, settings.Triples / 10);
        await using (var db = new Database(new DatabaseOptions("bench", connection)))
        {
            await MigrationRunner.MigrateAsync(db, Migration.Known, CancellationToken.None);
        }

        var generate = Stopwatch.StartNew();
        var embedded = await GenerateAsync(connection, settings.Triples, entities);
        Log.Line($"service: generated {settings.Triples:N0} triples over {entities:N0} entities and {embedded:N0} embeddings in {generate.Elapsed.TotalSeconds:0.0} s");

        var result = new JsonObject { ["triples"] = settings.Triples, ["entities"] = entities, ["embeddings"] = embedded };
        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft", LogLevel.Warning).AddFilter("ModelContextProtocol", LogLevel.Warning));
        using var stop = new CancellationTokenSource();
        var rssBefore = Log.RssBytes();
        var load = Stopwatch.StartNew();
        var snapshots = Path.Combine(Path.GetTempPath(), "mc-bench-snapshot-" + Guid.NewGuid().ToString("N"));
        var options = new ComputeOptions { ReadWrite = connection, Listen = "http://127.0.0.1:0", WriteToken = System.Text.Encoding.UTF8.GetBytes(Token), Feed = new FeedOptions { SnapshotDirectory = snapshots } };
        var (run, http) = await StartReadyAsync(options, loggers, stop);
        using var client = http;
        http.DefaultRequestHeaders.Authorization = new("Bearer", Token);

        var loadSeconds = load.Elapsed.TotalSeconds;
        result["load_s"] = Round(loadSeconds);
        result["load_rss_mb"] = (Log.RssBytes() - rssBefore) / (1024 * 1024);
        Log.Line($"service: loaded and ready in {load.Elapsed.TotalSeconds:0.00} s");
        try
        {
            await using var sql = new NpgsqlConnection(connection);
            await sql.OpenAsync();
            result["write_visible_ms"] = await WriteVisibleAsync(http);
            result["external_write_visible_ms"] = await ExternalWriteVisibleAsync(http, sql);
            result["fusion_http_ms"] = await FusionAsync(http);
            result["neighbors"] = await NeighborsAsync(http, sql, entities);
            result["three_hop"] = await ThreeHopAsync(http, sql, entities);
            result["throughput_neighbors_rps"] = await ThroughputAsync(http, entities);
            result["identity"] = await IdentityAsync(http, sql, entities);
        }
        finally
        {
            // A clean stop writes the local snapshot (the writes above moved the feed past commit 0).
            var stopping = Stopwatch.StartNew();
            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            result["stop_with_snapshot_s"] = Round(stopping.Elapsed.TotalSeconds);
        }

        try
        {
            result["restart"] = await RestartAsync(options, loggers, snapshots, loadSeconds);
        }
        finally
        {
            Directory.Delete(snapshots, recursive: true);
        }

        return result;
    }

    // The same service started again: it reads its local snapshot, checks the position against the feed, and is
    // ready without a load from PostgreSQL.
    private static async Task<JsonObject> RestartAsync(ComputeOptions options, ILoggerFactory loggers, string snapshots, double loadSeconds)
    {
        var file = new FileInfo(Path.Combine(snapshots, MemorySnapshot.FileName));
        using var stop = new CancellationTokenSource();
        var watch = Stopwatch.StartNew();
        var (run, http) = await StartReadyAsync(options, loggers, stop);
        try
        {
            using var client = http;
            var ready = watch.Elapsed.TotalSeconds;
            using var status = JsonDocument.Parse(await http.GetStringAsync("/status"));
            var snapshot = status.RootElement.GetProperty("snapshot");
            var result = new JsonObject
            {
                ["snapshot_mb"] = Round(file.Exists ? file.Length / (1024.0 * 1024) : 0),
                ["ready_s"] = Round(ready),
                ["full_load_s"] = Round(loadSeconds),
                ["from_snapshot"] = snapshot.GetProperty("loads").GetInt64() == 1 && status.RootElement.GetProperty("loads").GetInt64() == 0,
            };
            Log.Line($"service: restarted from a {result["snapshot_mb"]} MB snapshot, ready in {ready:0.00} s (full load {loadSeconds:0.00} s; from the snapshot: {result["from_snapshot"]})");
            return result;
        }
        finally
        {
            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    // Starts the service in this process and waits until /readyz answers 200.
    private static async Task<(Task Run, HttpClient Http)> StartReadyAsync(ComputeOptions options, ILoggerFactory loggers, CancellationTokenSource stop)
    {
        var started = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = Task.Run(() => ComputeHost.RunAsync(options, loggers, started.SetResult, stop.Token));
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = await started.Task.WaitAsync(TimeSpan.FromMinutes(5)) };
        while (!(await http.GetAsync("/readyz")).IsSuccessStatusCode)
        {
            await Task.Delay(20);
        }

        return (run, http);
    }

    // Triggers off while generating (session_replication_role = replica): the feed stays empty, and the service's
    // load takes the data from its snapshot as it would after any history.
    private static async Task<int> GenerateAsync(string connectionString, int triples, int entities)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var off = new NpgsqlCommand("set session_replication_role = replica", connection))
        {
            await off.ExecuteNonQueryAsync();
        }

        var random = new Random(42);
        await using (var copy = await connection.BeginBinaryImportAsync("copy triples (subject, predicate, object, object_kind, confidence) from stdin (format binary)"))
        {
            for (var i = 0; i < triples; i++)
            {
                var subject = random.Next(entities);
                var literal = i % 10 == 9;
                await copy.StartRowAsync();
                await copy.WriteAsync($"e{subject}", NpgsqlDbType.Text);
                await copy.WriteAsync(literal ? "label" : i % 100 == 0 ? "sameAs" : $"p{random.Next(10)}", NpgsqlDbType.Text);
                await copy.WriteAsync(literal ? $"label of e{subject} #{i}" : $"e{random.Next(entities)}", NpgsqlDbType.Text);
                await copy.WriteAsync(literal ? "literal" : "entity", NpgsqlDbType.Text);
                await copy.WriteAsync((float)random.NextDouble(), NpgsqlDbType.Real);
            }

            await copy.CompleteAsync();
        }

        var embedded = Math.Min(entities, 20_000);
        await using (var copy = await connection.BeginBinaryImportAsync("copy embeddings (entity, model, dims, vector) from stdin (format binary)"))
        {
            for (var i = 0; i < embedded; i++)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync($"e{i}", NpgsqlDbType.Text);
                await copy.WriteAsync("bench", NpgsqlDbType.Text);
                await copy.WriteAsync(Dimensions, NpgsqlDbType.Integer);
                await copy.WriteAsync(RandomVector(random), NpgsqlDbType.Array | NpgsqlDbType.Real);
            }

            await copy.CompleteAsync();
        }

        await using (var analyze = new NpgsqlCommand("analyze", connection))
        {
            await analyze.ExecuteNonQueryAsync();
        }

        return embedded;
    }

    // The trigger projection, built once for the generated links (the triggers were off), then compared with the
    // service: a lookup of a component's members, and what a new link costs a writer.
    private static async Task<JsonObject> IdentityAsync(HttpClient http, NpgsqlConnection sql, int entities)
    {
        var watch = Stopwatch.StartNew();
        await using (var rebuild = new NpgsqlCommand("select identity_rebuild()", sql) { CommandTimeout = 600 })
        {
            await rebuild.ExecuteNonQueryAsync();
        }

        var rebuildSeconds = watch.Elapsed.TotalSeconds;
        var random = new Random(17);
        var service = new List<double>();
        var postgres = new List<double>();
        for (var i = 0; i < 220; i++)
        {
            var entity = $"e{random.Next(entities)}";
            watch.Restart();
            int size;
            using (var response = await http.GetAsync($"/v1/components/{entity}"))
            {
                size = response.IsSuccessStatusCode ? (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("size").GetInt32() : 1;
            }

            var mine = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            long counted;
            await using (var query = new NpgsqlCommand("select greatest(count(*), 1) from identity_components where component = identity_component_of($1)", sql))
            {
                query.Parameters.Add(new NpgsqlParameter { Value = entity });
                counted = (long)(await query.ExecuteScalarAsync())!;
            }

            if (counted != size)
            {
                throw new InvalidOperationException($"identity component of {entity}: the service has {size} members, PostgreSQL {counted}");
            }

            if (i >= 20)
            {
                service.Add(mine);
                postgres.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        var plain = new List<double>();
        var linked = new List<double>();
        for (var i = 0; i < 100; i++)
        {
            foreach (var (predicate, times) in new[] { ("knows", plain), ("sameAs", linked) })
            {
                watch.Restart();
                await using var insert = new NpgsqlCommand("insert into triples (subject, predicate, object, object_kind) values ($1, $2, $3, 'entity')", sql);
                insert.Parameters.Add(new NpgsqlParameter { Value = $"e{random.Next(entities)}" });
                insert.Parameters.Add(new NpgsqlParameter { Value = predicate });
                insert.Parameters.Add(new NpgsqlParameter { Value = $"e{random.Next(entities)}" });
                await insert.ExecuteNonQueryAsync();
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        Log.Line($"service: identity components: rebuilt in PostgreSQL in {rebuildSeconds:0.00} s; lookup p50 {Log.Percentile(service, 0.5):0.000} ms through HTTP, {Log.Percentile(postgres, 0.5):0.000} ms from the trigger projection (same sizes); an insert p50 {Log.Percentile(plain, 0.5):0.00} ms, a sameAs insert (trigger) {Log.Percentile(linked, 0.5):0.00} ms");
        return new JsonObject
        {
            ["sql_rebuild_s"] = Round(rebuildSeconds),
            ["http_lookup_p50_ms"] = Round(Log.Percentile(service, 0.5)),
            ["sql_lookup_p50_ms"] = Round(Log.Percentile(postgres, 0.5)),
            ["insert_p50_ms"] = Round(Log.Percentile(plain, 0.5)),
            ["identity_insert_p50_ms"] = Round(Log.Percentile(linked, 0.5)),
        };
    }

    // A write through the API answers once this process shows it: its latency is write-to-visible.
    private static async Task<JsonObject> WriteVisibleAsync(HttpClient http)
    {
        var times = new List<double>();
        for (var i = 0; i < 300; i++)
        {
            var watch = Stopwatch.StartNew();
            using var response = await http.PostAsJsonAsync("/v1/triples", new { triples = new[] { new { subject = $"w{i}", predicate = "wrote", @object = $"e{i}" } } });
            response.EnsureSuccessStatusCode();
            if (i >= 20)
            {
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        Log.Line($"service: write to visible through the API p50 {Log.Percentile(times, 0.5):0.00} ms, p99 {Log.Percentile(times, 0.99):0.00} ms");
        return Percentiles(times, 0.5, 0.99);
    }

    // A write by another SQL client: from its commit to the moment the service answers with it.
    private static async Task<JsonObject> ExternalWriteVisibleAsync(HttpClient http, NpgsqlConnection sql)
    {
        var times = new List<double>();
        for (var i = 0; i < 200; i++)
        {
            await using (var insert = new NpgsqlCommand("insert into triples (subject, predicate, object, object_kind) values ($1, 'external', 'e1', 'entity')", sql))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = $"x{i}" });
                await insert.ExecuteNonQueryAsync();
            }

            var watch = Stopwatch.StartNew();
            while (!(await http.GetAsync($"/v1/entities/x{i}/neighbors")).IsSuccessStatusCode)
            {
                await Task.Yield();
            }

            times.Add(watch.Elapsed.TotalMilliseconds);
        }

        Log.Line($"service: an SQL client's commit visible in the service p50 {Log.Percentile(times, 0.5):0.00} ms, p99 {Log.Percentile(times, 0.99):0.00} ms");
        return Percentiles(times, 0.5, 0.99);
    }

    private static async Task<JsonObject> FusionAsync(HttpClient http)
    {
        var random = new Random(7);
        var times = new List<double>();
        for (var i = 0; i < 520; i++)
        {
            var watch = Stopwatch.StartNew();
            using var response = await http.PostAsJsonAsync("/v1/search/fusion", new { model = "bench", vector = RandomVector(random), candidates = 10, hops = 2, topN = 10 });
            response.EnsureSuccessStatusCode();
            if (i >= 20)
            {
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        Log.Line($"service: fusion through HTTP p50 {Log.Percentile(times, 0.5):0.00} ms, p95 {Log.Percentile(times, 0.95):0.00} ms");
        return Percentiles(times, 0.5, 0.95);
    }

    private static async Task<JsonObject> NeighborsAsync(HttpClient http, NpgsqlConnection sql, int entities)
    {
        var random = new Random(11);
        var service = new List<double>();
        var postgres = new List<double>();
        for (var i = 0; i < 520; i++)
        {
            var entity = $"e{random.Next(entities)}";
            var watch = Stopwatch.StartNew();
            using (var response = await http.GetAsync($"/v1/entities/{entity}/neighbors?direction=out"))
            {
                await response.Content.ReadAsStringAsync();
            }

            var mine = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            await using (var query = new NpgsqlCommand("select id, predicate, object, object_kind, confidence from triples where subject = $1 and valid_to is null", sql))
            {
                query.Parameters.Add(new NpgsqlParameter { Value = entity });
                await using var reader = await query.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                }
            }

            if (i >= 20)
            {
                service.Add(mine);
                postgres.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        Log.Line($"service: neighbours p50 {Log.Percentile(service, 0.5):0.000} ms through HTTP, {Log.Percentile(postgres, 0.5):0.000} ms as SQL");
        return new JsonObject { ["http_p50_ms"] = Round(Log.Percentile(service, 0.5)), ["sql_p50_ms"] = Round(Log.Percentile(postgres, 0.5)) };
    }

    private static async Task<JsonObject> ThreeHopAsync(HttpClient http, NpgsqlConnection sql, int entities)
    {
        const string recursive =
            "with recursive r(node, depth) as (select $1::text, 0 union " +
            "select t.object, r.depth + 1 from r join triples t on t.subject = r.node where r.depth < 3 and t.object_kind = 'entity' and t.valid_to is null) " +
            "select count(distinct node) from r";
        var random = new Random(13);
        var service = new List<double>();
        var postgres = new List<double>();
        for (var i = 0; i < 60; i++)
        {
            var entity = $"e{random.Next(entities)}";
            var watch = Stopwatch.StartNew();
            int reached;
            using (var response = await http.PostAsJsonAsync("/v1/traverse", new { start = entity, hops = 3, direction = "out" }))
            {
                reached = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("reached").GetArrayLength();
            }

            var mine = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            long counted;
            await using (var query = new NpgsqlCommand(recursive, sql))
            {
                query.Parameters.Add(new NpgsqlParameter { Value = entity });
                counted = (long)(await query.ExecuteScalarAsync())!;
            }

            if (counted != reached)
            {
                throw new InvalidOperationException($"3-hop from {entity}: the service reached {reached} entities, SQL {counted}");
            }

            if (i >= 10)
            {
                service.Add(mine);
                postgres.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        var ratio = Log.Percentile(postgres, 0.5) / Log.Percentile(service, 0.5);
        Log.Line($"service: 3-hop p50 {Log.Percentile(service, 0.5):0.00} ms through HTTP, {Log.Percentile(postgres, 0.5):0.00} ms as a recursive CTE ({ratio:0.0}x), same entity counts");
        return new JsonObject { ["http_p50_ms"] = Round(Log.Percentile(service, 0.5)), ["sql_p50_ms"] = Round(Log.Percentile(postgres, 0.5)), ["speedup"] = Round(ratio) };
    }

    private static async Task<double> ThroughputAsync(HttpClient http, int entities)
    {
        var done = 0L;
        var watch = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(5);
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async worker =>
        {
            var random = new Random(worker);
            while (watch.Elapsed < until)
            {
                using var response = await http.GetAsync($"/v1/entities/e{random.Next(entities)}/neighbors?direction=out&limit=20");
                await response.Content.ReadAsStringAsync();
                Interlocked.Increment(ref done);
            }
        }));
        var rps = done / watch.Elapsed.TotalSeconds;
        Log.Line($"service: {rps:0} neighbour requests per second (16 clients on loopback, the load generator on the same 2 cores)");
        return Round(rps);
    }

    private static float[] RandomVector(Random random)
    {
        var v = new float[Dimensions];
        for (var d = 0; d < v.Length; d++)
        {
            v[d] = (float)((random.NextDouble() * 2) - 1);
        }

        return v;
    }

    private static JsonObject Percentiles(List<double> times, double low, double high) => new()
    {
        [$"p{low * 100:0}"] = Round(Log.Percentile(times, low)),
        [$"p{high * 100:0}"] = Round(Log.Percentile(times, high)),
    };

    private static double Round(double v) => Math.Round(v, 3);
}
