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

        PluginWorks(kube, row[3]);
    }

    /// <summary>The kubectl plugin against the same cluster: status, logs, psql, a switchover and its refusals.</summary>
    private static void PluginWorks(OneMachineHarness kube, string primary)
    {
        var status = kube.KubectlOrFail(["memorycluster", "status", "demo"]);
        Assert.Contains($"Primary:   {primary} (epoch ", status, StringComparison.Ordinal);
        foreach (var instance in new[] { "demo-0", "demo-1", "demo-2" })
        {
            Assert.Matches($@"(?m)^{instance}\s+(primary|replica)\s+\d+\s+\d+/[0-9A-F]+\s+\d+ [kMG]?B\s+yes", status);
        }

        Assert.Matches(@"(?m)^Ready\s+True\s+AllInstancesReady", status);
        Assert.Contains("ClusterReady", status, StringComparison.Ordinal);

        // Every instance's log, each line with its pod (kubectl logs through the node's files), the manager's JSON lines
        // made readable as `local logs` makes them (--json keeps them as logged).
        var logs = kube.KubectlOrFail(["memorycluster", "logs", "demo", "--tail=3"]);
        foreach (var instance in new[] { "demo-0", "demo-1", "demo-2" })
        {
            Assert.Contains($"[pod/{instance}/instance]", logs, StringComparison.Ordinal);
        }

        Assert.DoesNotMatch(@"(?m)^\[pod/[^\]]+\] \{", logs);
        Assert.Matches(@"(?m)^\[pod/demo-\d/instance\] \d\d:\d\d:\d\d\.\d{3} (INFO|WARN|DBUG|FAIL|CRIT) \w+: ", logs);
        Assert.Matches(@"(?m)^\[pod/demo-\d/instance\] \{", kube.KubectlOrFail(["memorycluster", "logs", "demo", "--tail=3", "--json"]));

        Assert.Equal("100", kube.KubectlOrFail(["memorycluster", "psql", "demo", "--", "-Atc", "select count(*) from seen"]).Trim());
        Assert.Equal("t", kube.KubectlOrFail(["memorycluster", "psql", "demo", "--ro", "--", "-Atc", "select pg_is_in_recovery()"]).Trim());

        var (code, _, error) = kube.Kubectl(["memorycluster", "switchover", "demo", "--to", "demo-7"]);
        Assert.True(code == 1 && error.Contains("demo-7 is not an instance of demo (instances: demo-0, demo-1, demo-2)", StringComparison.Ordinal), $"{code}: {error}");
        (code, _, error) = kube.Kubectl(["memorycluster", "status", "nope"]);
        Assert.True(code == 1 && error.Contains("memorycluster nope not found in namespace default", StringComparison.Ordinal), $"{code}: {error}");

        var target = new[] { "demo-0", "demo-1", "demo-2" }.First(i => i != primary);
        var switched = kube.KubectlOrFail(["memorycluster", "switchover", "demo", "--to", target, "--timeout=60"], timeout: TimeSpan.FromSeconds(90));
        Assert.Contains($"{target} is the primary at epoch", switched, StringComparison.Ordinal);
        Assert.Equal(target, kube.KubectlOrFail(["get", "memorycluster", "demo", "-o", "jsonpath={.status.currentPrimary}"]));

        // The operator answered the request: its annotation is gone.
        Assert.Equal("", kube.KubectlOrFail(["get", "memorycluster", "demo", "-o", "jsonpath={.metadata.annotations.memorycluster\\.io/switchover-to}"]));
        Console.WriteLine($"one-machine kubernetes: kubectl memorycluster switchover {primary} -> {target}: {switched.Trim()}");
    }
}
