using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.E2e;
using MemoryCluster.Kube.Cluster.Node;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace MemoryCluster.Kube.Cluster.Local;

/// <summary>
/// <c>make e2e-kube</c>: the issue's scenarios on the one-machine cluster through the real kubectl, with the figures
/// it asks for. Time from <c>kubectl apply</c> to Ready for 5 and 3 instances (quorum mode; the 5 deleted again, 7);
/// an invalid spec (8); then, with a writer on the 3-instance cluster's <c>-rw</c> Service recording every
/// acknowledged write: <c>kubectl delete pod</c> of the primary RUNS times (2), kill -9 of the primary's PostgreSQL
/// inside its pod RUNS times (3), scale 3 → 5 → 3 with <c>kubectl patch</c> (4), the operator's leader killed (6).
/// At the end every acknowledged write must be on the primary. Ends with one JSON line; exit 1 when a check failed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class Scenarios
{
    private const string OperatorNamespace = "memorycluster-system";
    private const string Cluster = "q3";

    /// <summary>The label selector of q3's instance pods.</summary>
    private const string InstancePods = $"{ClusterLabels.Cluster}={Cluster},{ClusterLabels.Component}={ClusterLabels.PostgresComponent}";

    /// <summary>A write gap longer than this (seconds) prints the route timeline (the planned switchover goal: 1 s).</summary>
    private const double SlowGap = 1.0;

    private readonly OneMachineCluster _cluster;
    private readonly Kubectl _kubectl;
    private readonly JsonObject _figures;
    private readonly List<string> _failures = [];
    private readonly CancellationToken _cancel;

    private Scenarios(OneMachineCluster cluster, Kubectl kubectl, JsonObject figures, CancellationToken cancel)
    {
        _cluster = cluster;
        _kubectl = kubectl;
        _figures = figures;
        _cancel = cancel;
    }

    public static async Task<int> RunAsync(OneMachineOptions options, string chart, int runs, ILoggerFactory logging, CancellationToken cancellationToken)
    {
        var figures = new JsonObject { ["scenario"] = "e2e-kube", ["runs"] = runs };
        List<string> failures;
        await using (var cluster = await OneMachineCluster.StartAsync(options, logging, cancellationToken).ConfigureAwait(false))
        {
            var kubectl = new Kubectl(cluster.KubeconfigPath);
            kubectl.InstallChart(chart, TimeSpan.FromSeconds(180));
            Console.WriteLine("e2e-kube: the operator is installed from the chart");
            var scenarios = new Scenarios(cluster, kubectl, figures, cancellationToken);
            await scenarios.RunAllAsync(runs, cancellationToken).ConfigureAwait(false);
            failures = scenarios._failures;
        }

        figures["failures"] = new JsonArray([.. failures.Select(f => (JsonNode)f)]);
        Console.WriteLine(figures.ToJsonString());
        return failures.Count == 0 ? 0 : 1;
    }

    private async Task RunAllAsync(int runs, CancellationToken cancellationToken)
    {
        // 1 and 7: to Ready, 5 instances then 3; the 5 deleted again, with everything it owns.
        await ReadyAfterApplyAsync("q5", 5).ConfigureAwait(false);
        _kubectl.RunOrThrow(["delete", "memorycluster", "q5", "--wait=true", "--timeout=120s"], timeout: TimeSpan.FromSeconds(140));
        await UntilAsync(() => _kubectl.RunOrThrow(["get", "pods", "-l", $"{ClusterLabels.Cluster}=q5", "-o", "name"]).Trim().Length == 0,
            TimeSpan.FromSeconds(120), "q5's pods gone").ConfigureAwait(false);
        await ReadyAfterApplyAsync(Cluster, 3).ConfigureAwait(false);

        // 8: before any writer, so that "nothing changed" is plain to see.
        await InvalidSpecAsync().ConfigureAwait(false);

        var rw = _kubectl.RunOrThrow(["get", "service", $"{Cluster}-rw", "-o", "jsonpath={.spec.clusterIP}"]);
        var password = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(_kubectl.RunOrThrow(["get", "secret", $"{Cluster}-app", "-o", "jsonpath={.data.password}"])));
        var connection = $"Host={rw};Port=5432;Username=app;Password={password};Database=app;SSL Mode=Require;Trust Server Certificate=true;Timeout=3;Command Timeout=5";
        await AckedWriter.CreateTableAsync(connection).ConfigureAwait(false);
        await using var timeline = new RouteTimeline(_cluster.Client, "default", Cluster);
        await using var writer = new AckedWriter(connection, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(45));
        if (!await writer.WaitForAckedAsync(50, TimeSpan.FromSeconds(30)).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"the writer got no acknowledged write through {Cluster}-rw within 30 s");
        }

        var failover = new Failover(writer, timeline, connection);
        await FailoversAsync("delete-pod", runs, failover, DeletePod, primaryMoves: true).ConfigureAwait(false);
        await FailoversAsync("kill-postgres", runs, failover, KillPostgres, primaryMoves: false).ConfigureAwait(false);
        await ScaleAsync(writer).ConfigureAwait(false);
        var superuser = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(_kubectl.RunOrThrow(["get", "secret", $"{Cluster}-superuser", "-o", "jsonpath={.data.password}"])));
        await RollingUpdateAsync("parameter", writer, timeline, """{"spec":{"postgres":{"parameters":{"shared_buffers":"48MB"}}}}""", superuser).ConfigureAwait(false);
        await RollingUpdateAsync("image", writer, timeline, """{"spec":{"postgres":{"image":"ghcr.io/memorycluster/instance:15-e2e"}}}""", superuser).ConfigureAwait(false);
        await OperatorLeaderKilledAsync().ConfigureAwait(false);

        await writer.StopAsync().ConfigureAwait(false);
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

        var acked = writer.Acked;
        var lost = acked.Count(id => !present.Contains(id));
        _figures["acked"] = acked.Count;
        _figures["lost"] = lost;
        if (lost > 0)
        {
            _failures.Add($"{lost} acknowledged writes are not on the primary");
        }
    }

    private async Task ReadyAfterApplyAsync(string name, int instances)
    {
        var clock = Stopwatch.StartNew();
        _kubectl.RunOrThrow(["apply", "-f", "-"], Manifest(name, instances));
        _kubectl.RunOrThrow(["wait", "--for=condition=Ready", $"memorycluster/{name}", "--timeout=300s"], timeout: TimeSpan.FromSeconds(320));
        _figures[$"ready_{instances}_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        Console.WriteLine($"e2e-kube: {instances} instances Ready {clock.Elapsed.TotalSeconds:0.0} s after kubectl apply");
    }

    /// <summary>
    /// 8. A value the schema refuses (an enum) is rejected by the API server with its field path; a value only a CEL
    /// rule refuses (instances 4) is rejected by the API server where it evaluates CEL, else accepted there and
    /// refused by the operator (Ready False, InvalidSpec, naming the field); either way nothing of the cluster changes.
    /// </summary>
    private async Task InvalidSpecAsync()
    {
        var before = Pods();
        var generation = _kubectl.RunOrThrow(["get", "memorycluster", Cluster, "-o", "jsonpath={.metadata.generation}"]);
        var badMode = Manifest(Cluster, 3).Replace("mode: quorum", "mode: sometimes", StringComparison.Ordinal);
        var (code, _, stderr) = _kubectl.Run(["apply", "-f", "-"], badMode);
        Check(code != 0 && stderr.Contains("spec.replication.mode", StringComparison.Ordinal) && stderr.Contains("sometimes", StringComparison.Ordinal),
            $"invalid spec: kubectl apply of replication.mode=sometimes was not rejected with its field path (exit {code}: {stderr.Trim()})");
        Check(_kubectl.RunOrThrow(["get", "memorycluster", Cluster, "-o", "jsonpath={.metadata.generation}"]) == generation,
            "invalid spec: a rejected apply changed the MemoryCluster's generation");

        var (patched, _, patchError) = _kubectl.Run(["patch", "memorycluster", Cluster, "--type=merge", "-p", """{"spec":{"instances":4}}"""]);
        string how;
        if (patched != 0)
        {
            Check(patchError.Contains("spec.instances", StringComparison.Ordinal), $"invalid spec: instances=4 was refused without its field path: {patchError.Trim()}");
            how = "refused by the API server";
        }
        else
        {
            var refused = await UntilAsync(
                async () => Condition(await StatusAsync().ConfigureAwait(false), "Ready") is { Reason: "InvalidSpec" } ready && ready.Message.Contains("spec.instances", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), "the operator's InvalidSpec condition naming spec.instances").ConfigureAwait(false);
            Check(refused, "invalid spec: instances=4 got no InvalidSpec condition naming spec.instances within 60 s");
            Check((await EventsAsync().ConfigureAwait(false)).Any(e => e.Reason == "InvalidSpec" && e.Note.Contains("spec.instances", StringComparison.Ordinal)), "invalid spec: no InvalidSpec Event naming spec.instances");
            Check(_kubectl.RunOrThrow(["get", "statefulset", Cluster, "-o", "jsonpath={.spec.replicas}"]) == "3", "invalid spec: the StatefulSet's replicas changed");
            Check(Pods().SequenceEqual(before), $"invalid spec: the pods changed ({string.Join(", ", before)} -> {string.Join(", ", Pods())})");
            _kubectl.RunOrThrow(["patch", "memorycluster", Cluster, "--type=merge", "-p", """{"spec":{"instances":3}}"""]);
            how = "accepted by the API server (it does not evaluate CEL), refused by the operator (InvalidSpec)";
        }

        _kubectl.RunOrThrow(["wait", "--for=condition=Ready", $"memorycluster/{Cluster}", "--timeout=120s"], timeout: TimeSpan.FromSeconds(140));
        Check(Pods().SequenceEqual(before), "invalid spec: the pods changed");
        Console.WriteLine($"e2e-kube: invalid spec: replication.mode=sometimes rejected by the API server with its path; instances=4 {how}; nothing changed");
    }

    /// <summary>The writer, the route's timeline and the -rw connection string: what every failover run checks against.</summary>
    private sealed record Failover(AckedWriter Writer, RouteTimeline Timeline, string Connection);

    /// <summary>
    /// 2 and 3. A fault on the primary, RUNS times: each time a primary at a higher epoch (another member when
    /// <paramref name="primaryMoves"/>), writes acknowledged through -rw again and -rw reaching that primary, a
    /// PrimaryChanged Event naming it, and the cluster Ready again with every instance ready.
    /// </summary>
    private async Task FailoversAsync(string name, int runs, Failover context, Func<string, Task> fault, bool primaryMoves)
    {
        var gaps = new List<double>();
        for (var run = 1; run <= runs; run++)
        {
            var (primary, epoch) = await PrimaryAsync().ConfigureAwait(false);
            var from = Stopwatch.GetTimestamp();
            await fault(primary).ConfigureAwait(false);
            var moved = await UntilAsync(async () => await PrimaryAsync().ConfigureAwait(false) is var now && now.Epoch > epoch && now.Name.Length > 0 && (!primaryMoves || now.Name != primary),
                TimeSpan.FromSeconds(60), $"a new primary after {primary}").ConfigureAwait(false);
            var after = Stopwatch.GetTimestamp();
            var writes = await context.Writer.WaitForAsync(w => w.Count > 0 && w[^1].AckedAt > after, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
            if (!moved || !writes)
            {
                _failures.Add($"{name} run {run}: {(moved ? $"no write through {Cluster}-rw within 60 s of the new primary" : "no new primary within 60 s")}");
                break;
            }

            var until = Stopwatch.GetTimestamp();
            var gap = context.Writer.LongestGap(from, until).TotalSeconds;
            gaps.Add(gap);
            var (next, nextEpoch) = await PrimaryAsync().ConfigureAwait(false);
            Console.WriteLine($"e2e-kube: {name} {run}: {primary} (epoch {epoch}); {next} primary at epoch {nextEpoch} after {Stopwatch.GetElapsedTime(from, after).TotalSeconds:0.00} s; " +
                $"writes through {Cluster}-rw stopped for {gap:0.00} s; {Failures(context.Writer, from, until)}");
            if (gap > SlowGap)
            {
                Console.WriteLine($"e2e-kube: {name} {run}: the route to the primary as the API server saw it:{Environment.NewLine}  " +
                    string.Join(Environment.NewLine + "  ", context.Timeline.Between(from, until)));
            }

            var podIp = _kubectl.RunOrThrow(["get", "pod", next, "-o", "jsonpath={.status.podIP}"]);
            Check(await UntilAsync(async () => await ServerAddressAsync(context.Connection).ConfigureAwait(false) == podIp, TimeSpan.FromSeconds(30), $"{Cluster}-rw reaching {next}").ConfigureAwait(false),
                $"{name} run {run}: {Cluster}-rw does not reach the primary {next} ({podIp})");
            Check(await UntilAsync(async () => (await EventsAsync().ConfigureAwait(false)).Any(e => e.Reason == "PrimaryChanged" && e.Note.StartsWith($"{next} is the primary at epoch {nextEpoch}", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(30), $"the PrimaryChanged Event for {next}").ConfigureAwait(false), $"{name} run {run}: no PrimaryChanged Event for {next} at epoch {nextEpoch}");
            _kubectl.RunOrThrow(["wait", "--for=condition=Ready", $"memorycluster/{Cluster}", "--timeout=180s"], timeout: TimeSpan.FromSeconds(200));
            Check(await UntilAsync(async () => (await StatusAsync().ConfigureAwait(false))?.ReadyInstances == 3,
                TimeSpan.FromSeconds(180), "3 ready instances again").ConfigureAwait(false), $"{name} run {run}: not 3 ready instances again within 180 s");
        }

        gaps.Sort();
        _figures[$"{name}_gap_p50_s"] = gaps.Count == 0 ? null : Math.Round(Percentile(gaps, 0.5), 2);
        _figures[$"{name}_gap_p99_s"] = gaps.Count == 0 ? null : Math.Round(Percentile(gaps, 0.99), 2);
        _figures[$"{name}_gaps_s"] = new JsonArray([.. gaps.Select(g => (JsonNode)Math.Round(g, 2))]);
    }

    private Task DeletePod(string pod)
    {
        _kubectl.RunOrThrow(["delete", "pod", pod, "--wait=false"]);
        return Task.CompletedTask;
    }

    /// <summary>3. kill -9 of the pod's postmaster, found by the node among its instance container's processes.</summary>
    private Task KillPostgres(string pod)
    {
        var uid = _kubectl.RunOrThrow(["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]);
        var postmasters = ProcessTree.Topmost(_cluster.Node.ContainerProcesses(uid, "instance"), "postgres");
        if (postmasters.Count != 1)
        {
            throw new InvalidOperationException($"{pod}: {postmasters.Count} postmasters in its instance container, not 1");
        }

        using var postmaster = Process.GetProcessById(postmasters[0].Pid);
        postmaster.Kill();
        return Task.CompletedTask;
    }

    /// <summary>
    /// 4. Scale 3 → 5 → 3 with <c>kubectl patch</c> while the writer writes: each new member added once
    /// (MemberAdded), the members leaving from the highest ordinal (MemberRemoved), Ready with every instance ready
    /// after each step.
    /// </summary>
    private async Task ScaleAsync(AckedWriter writer)
    {
        foreach (var instances in new[] { 5, 3 })
        {
            var clock = Stopwatch.StartNew();
            var from = Stopwatch.GetTimestamp();
            _kubectl.RunOrThrow(["patch", "memorycluster", Cluster, "--type=merge", "-p", "{\"spec\":{\"instances\":" + instances.ToString(CultureInfo.InvariantCulture) + "}}"]);
            var done = await UntilAsync(
                async () => (await EventsAsync().ConfigureAwait(false)).Any(e => e.Reason == "ScaleCompleted" && e.Note.StartsWith($"{instances} instances", StringComparison.Ordinal) && e.At > DateTime.UtcNow - clock.Elapsed - TimeSpan.FromSeconds(1))
                    && (await StatusAsync().ConfigureAwait(false))?.ReadyInstances == instances
                    && Pods().Count == instances,
                TimeSpan.FromSeconds(300), $"scaled to {instances}").ConfigureAwait(false);
            if (!done)
            {
                _failures.Add($"scale: not {instances} ready instances with ScaleCompleted within 300 s");
                return;
            }

            _kubectl.RunOrThrow(["wait", "--for=condition=Ready", $"memorycluster/{Cluster}", "--timeout=120s"], timeout: TimeSpan.FromSeconds(140));
            _figures[$"scale_to_{instances}_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
            var gap = writer.LongestGap(from, Stopwatch.GetTimestamp()).TotalSeconds;
            _figures[$"scale_to_{instances}_write_gap_s"] = Math.Round(gap, 2);
            Console.WriteLine($"e2e-kube: scale to {instances}: Ready with {instances} ready instances after {clock.Elapsed.TotalSeconds:0.0} s; writes through {Cluster}-rw stopped for at most {gap:0.00} s");
        }

        var events = (await EventsAsync().ConfigureAwait(false)).OrderBy(e => e.At).ToList();
        var added = events.Where(e => e.Reason == "MemberAdded").Select(e => e.Note.Split(' ')[0]).Where(p => p is "q3-3" or "q3-4").ToList();
        var removed = events.Where(e => e.Reason == "MemberRemoved").Select(e => e.Note.Split(' ')[0]).ToList();
        // Joiners are added one at a time, each as soon as its manager answers (the lower ordinal first when both do);
        // leavers go from the highest ordinal.
        Check(added.Order(StringComparer.Ordinal).SequenceEqual(["q3-3", "q3-4"]), $"scale: members added [{string.Join(", ", added)}], not q3-3 and q3-4 once each");
        Check(removed.SequenceEqual(["q3-4", "q3-3"]), $"scale: members removed in the order [{string.Join(", ", removed)}], not q3-4 then q3-3");
        Check(_kubectl.RunOrThrow(["get", "pvc", "-o", "name"]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(c => c.Contains("-q3-3", StringComparison.Ordinal) || c.Contains("-q3-4", StringComparison.Ordinal)) == 2,
            "scale: the volumes of the removed members are not kept");
    }

    /// <summary>
    /// 5. A change every instance takes only by a restart. A parameter (<c>shared_buffers</c>): the replicas' pods
    /// restarted one at a time, then one switchover, then the old primary's pod unless its demotion already restarted
    /// its PostgreSQL with the new value; done when every instance runs with it. An image tag, which changes the pod template
    /// (the node runs the same command whatever the image): every pod made again, the old primary's last, after the
    /// one switchover. Either way how long writes through -rw stopped at most.
    /// </summary>
    private async Task RollingUpdateAsync(string what, AckedWriter writer, RouteTimeline timeline, string patch, string password)
    {
        var (primary, _) = await PrimaryAsync().ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        var from = Stopwatch.GetTimestamp();
        var started = DateTime.UtcNow - TimeSpan.FromSeconds(1);
        var pods = Pods();
        _kubectl.RunOrThrow(["patch", "memorycluster", Cluster, "--type=merge", "-p", patch]);
        var image = what == "image";
        var done = await UntilAsync(
            async () => (image ? Pods() is var now && now.Count == 3 && !now.Intersect(pods).Any() : await EveryInstanceAsync("show shared_buffers", "48MB", password).ConfigureAwait(false))
                && await StatusAsync().ConfigureAwait(false) is { ReadyInstances: 3 } status && Condition(status, "Ready")?.Status == "True" && Condition(status, "Progressing")?.Status == "False",
            TimeSpan.FromSeconds(300), $"the {what} change in force on every instance, Ready").ConfigureAwait(false);
        if (!done)
        {
            _failures.Add($"rolling update ({what}): not in force on every instance with the cluster Ready within 300 s");
            return;
        }

        var gap = writer.LongestGap(from, Stopwatch.GetTimestamp()).TotalSeconds;
        _figures[$"rolling_{what}_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        _figures[$"rolling_{what}_write_gap_s"] = Math.Round(gap, 2);
        var events = (await EventsAsync().ConfigureAwait(false)).Where(e => e.At >= started).OrderBy(e => e.At).ToList();
        var restarted = events.Where(e => e.Reason == "InstanceRestarted").Select(e => e.Note.Split(' ')[1]).ToList();
        var switchovers = events.Count(e => e.Reason == "SwitchoverRequested");
        var replicas = pods.Select(p => p.Split('/')[0]).Where(p => p != primary).Order(StringComparer.Ordinal).ToList();
        var replicasFirst = restarted.Take(2).Order(StringComparer.Ordinal).SequenceEqual(replicas);
        // A parameter: the old primary's pod is restarted too when its demotion did not restart PostgreSQL with the new value.
        var primaryLast = restarted.Count == 3 && restarted[2] == primary;
        Check(replicasFirst && (image ? primaryLast : restarted.Count == 2 || primaryLast),
            $"rolling update ({what}): pods restarted in the order [{string.Join(", ", restarted)}], not the replicas {string.Join(" and ", replicas)} first and then{(image ? "" : ", if at all,")} the primary {primary}");
        Check(switchovers == 1, $"rolling update ({what}): {switchovers} switchovers requested, not 1");
        Console.WriteLine($"e2e-kube: rolling update ({what}): restarted pods {string.Join(", ", restarted)} and {switchovers} switchover in {clock.Elapsed.TotalSeconds:0.0} s; " +
            $"writes through {Cluster}-rw stopped for at most {gap:0.00} s; {Failures(writer, from, Stopwatch.GetTimestamp())}");
        if (gap > SlowGap)
        {
            Console.WriteLine($"e2e-kube: rolling update ({what}): the route to the primary as the API server saw it:{Environment.NewLine}  " +
                string.Join(Environment.NewLine + "  ", timeline.Between(from, Stopwatch.GetTimestamp())));
        }
    }

    /// <summary>True when a query answers <paramref name="expected"/> on every instance (each pod's PostgreSQL at its pod IP, as the superuser).</summary>
    private async Task<bool> EveryInstanceAsync(string sql, string expected, string password)
    {
        var ips = _kubectl.RunOrThrow(["get", "pods", "-l", InstancePods, "-o", "jsonpath={.items[*].status.podIP}"])
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (ips.Length != 3)
        {
            return false;
        }

        foreach (var ip in ips)
        {
            try
            {
                await using var connection = new NpgsqlConnection($"Host={ip};Port=5432;Username=postgres;Password={password};Database=postgres;SSL Mode=Require;Trust Server Certificate=true;Timeout=3;Command Timeout=5;Pooling=false");
                await connection.OpenAsync().ConfigureAwait(false);
                await using var command = new NpgsqlCommand(sql, connection);
                if ((string?)await command.ExecuteScalarAsync().ConfigureAwait(false) != expected)
                {
                    return false;
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// 6. Two operator replicas. The Lease holder killed (SIGKILL of its process, so the Lease is not released): a
    /// replica leads again (the killed one's container restarted by the node takes its own Lease back at once, as
    /// client-go's would, or the other after the Lease expires). The holder frozen (SIGSTOP, as a stalled node or a
    /// long pause): the other takes the Lease once it expires and reconciles; thawed, the old one must not
    /// write. After each, a change to the cluster is reconciled by exactly one replica.
    /// </summary>
    private async Task OperatorLeaderKilledAsync()
    {
        var leader = Holder();
        var pods = OperatorPods();
        if (pods.Count != 2 || !pods.ContainsKey(leader))
        {
            _failures.Add($"operator: expected two operator pods, one holding the Lease; found [{string.Join(", ", pods.Keys)}], holder '{leader}'");
            return;
        }

        var clock = Stopwatch.StartNew();
        Signal(OperatorProcess(pods[leader].Uid), "KILL");
        if (!await UntilAsync(async () => Holder() is var holder && pods.TryGetValue(holder, out var pod) && (await MetricsAsync(pod.Ip).ConfigureAwait(false))?.IsLeader == 1,
            TimeSpan.FromSeconds(60), "a replica leading again").ConfigureAwait(false))
        {
            _failures.Add($"operator: no replica led within 60 s of {leader}'s kill");
            return;
        }

        _figures["operator_killed_leading_again_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        Console.WriteLine($"e2e-kube: operator: {leader} killed (SIGKILL); {Holder()} leads after {clock.Elapsed.TotalSeconds:0.0} s");
        _kubectl.RunOrThrow(["-n", OperatorNamespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s"], timeout: TimeSpan.FromSeconds(140));
        await OneReconcilerAsync(pods, "after the kill").ConfigureAwait(false);

        leader = Holder();
        var other = pods.Keys.Single(p => p != leader);
        var frozen = OperatorProcess(pods[leader].Uid);
        var before = await MetricsAsync(pods[leader].Ip).ConfigureAwait(false);
        var otherBefore = (await MetricsAsync(pods[other].Ip).ConfigureAwait(false))?.Reconciles ?? 0;
        clock.Restart();
        Signal(frozen, "STOP");
        try
        {
            if (!await UntilAsync(() => Holder() == other, TimeSpan.FromSeconds(60), $"{other} holding the Lease").ConfigureAwait(false))
            {
                _failures.Add($"operator: {other} did not take the Lease within 60 s of {leader} being frozen");
                return;
            }

            _figures["operator_takeover_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
            Console.WriteLine($"e2e-kube: operator: {leader} frozen (SIGSTOP); {other} holds the Lease after {clock.Elapsed.TotalSeconds:0.0} s");
            Poke();
            Check(await UntilAsync(async () => (await MetricsAsync(pods[other].Ip).ConfigureAwait(false))?.Reconciles > otherBefore, TimeSpan.FromSeconds(60), $"{other} reconciling").ConfigureAwait(false),
                $"operator: {other} holds the Lease but did not reconcile within 60 s");
        }
        finally
        {
            Signal(frozen, "CONT");
        }

        // Thawed, the old leader finds its Lease gone by its own clock and steps down without writing (a reconcile
        // in flight when it froze may still end, its writes refused).
        Check(await UntilAsync(async () => (await MetricsAsync(pods[leader].Ip).ConfigureAwait(false))?.IsLeader == 0, TimeSpan.FromSeconds(60), $"{leader} stepping down").ConfigureAwait(false),
            $"operator: {leader}, thawed, did not say it is no longer the leader within 60 s");
        var after = await MetricsAsync(pods[leader].Ip).ConfigureAwait(false);
        Check(before is not null && after is not null && after.Value.Writes <= before.Value.Writes,
            $"operator: {leader} wrote after it was thawed without the Lease ({before?.Writes} -> {after?.Writes} writes; reconciles {before?.Reconciles} -> {after?.Reconciles})");
        await OneReconcilerAsync(pods, "after the freeze").ConfigureAwait(false);
    }

    /// <summary>A change to the cluster (an annotation) is reconciled by the Lease holder and by no other replica.</summary>
    private async Task OneReconcilerAsync(Dictionary<string, (string Uid, string Ip)> pods, string when)
    {
        var before = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (pod, (_, ip)) in pods)
        {
            before[pod] = (await MetricsAsync(ip).ConfigureAwait(false))?.Reconciles ?? double.NaN;
        }

        var holder = Holder();
        Poke();
        var reconciled = await UntilAsync(async () => (await MetricsAsync(pods[holder].Ip).ConfigureAwait(false))?.Reconciles > before[holder], TimeSpan.FromSeconds(60), $"{holder} reconciling the change").ConfigureAwait(false);
        Check(reconciled, $"operator {when}: the leader {holder} did not reconcile a change within 60 s");
        foreach (var (pod, (_, ip)) in pods.Where(p => p.Key != holder))
        {
            var metrics = await MetricsAsync(ip).ConfigureAwait(false);
            Check(metrics is { IsLeader: 0 } m && m.Reconciles == before[pod], $"operator {when}: {pod}, not the leader, reconciled or claims to lead ({before[pod]} -> {metrics?.Reconciles}, is_leader {metrics?.IsLeader})");
        }

        Console.WriteLine($"e2e-kube: operator {when}: a change reconciled by {holder} only");
    }

    private void Poke() => _kubectl.RunOrThrow(["annotate", "memorycluster", Cluster, $"e2e-kube/poked={DateTime.UtcNow.Ticks}", "--overwrite"]);

    /// <summary>The operator's own process in its pod (the CLI, below the container's unshare).</summary>
    private int OperatorProcess(string podUid)
    {
        var found = ProcessTree.Topmost(_cluster.Node.ContainerProcesses(podUid, "operator"), "memorycluster");
        return found.Count == 1 ? found[0].Pid : throw new InvalidOperationException($"pod {podUid}: {found.Count} operator processes, not 1");
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {pid} exited {kill.ExitCode}");
        }
    }

    private string Holder() => _kubectl.Run(["-n", OperatorNamespace, "get", "lease", "memorycluster-operator", "-o", "jsonpath={.spec.holderIdentity}"]).Stdout.Trim();

    private Dictionary<string, (string Uid, string Ip)> OperatorPods() =>
        _kubectl.RunOrThrow(["-n", OperatorNamespace, "get", "pods", "-o", """jsonpath={range .items[*]}{.metadata.name} {.metadata.uid} {.status.podIP}{"\n"}{end}"""])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' '))
            .Where(f => f.Length == 3)
            .ToDictionary(f => f[0], f => (f[1], f[2]), StringComparer.Ordinal);

    private readonly record struct OperatorMetrics(double Reconciles, double IsLeader, double Writes);

    /// <summary>An operator replica's reconciles (all results), is_leader gauge and writes, from its /metrics; null when it does not answer.</summary>
    private static async Task<OperatorMetrics?> MetricsAsync(string ip)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        string text;
        try
        {
            text = await http.GetStringAsync(new Uri($"http://{ip}:8080/metrics")).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }

        double reconciles = 0, leader = -1, writes = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("memorycluster_operator_reconciles_total", StringComparison.Ordinal))
            {
                reconciles += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("memorycluster_operator_writes_total", StringComparison.Ordinal))
            {
                writes += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("memorycluster_operator_is_leader", StringComparison.Ordinal))
            {
                leader = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return new OperatorMetrics(reconciles, leader, writes);
    }

    private static async Task<string?> ServerAddressAsync(string connectionString)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString + ";Pooling=false");
            await connection.OpenAsync().ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select host(inet_server_addr())", connection);
            return (string?)await command.ExecuteScalarAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The cluster's instance pods, as NAME/UID, in order.</summary>
    private List<string> Pods() =>
        [.. _kubectl.RunOrThrow(["get", "pods", "-l", InstancePods, "-o", """jsonpath={range .items[*]}{.metadata.name}/{.metadata.uid}{"\n"}{end}"""])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];

    private sealed record ClusterEvent(string Reason, string Note, DateTime At);

    /// <summary>
    /// The cluster's events.k8s.io Events (what the operator recorded about it). The scenarios' polls read through
    /// the in-process API client, not a kubectl process each (about 45 ms of CPU a start, ten a second while
    /// waiting, on the two cores the cluster under test shares); what the scenarios do goes through kubectl.
    /// </summary>
    private async Task<List<ClusterEvent>> EventsAsync()
    {
        var list = await _cluster.Client.ListAsync(ResourceTypes.Event, "default", null, _cancel).ConfigureAwait(false);
        return [.. list.Items
            .Where(e => e.Regarding?.Name == Cluster && e.Regarding.Kind == "MemoryCluster")
            .Select(e => new ClusterEvent(e.Reason ?? "", e.Note ?? "", e.Series?.LastObservedTime ?? e.EventTime ?? e.Metadata.CreationTimestamp ?? DateTime.UnixEpoch))];
    }

    private async Task<MemoryClusterStatus?> StatusAsync() =>
        (await _cluster.Client.GetAsync(ResourceTypes.MemoryCluster, "default", Cluster, _cancel).ConfigureAwait(false)).Status;

    private static Condition? Condition(MemoryClusterStatus? status, string type) => status?.Conditions?.FirstOrDefault(c => c.Type == type);

    /// <summary>What the gap was made of: the writer's failed attempts from the fault on, by reason, with when they ended.</summary>
    private static string Failures(AckedWriter writer, long from, long until)
    {
        var groups = writer.Failed.Where(f => f.At >= from && f.At <= until)
            .GroupBy(f => f.Reason.Length > 120 ? f.Reason[..120] : f.Reason)
            .Select(g => $"{g.Count()}x +{Seconds(g.First().At)}..+{Seconds(g.Last().At)} s: {g.Key}");
        var text = string.Join("; ", groups);
        return text.Length == 0 ? "no attempt failed" : "failed attempts: " + text;

        string Seconds(long at) => Stopwatch.GetElapsedTime(from, at).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture);
    }

    private async Task<(string Name, long Epoch)> PrimaryAsync() =>
        await StatusAsync().ConfigureAwait(false) is { } status ? (status.CurrentPrimary ?? "", status.Epoch ?? 0) : ("", 0);

    private void Check(bool ok, string failure)
    {
        if (!ok)
        {
            _failures.Add(failure);
            Console.WriteLine($"e2e-kube: FAILED: {failure}");
        }
    }

    private static string Manifest(string name, int instances) => $"""
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

    private Task<bool> UntilAsync(Func<bool> done, TimeSpan limit, string what) => UntilAsync(() => Task.FromResult(done()), limit, what);

    /// <summary>Polls every 100 ms until done or the limit; a stop (Ctrl-C, SIGTERM) ends the scenarios at once.</summary>
    private async Task<bool> UntilAsync(Func<Task<bool>> done, TimeSpan limit, string what)
    {
        var reached = await Poll.UntilAsync(done, limit, TimeSpan.FromMilliseconds(100), _cancel).ConfigureAwait(false);
        if (!reached)
        {
            Console.WriteLine($"e2e-kube: not within {limit.TotalSeconds:0} s: {what}");
        }

        return reached;
    }
}
