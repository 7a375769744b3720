using System.Collections.Concurrent;
using MemoryCluster.Compute.Store;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Instance.Tests.Postgres;
using Npgsql;

namespace MemoryCluster.Compute.Tests.Feed;

/// <summary>The service across a failover of a real primary/standby pair, reached by one multi-host connection string.</summary>
[Trait("Category", "Integration")]
public sealed class FailoverTests
{
    [Fact]
    public async Task The_service_follows_a_failover_keeps_serving_reads_and_ends_equal_to_the_new_primary()
    {
        await using var primary = TestNode.Create("feed_primary");
        await primary.Tools.InitDbAsync(primary.DataDirectory, CancellationToken.None);
        primary.WriteConfig(upstream: null);
        await primary.StartAsync();
        await primary.Client.EnsureRoleAsync(TestNode.ReplicationUser, TestNode.ReplicationPassword, replication: true, CancellationToken.None);
        await primary.Client.EnsureSlotsAsync(["feed_standby"], dropOthers: false, CancellationToken.None);
        await primary.ExecuteAsync("create database memory");
        await using var standby = TestNode.Create("feed_standby");
        await standby.Tools.BaseBackupAsync(standby.DataDirectory, primary.SourceFor(standby), CancellationToken.None);
        standby.WriteConfig(primary.SourceFor(standby));
        await standby.StartAsync();

        var both = new NpgsqlConnectionStringBuilder
        {
            Host = $"{primary.SocketDirectory}:{primary.Port},{standby.SocketDirectory}:{standby.Port}",
            Username = "postgres",
            Database = "memory",
            TargetSessionAttributes = "read-write",
        }.ConnectionString;
        await using var service = await RunningService.StartAsync(both);

        var acknowledged = new ConcurrentBag<long>();
        var readFailures = new ConcurrentBag<string>();
        var readsDuringFailover = 0;
        var phase = 0; // 0 before the failover, 1 during, 2 after
        var afterFailover = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested && Volatile.Read(ref afterFailover) < 40; i++)
            {
                var (status, body) = await service.PostAsync("/v1/triples", new { triples = new[] { new { subject = "writer", predicate = "wrote", @object = $"n{i}" } } });
                if (status is 201 or 202)
                {
                    acknowledged.Add(body.GetProperty("ids")[0].GetInt64());
                    if (Volatile.Read(ref phase) == 2)
                    {
                        Interlocked.Increment(ref afterFailover);
                    }
                }
                else
                {
                    await Task.Delay(20);
                }
            }
        });
        var reader = Task.Run(async () =>
        {
            while (!writer.IsCompleted)
            {
                using var response = await service.Client.GetAsync("/v1/entities/writer/neighbors?limit=5");
                if (Volatile.Read(ref phase) == 1 || (Volatile.Read(ref phase) == 2 && Volatile.Read(ref afterFailover) == 0))
                {
                    // Between the primary's stop and the first write the new primary acknowledged.
                    Interlocked.Increment(ref readsDuringFailover);
                }

                if (!response.IsSuccessStatusCode && response.StatusCode != System.Net.HttpStatusCode.NotFound)
                {
                    readFailures.Add($"{(int)response.StatusCode} in phase {Volatile.Read(ref phase)}");
                }

                await Task.Delay(10);
            }
        });

        await Wait.UntilAsync(() => acknowledged.Count >= 30, "30 writes before the failover");
        Volatile.Write(ref phase, 1);
        await primary.StopAsync(ShutdownMode.Fast);
        await standby.ExecuteAsync("select pg_promote()");
        Volatile.Write(ref phase, 2);
        await writer.WaitAsync(TimeSpan.FromSeconds(90));
        await reader;

        Assert.True(afterFailover >= 40, $"only {afterFailover} writes acknowledged after the promotion\n{service.Log.Tail()}");
        Assert.Empty(readFailures);
        Assert.True(readsDuringFailover > 0, "no read was answered while the primary was away");
        var newPrimary = new Database(new DatabaseOptions("check", both));
        await using (newPrimary)
        {
            var head = await FeedReaderHeadAsync(newPrimary);
            await Wait.UntilAsync(() => service.GetJsonAsync("/status").Result.GetProperty("seq").GetInt64() == head, "the service applied the new primary's last commit");
            var ids = await newPrimary.RunAsync("ids", async (c, ct) =>
            {
                await using var command = new NpgsqlCommand("select id from triples", c);
                await using var r = await command.ExecuteReaderAsync(ct);
                var set = new HashSet<long>();
                while (await r.ReadAsync(ct))
                {
                    set.Add(r.GetInt64(0));
                }

                return set;
            }, CancellationToken.None);
            var missing = acknowledged.Where(id => !ids.Contains(id)).ToList();
            Assert.True(missing.Count == 0, $"acknowledged but not on the new primary: {string.Join(", ", missing)}");
            var status = await service.GetJsonAsync("/status");
            Assert.Equal(ids.Count, status.GetProperty("triples").GetInt32());
            Assert.True(status.GetProperty("reconnects").GetInt64() >= 1);
        }
    }

    private static Task<long> FeedReaderHeadAsync(Database database) => MemoryCluster.Compute.Feed.FeedReader.HeadAsync(database, CancellationToken.None);
}
