using System.Diagnostics;
using Npgsql;

namespace MemoryCluster.Cli.Tests.Kube;

/// <summary>
/// Scenario 1 of Kubernetes on one machine, through the real kubectl: the operator installed from the chart runs as
/// pods; `kubectl apply` of the minimal sample gives a Ready MemoryCluster (primary, two replicas, compute); rows
/// written through the -rw Service's address are read through -ro's.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OneMachineScenarioTests
{
    [Fact]
    public async Task Applying_the_minimal_sample_gives_a_ready_cluster_whose_services_route_writes_and_reads()
    {
        await using var kube = await OneMachineHarness.StartAsync();
        var clock = Stopwatch.StartNew();
        kube.KubectlOrFail(["apply", "-f", Repository.PathOf("crds/samples/minimal.yaml")]);
        kube.KubectlOrFail(["wait", "--for=condition=Ready", "memorycluster/demo", "--timeout=240s"], timeout: TimeSpan.FromSeconds(260));
        var ready = clock.Elapsed;

        // The printer columns: instances, ready, primary.
        var row = kube.KubectlOrFail(["get", "memorycluster", "demo", "--no-headers"]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(row is [_, "3", "3", var primary, ..] && primary.StartsWith("demo-", StringComparison.Ordinal), string.Join(' ', row));
        var compute = kube.KubectlOrFail(["get", "memorycluster", "demo", "-o", "jsonpath={.status.conditions[?(@.type==\"ComputeReady\")].status}"]);
        Assert.Equal("True", compute);

        var rw = kube.KubectlOrFail(["get", "service", "demo-rw", "-o", "jsonpath={.spec.clusterIP}"]);
        var ro = kube.KubectlOrFail(["get", "service", "demo-ro", "-o", "jsonpath={.spec.clusterIP}"]);
        var password = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(kube.KubectlOrFail(["get", "secret", "demo-app", "-o", "jsonpath={.data.password}"])));
        string Connection(string host) => $"Host={host};Port=5432;Username=app;Password={password};Database=app;SSL Mode=Require;Trust Server Certificate=true;Timeout=10;Pooling=false";

        await using (var writer = new NpgsqlConnection(Connection(rw)))
        {
            await writer.OpenAsync();
            await using var command = new NpgsqlCommand("create table seen(n int); insert into seen select generate_series(1, 100); select pg_is_in_recovery()", writer);
            Assert.False((bool)(await command.ExecuteScalarAsync())!);
        }

        // Replication is asynchronous in the minimal sample: read until the replica has the rows.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        long count = 0;
        while (DateTime.UtcNow < deadline)
        {
            await using var reader = new NpgsqlConnection(Connection(ro));
            await reader.OpenAsync();
            await using var check = new NpgsqlCommand("select pg_is_in_recovery(), (select count(*) from pg_tables where tablename = 'seen')", reader);
            await using var result = await check.ExecuteReaderAsync();
            await result.ReadAsync();
            Assert.True(result.GetBoolean(0), "demo-ro reached a primary");
            if (result.GetInt64(1) == 1)
            {
                await result.CloseAsync();
                await using var rows = new NpgsqlCommand("select count(*) from seen", reader);
                count = (long)(await rows.ExecuteScalarAsync())!;
                if (count == 100)
                {
                    break;
                }
            }

            await Task.Delay(200);
        }

        Assert.Equal(100, count);
        Console.WriteLine($"one-machine kubernetes: minimal sample Ready {ready.TotalSeconds:0.0} s after kubectl apply");
    }
}
