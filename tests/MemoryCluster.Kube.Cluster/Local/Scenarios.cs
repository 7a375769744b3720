using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using MemoryCluster.E2e;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace MemoryCluster.Kube.Cluster.Local;

/// <summary>
/// <c>make e2e-kube</c>: scenarios on the one-machine cluster through the real kubectl, with the figures the issue asks
/// for. Time from <c>kubectl apply</c> to Ready for 3 and 5 instances (quorum mode); then, with a writer on the
/// 3-instance cluster's <c>-rw</c> Service recording every acknowledged write, <c>kubectl delete pod</c> of the
/// primary RUNS times: each time a new primary at a higher epoch, writes through <c>-rw</c> again, Ready again with
/// the old pod back; at the end every acknowledged write is on the primary. Ends with one JSON line; exit 1 when a
/// check failed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class Scenarios
{
    public static async Task<int> RunAsync(OneMachineOptions options, string chart, int runs, ILoggerFactory logging, CancellationToken cancellationToken)
    {
        var figures = new JsonObject { ["scenario"] = "e2e-kube", ["runs"] = runs };
        var failures = new List<string>();
        await using (var cluster = await OneMachineCluster.StartAsync(options, logging, cancellationToken).ConfigureAwait(false))
        {
            var kubectl = new Kubectl(cluster.KubeconfigPath);
            kubectl.InstallChart(chart, TimeSpan.FromSeconds(180));
            Console.WriteLine("e2e-kube: the operator is installed from the chart");

            foreach (var instances in new[] { 5, 3 })
            {
                var name = $"q{instances}";
                var clock = Stopwatch.StartNew();
                kubectl.RunOrThrow(["apply", "-f", "-"], Cluster(name, instances));
                kubectl.RunOrThrow(["wait", "--for=condition=Ready", $"memorycluster/{name}", "--timeout=300s"], timeout: TimeSpan.FromSeconds(320));
                figures[$"ready_{instances}_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
                Console.WriteLine($"e2e-kube: {instances} instances Ready {clock.Elapsed.TotalSeconds:0.0} s after kubectl apply");
                if (instances == 5)
                {
                    // Deleted again: everything it owns goes (scenario 7), and its pods stop using the machine.
                    kubectl.RunOrThrow(["delete", "memorycluster", name, "--wait=true", "--timeout=120s"], timeout: TimeSpan.FromSeconds(140));
                    await UntilAsync(() => kubectl.RunOrThrow(["get", "pods", "-l", $"memorycluster.io/cluster={name}", "-o", "name"]).Trim().Length == 0,
                        TimeSpan.FromSeconds(120), $"{name}'s pods gone").ConfigureAwait(false);
                }
            }

            var rw = kubectl.RunOrThrow(["get", "service", "q3-rw", "-o", "jsonpath={.spec.clusterIP}"]);
            var password = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(kubectl.RunOrThrow(["get", "secret", "q3-app", "-o", "jsonpath={.data.password}"])));
            var connection = $"Host={rw};Port=5432;Username=app;Password={password};Database=app;SSL Mode=Require;Trust Server Certificate=true;Timeout=3;Command Timeout=5";
            await AckedWriter.CreateTableAsync(connection).ConfigureAwait(false);
            var gaps = new List<double>();
            await using (var writer = new AckedWriter(connection, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(30)))
            {
                if (!await writer.WaitForAckedAsync(50, TimeSpan.FromSeconds(30)).ConfigureAwait(false))
                {
                    throw new InvalidOperationException("the writer got no acknowledged write through q3-rw within 30 s");
                }

                for (var run = 1; run <= runs; run++)
                {
                    var (primary, epoch) = Primary(kubectl, "q3");
                    var from = Stopwatch.GetTimestamp();
                    kubectl.RunOrThrow(["delete", "pod", primary, "--wait=false"]);
                    var moved = await UntilAsync(() => Primary(kubectl, "q3") is var now && now.Name != primary && now.Epoch > epoch, TimeSpan.FromSeconds(60), $"a new primary after {primary}").ConfigureAwait(false);
                    var after = Stopwatch.GetTimestamp();
                    var writes = await writer.WaitForAsync(w => w.Count > 0 && w[^1].AckedAt > after, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
                    if (!moved || !writes)
                    {
                        failures.Add($"run {run}: {(moved ? "no write through q3-rw within 60 s of the new primary" : "no new primary within 60 s")}");
                        break;
                    }

                    var until = Stopwatch.GetTimestamp();
                    var gap = writer.LongestGap(from, until).TotalSeconds;
                    gaps.Add(gap);
                    var (next, nextEpoch) = Primary(kubectl, "q3");

                    // When the writer's attempts failed, from the deletion on: what the gap was made of.
                    var failed = writer.FailedAt.Where(t => t >= from && t <= until).Select(t => Stopwatch.GetElapsedTime(from, t).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)).ToList();
                    Console.WriteLine($"e2e-kube: run {run}: deleted {primary} (epoch {epoch}); {next} primary at epoch {nextEpoch} after {Stopwatch.GetElapsedTime(from, after).TotalSeconds:0.00} s; " +
                        $"writes through q3-rw stopped for {gap:0.00} s; attempts failed at +[{string.Join(", ", failed)}] s");
                    kubectl.RunOrThrow(["wait", "--for=condition=Ready", "memorycluster/q3", "--timeout=180s"], timeout: TimeSpan.FromSeconds(200));
                    await UntilAsync(() => kubectl.RunOrThrow(["get", "memorycluster", "q3", "-o", "jsonpath={.status.readyInstances}"]) == "3",
                        TimeSpan.FromSeconds(180), "3 ready instances again").ConfigureAwait(false);
                }

                await writer.StopAsync().ConfigureAwait(false);
                var acked = writer.Acked;
                var present = new HashSet<long>();
                await using (var reader = new NpgsqlConnection(connection))
                {
                    await reader.OpenAsync(cancellationToken).ConfigureAwait(false);
                    await using var command = new NpgsqlCommand("select id from writes", reader);
                    await using var rows = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await rows.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        present.Add(rows.GetInt64(0));
                    }
                }

                var lost = acked.Count(id => !present.Contains(id));
                figures["acked"] = acked.Count;
                figures["lost"] = lost;
                if (lost > 0)
                {
                    failures.Add($"{lost} acknowledged writes are not on the primary");
                }
            }

            gaps.Sort();
            figures["failover_gap_p50_s"] = gaps.Count == 0 ? null : Math.Round(Percentile(gaps, 0.5), 2);
            figures["failover_gap_p99_s"] = gaps.Count == 0 ? null : Math.Round(Percentile(gaps, 0.99), 2);
            figures["failover_gaps_s"] = new JsonArray([.. gaps.Select(g => (JsonNode)Math.Round(g, 2))]);
        }

        figures["failures"] = new JsonArray([.. failures.Select(f => (JsonNode)f)]);
        Console.WriteLine(figures.ToJsonString());
        return failures.Count == 0 ? 0 : 1;
    }

    private static (string Name, long Epoch) Primary(Kubectl kubectl, string cluster)
    {
        var text = kubectl.RunOrThrow(["get", "memorycluster", cluster, "-o", "jsonpath={.status.currentPrimary} {.status.epoch}"]).Trim().Split(' ');
        return (text[0], text.Length > 1 && long.TryParse(text[1], CultureInfo.InvariantCulture, out var epoch) ? epoch : 0);
    }

    private static string Cluster(string name, int instances) => $"""
        apiVersion: memorycluster.io/v1alpha1
        kind: MemoryCluster
        metadata:
          name: {name}
        spec:
          instances: {instances}
          replication:
            mode: quorum
        """;

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    private static async Task<bool> UntilAsync(Func<bool> done, TimeSpan limit, string what)
    {
        var reached = await Poll.UntilAsync(done, limit, TimeSpan.FromMilliseconds(100), CancellationToken.None).ConfigureAwait(false);
        if (!reached)
        {
            Console.WriteLine($"e2e-kube: not within {limit.TotalSeconds:0} s: {what}");
        }

        return reached;
    }
}
