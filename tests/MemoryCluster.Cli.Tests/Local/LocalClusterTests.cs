using System.Diagnostics;
using MemoryCluster.Cli.Local;
using MemoryCluster.E2e;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.Cli.Tests.Local;

/// <summary>
/// The local cluster end to end: real instance managers, real PostgreSQL 15, real Raft over loopback TCP.
/// Each test brings its own cluster up in a temp folder and down again, even when it fails.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LocalClusterTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Three_instances_bootstrap_and_rows_written_on_the_primary_reach_every_replica()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "async");
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        await using (var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(60)))
        {
            Assert.True(await writer.WaitForAckedAsync(50, TimeSpan.FromSeconds(60)), $"only {writer.Acked.Count} writes were acknowledged\n{cluster.Logs()}");
            await writer.StopAsync();
            await WaitForRowsEverywhereAsync(cluster, writer.Acked.Count);
        }

        var statuses = await cluster.StatusAsync();
        Assert.Single(statuses, s => s.Status!.Role == InstanceRole.Primary);
        Assert.All(statuses, s => Assert.Equal(1UL, s.Status!.Epoch.Value));
        Assert.Equal(2, statuses.Count(s => s.Status is { Role: InstanceRole.Replica, Streaming: true }));

        // Every manager's /metrics is one valid Prometheus exposition, with PostgreSQL's own figures in it.
        foreach (var member in cluster.Layout.Members)
        {
            var text = await WaitForMetricsAsync(member, "memorycluster_pg_stats_up{instance_name=\"" + member.Name + "\"} 1");
            var (code, output) = await Promtool.CheckMetricsAsync(text);
            Assert.True(code == 0, $"promtool check metrics on {member.Name}'s /metrics: {output}\n{text}");
            foreach (var family in new[] { "memorycluster_pg_transactions_committed_total", "memorycluster_pg_backends", "memorycluster_pg_database_size_bytes", "memorycluster_pg_wal_generated_bytes_total", "memorycluster_raft_elections_won_total", "memorycluster_instance_lease_remaining_seconds" })
            {
                Assert.Contains($"# TYPE {family} ", text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Local_up_starts_the_compute_service_that_takes_writes_with_its_token_follows_the_primary_and_stops_with_down()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "quorum", compute: true);
        var env = cluster.Cli("local", "env").Stdout;
        var url = Export(env, "MEMORYCLUSTER_COMPUTE_URL");
        var token = (await File.ReadAllTextAsync(Export(env, "MEMORYCLUSTER_COMPUTE_TOKEN_FILE"))).Trim();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        using (var anonymous = await http.PostAsync("/v1/triples", JsonBody("""{"triples":[{"subject":"a","predicate":"p","object":"b"}]}""")))
        {
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using (var written = await http.PostAsync("/v1/triples", JsonBody("""{"triples":[{"subject":"alice","predicate":"worksAt","object":"acme"}]}""")))
        {
            Assert.True(written.StatusCode == System.Net.HttpStatusCode.Created, await written.Content.ReadAsStringAsync());
        }

        Assert.Contains("\"entity\":\"acme\"", await http.GetStringAsync("/v1/entities/alice/neighbors"), StringComparison.Ordinal);

        // The row is in PostgreSQL, on the primary, as the app user wrote it.
        await using (var sql = new Npgsql.NpgsqlConnection(cluster.ReadWrite))
        {
            await sql.OpenAsync();
            await using var count = new Npgsql.NpgsqlCommand("select count(*) from triples where subject = 'alice'", sql);
            Assert.Equal(1L, await count.ExecuteScalarAsync());
        }

        // Every `local up` prints where it is, with the connection strings.
        Assert.Contains($"compute:    {url} (HTTP API and MCP", cluster.Cli("local", "up").Stdout, StringComparison.Ordinal);
        Assert.Contains("compute:    ready, feed commit ", cluster.Cli("local", "status").Stdout, StringComparison.Ordinal);
        var compute = new LocalCompute(cluster.Layout);
        var pid = compute.RunningPid();
        Assert.NotNull(pid);
        Assert.Equal(0, cluster.Cli("local", "down").Code);
        Assert.False(Directory.Exists($"/proc/{pid}"), "the compute service still runs after local down");

        // Its clean stop left the snapshot the next `local up` starts from.
        Assert.True(File.Exists(Path.Combine(compute.SnapshotDirectory, MemoryCluster.Compute.Memory.MemorySnapshot.FileName)), "no compute snapshot after local down");
    }

    private static string Export(string env, string name) =>
        env.Split('\n').Single(l => l.StartsWith($"export {name}=", StringComparison.Ordinal))[$"export {name}=".Length..].Trim('\'');

    private static StringContent JsonBody(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    private static async Task<string> WaitForMetricsAsync(MemoryCluster.Instance.Peer member, string line)
    {
        var watch = Stopwatch.StartNew();
        var text = string.Empty;
        while (watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            text = await LocalCluster.Api.MetricsAsync(member.HttpBase, CancellationToken.None);
            if (text.Contains(line, StringComparison.Ordinal))
            {
                return text;
            }

            await Task.Delay(200);
        }

        Assert.Fail($"{member.Name}'s /metrics never showed '{line}':\n{text}");
        return text;
    }

    [Fact]
    public async Task Five_instances_bootstrap_in_quorum_mode_and_every_replica_gets_the_rows()
    {
        await using var cluster = await LocalClusterRun.UpAsync(5, "quorum");
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        await using var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(60));
        Assert.True(await writer.WaitForAckedAsync(50, TimeSpan.FromSeconds(60)), $"only {writer.Acked.Count} writes were acknowledged\n{cluster.Logs()}");
        await writer.StopAsync();
        await WaitForRowsEverywhereAsync(cluster, writer.Acked.Count);

        // Quorum commit: the primary waits for ANY 2 of its 4 standbys.
        var primary = (await cluster.PrimaryAsync()).Name;
        await using var connection = new Npgsql.NpgsqlConnection(cluster.Direct(primary));
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("show synchronous_standby_names", connection);
        Assert.StartsWith("ANY 2 (", (string)(await command.ExecuteScalarAsync())!, StringComparison.Ordinal);

        // And it proves k = 2 in force, so that a failover counts with it: every member shows quorumK 2.
        await WaitForQuorumKAsync(cluster, 2);
    }

    /// <summary>Waits (at most 60 s) until every member's /status shows the proven quorum k.</summary>
    private static async Task WaitForQuorumKAsync(LocalClusterRun cluster, int k)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var statuses = await cluster.StatusAsync();
            if (statuses.All(s => s.Status?.QuorumK == k))
            {
                return;
            }

            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"quorumK never became {k} everywhere: {string.Join(", ", statuses.Select(s => $"{s.Member.Name}={s.Status?.QuorumK}"))}\n{cluster.Logs()}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Ten_switchovers_under_a_writer_lose_no_acknowledged_row()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "async");
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        await using var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(5));
        var (first, epoch) = await cluster.PrimaryAsync();
        var expected = new List<(ulong Epoch, string? From, string To, string Reason)> { (1, null, first, "bootstrap") };
        for (var i = 0; i < 10; i++)
        {
            var (current, _) = await cluster.PrimaryAsync();
            var target = cluster.Layout.Members.Select(m => m.Name).Where(n => n != current).ElementAt(i % 2);
            var (code, stdout, stderr) = cluster.Cli("local", "switchover", "--to", target);
            Assert.True(code == 0, $"switchover {i + 1} to {target} failed:\n{stdout}\n{stderr}\n{cluster.Logs()}");
            var (now, newEpoch) = await cluster.PrimaryAsync();
            Assert.Equal(target, now);
            Assert.Equal(epoch + 1, newEpoch);
            expected.Add((newEpoch, current, target, "switchover"));
            epoch = newEpoch;
        }

        // `local history`: every change of primary from the control state, in order, with its reason and time.
        var history = cluster.Cli("local", "history", "-o", "json");
        Assert.True(history.Code == 0, history.Stderr);
        using (var document = System.Text.Json.JsonDocument.Parse(history.Stdout))
        {
            var changes = document.RootElement.GetProperty("changes").EnumerateArray().ToList();
            Assert.Equal(
                expected,
                changes.Select(c => (c.GetProperty("epoch").GetUInt64(), c.GetProperty("from").GetString(), c.GetProperty("to").GetString()!, c.GetProperty("reason").GetString()!)).ToList());
            var times = changes.Select(c => c.GetProperty("at").GetDateTimeOffset()).ToList();
            Assert.Equal(times.Order(), times);
            Assert.All(times, t => Assert.True(Math.Abs((DateTimeOffset.UtcNow - t).TotalMinutes) < 10, $"{t} is not a time of this run"));
        }

        var table = cluster.Cli("local", "history");
        Assert.True(table.Code == 0, table.Stderr);
        Assert.Matches($@"(?m)^{epoch}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}\s+{expected[^1].From}\s+{expected[^1].To}\s+switchover$", table.Stdout);

        await writer.StopAsync();
        var acked = writer.Acked;
        Assert.True(acked.Count > 100, $"only {acked.Count} writes were acknowledged across 10 switchovers");
        var primary = (await cluster.PrimaryAsync()).Name;
        var present = await cluster.CountAsync(primary, $"select count(*) from writes where id = any(array[{string.Join(',', acked)}]::bigint[])");
        Assert.Equal(acked.Count, present);
        await cluster.WaitHealthyAsync();

        // Every member keeps one slot per other member, so whichever is promoted next can serve the others at once; on
        // a standby they are advanced as it replays (every 16 MiB), so they never hold back WAL without end.
        const string heldSlots = """
            select count(*) from pg_replication_slots
            where restart_lsn is not null
              and pg_wal_lsn_diff(
                    case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end,
                    restart_lsn) < 32 * 1024 * 1024
            """;
        foreach (var member in cluster.Layout.Members)
        {
            var waited = Stopwatch.StartNew();
            long slots, near;
            while (true)
            {
                slots = await cluster.CountAsync(member.Name, "select count(*) from pg_replication_slots");
                near = await cluster.CountAsync(member.Name, heldSlots);
                if ((slots == 2 && near == 2) || waited.Elapsed >= TimeSpan.FromSeconds(60))
                {
                    break;
                }

                await Task.Delay(200);
            }

            Assert.True(slots == 2 && near == 2, $"{member.Name} has {slots} replication slots, {near} of them within 32 MiB of its position (primary {primary})\n{cluster.Logs()}");
        }
    }

    [Fact]
    public async Task Stopped_replica_catches_up_switchover_to_it_is_refused_and_a_full_restart_keeps_primary_epoch_and_data()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "async");
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        var (primary, epoch) = await cluster.PrimaryAsync();
        var replica = cluster.Layout.Members.First(m => m.Name != primary);

        // Stop one replica's manager (it stops its PostgreSQL cleanly), and write while it is away.
        Assert.Equal(0, cluster.Cli("local", "kill", replica.Name, "--signal", "TERM").Code);
        var layoutCluster = new LocalCluster(cluster.Layout, TextWriter.Null);
        var stopped = Stopwatch.StartNew();
        while (layoutCluster.RunningPid(replica) is not null && stopped.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100);
        }

        await using (var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(60)))
        {
            Assert.True(await writer.WaitForAckedAsync(50, TimeSpan.FromSeconds(60)), $"only {writer.Acked.Count} writes were acknowledged while a replica was away");
        }

        // A switchover to the stopped replica is refused with the reason, and changes nothing.
        var (code, _, stderr) = cluster.Cli("local", "switchover", "--to", replica.Name);
        Assert.Equal(1, code);
        Assert.Contains("switchover refused", stderr, StringComparison.Ordinal);
        Assert.Equal((primary, epoch), await cluster.PrimaryAsync());

        // The managers obey only requests signed with the cluster key: unsigned or wrongly signed, a switchover to a
        // streaming replica is refused (401, 403) and changes nothing.
        var streaming = cluster.Layout.Members.First(m => m.Name != primary && m.Name != replica.Name);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var managers = cluster.Layout.Members.Where(m => m.Name != replica.Name).ToList();
        foreach (var client in new[] { new InstanceApiClient(http), new InstanceApiClient(http, new byte[32]) })
        {
            foreach (var member in managers)
            {
                var refused = await client.SwitchoverAsync(member.HttpBase, streaming.Name, CancellationToken.None);
                Assert.False(refused.Accepted, refused.Message);
                Assert.Contains("nothing was changed", refused.Message, StringComparison.Ordinal);
            }
        }

        using (var raw = await http.PostAsync(new Uri(managers[0].HttpBase, "switchover"), new StringContent("{\"to\": \"" + streaming.Name + "\"}")))
        {
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, raw.StatusCode);
        }

        Assert.Equal((primary, epoch), await cluster.PrimaryAsync());
        Assert.All(await cluster.StatusAsync(), s => Assert.True(s.Status is null || s.Status.PendingSwitchover is null, $"{s.Member.Name} shows a pending switchover"));

        // `local up` starts the missing manager; the replica catches up.
        Assert.Equal(0, cluster.Cli("local", "up").Code);
        var rows = await cluster.CountAsync(primary);
        Assert.True(rows >= 50, $"{rows} rows on the primary");
        await WaitForRowsEverywhereAsync(cluster, rows);

        // The whole cluster stopped and started keeps its primary, epoch and data.
        Assert.Equal(0, cluster.Cli("local", "down").Code);
        Assert.Equal(0, cluster.Cli("local", "up").Code);
        var restarted = await cluster.PrimaryAsync();
        Assert.True((primary, epoch) == restarted, $"primary {primary} at epoch {epoch} before the restart, {restarted.Name} at epoch {restarted.Epoch} after\n{cluster.Logs()}");
        Assert.Equal(rows, await cluster.CountAsync(primary));

        // And `local up` on a cluster that is up changes nothing.
        var again = cluster.Cli("local", "up");
        Assert.Equal(0, again.Code);
        Assert.Contains("already up; nothing changed", again.Stdout, StringComparison.Ordinal);

        // It prints how to connect again, and `local env` prints it as shell exports that work.
        Assert.Contains($"read-write: {cluster.Layout.ConnectionString(readOnly: false)}", again.Stdout, StringComparison.Ordinal);
        Assert.Contains("mode:       async: ", again.Stdout, StringComparison.Ordinal);
        var env = cluster.Cli("local", "env");
        Assert.Equal(0, env.Code);
        Assert.Contains($"export MEMORYCLUSTER_URL='{cluster.Layout.ConnectionString(readOnly: false)}'", env.Stdout, StringComparison.Ordinal);
        Assert.Contains($"export PGPASSFILE='{cluster.Layout.PgPassFile}'", env.Stdout, StringComparison.Ordinal);
        const string psql = "psql";
        var shell = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", ["-c", $"{env.Stdout}\n'{psql}' \"$MEMORYCLUSTER_URL\" -Atc 'select pg_is_in_recovery()'"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var answer = await shell.StandardOutput.ReadToEndAsync();
        var error = await shell.StandardError.ReadToEndAsync();
        await shell.WaitForExitAsync();
        Assert.True(shell.ExitCode == 0 && answer.Trim() == "f", $"psql with the exported URL and PGPASSFILE: exit {shell.ExitCode}, '{answer}' {error}");
    }

    [Fact]
    public async Task Pause_stops_automatic_failover_of_a_killed_primary_and_a_forced_failover_replaces_it_and_every_member_shows_it()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "async");

        // A healthy primary is not failed over: switchover is the verb.
        var healthy = cluster.Cli("local", "failover");
        Assert.Equal(1, healthy.Code);
        Assert.Contains("`switchover` is the verb", healthy.Stderr, StringComparison.Ordinal);

        var pause = cluster.Cli("local", "pause");
        Assert.True(pause.Code == 0, pause.Stderr);
        Assert.Contains("maintenance mode on: automatic failover is paused", pause.Stdout, StringComparison.Ordinal);
        Assert.Contains("maintenance mode: automatic failover is paused", pause.Stdout, StringComparison.Ordinal);
        Assert.All(await cluster.StatusAsync(), s => Assert.True(s.Status!.Maintenance, $"{s.Member.Name} does not show maintenance mode"));
        Assert.Contains("already on", cluster.Cli("local", "pause").Stdout, StringComparison.Ordinal);

        // `local status -o json|yaml`: every manager's whole /status, with the verdict.
        var json = cluster.Cli("local", "status", "-o", "json");
        Assert.True(json.Code == 0, json.Stderr);
        using (var document = System.Text.Json.JsonDocument.Parse(json.Stdout))
        {
            Assert.True(document.RootElement.GetProperty("healthy").GetBoolean());
            var members = document.RootElement.GetProperty("members").EnumerateArray().ToList();
            Assert.Equal(cluster.Layout.Members.Select(m => m.Name), members.Select(m => m.GetProperty("name").GetString()));
            Assert.All(members, m => Assert.True(m.GetProperty("status").GetProperty("maintenance").GetBoolean()));
            Assert.Single(members, m => m.GetProperty("status").GetProperty("role").GetString() == "primary");
        }

        var yaml = cluster.Cli("local", "status", "--output", "yaml");
        Assert.True(yaml.Code == 0, yaml.Stderr);
        Assert.Contains("healthy: true", yaml.Stdout, StringComparison.Ordinal);
        Assert.Contains("maintenance: true", yaml.Stdout, StringComparison.Ordinal);
        // `--watch` prints again every 2 s, under the time and the verdict, until interrupted (exit 0).
        var watched = cluster.CliUntil(o => System.Text.RegularExpressions.Regex.Matches(o, @"(?m)^\d\d:\d\d:\d\d  healthy: primary mc-\d ready").Count >= 2, "local", "status", "--watch");
        Assert.True(watched.Code == 0, $"exit {watched.Code} after SIGINT (130: not stopped within System.CommandLine's 2 s)\n{watched.Stderr}");
        Assert.True(System.Text.RegularExpressions.Regex.Matches(watched.Stdout, "(?m)^NAME +ROLE").Count >= 2, watched.Stdout);
        Assert.Contains("maintenance mode: automatic failover is paused", watched.Stdout, StringComparison.Ordinal);

        // `local logs -f` prints the log and goes on until interrupted.
        var followed = cluster.CliUntil(o => o.Contains("maintenance mode on", StringComparison.Ordinal), "local", "logs", cluster.Layout.Members[0].Name, "-f");
        Assert.True(followed.Code == 0, $"exit {followed.Code} after SIGINT (130: not stopped within System.CommandLine's 2 s)\n{followed.Stderr}");

        var bad = cluster.Cli("local", "status", "-o", "xml");
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("xml", bad.Stderr, StringComparison.Ordinal);

        // Every manager logs it; `local logs NAME` shows the log readable, PostgreSQL's lines included.
        var logs = cluster.Cli("local", "logs", cluster.Layout.Members[0].Name);
        Assert.True(logs.Code == 0, logs.Stderr);
        Assert.Matches(@"\d\d:\d\d:\d\d\.\d{3} WARN NodeDriver: maintenance mode on", logs.Stdout);
        Assert.Matches(@"INFO PostgresSupervisor: postgres: .* LOG: ", logs.Stdout);
        Assert.StartsWith("{", cluster.Cli("local", "logs", cluster.Layout.Members[0].Name, "--json").Stdout, StringComparison.Ordinal);
        var unknown = cluster.Cli("local", "logs", "mc-9");
        Assert.Equal(2, unknown.Code);
        Assert.Contains("no instance is named 'mc-9'", unknown.Stderr, StringComparison.Ordinal);

        // The primary's manager killed (its PostgreSQL fenced by the watchdog): the Raft leader says it is paused.
        var (primary, epoch) = await cluster.PrimaryAsync();
        Assert.Equal(0, cluster.Cli("local", "kill", primary, "--signal", "KILL").Code);
        var watch = Stopwatch.StartNew();
        string? paused = null;
        while (paused is null)
        {
            paused = (await cluster.StatusAsync()).Select(s => s.Status?.Failover).FirstOrDefault(f => f?.Contains("maintenance mode is on", StringComparison.Ordinal) == true);
            Assert.True(paused is not null || watch.Elapsed < TimeSpan.FromSeconds(60), $"no leader said failover is paused\n{LocalCluster.Table(await cluster.StatusAsync())}\n{cluster.Logs()}");
            await Task.Delay(100);
        }

        Assert.All(await cluster.StatusAsync(), s => Assert.True(s.Status is null || s.Status.Epoch.Value == epoch, $"{s.Member.Name} is at epoch {s.Status?.Epoch} while paused"));

        // A forced failover while paused: refused to the old primary and to a stranger, taken to a replica.
        var toPrimary = cluster.Cli("local", "failover", "--to", primary);
        Assert.Equal(1, toPrimary.Code);
        Assert.Contains($"{primary} is the primary", toPrimary.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, cluster.Cli("local", "failover", "--to", "mc-9").Code);
        var target = cluster.Layout.Members.First(m => m.Name != primary).Name;
        var forced = cluster.Cli("local", "failover", "--to", target);
        Assert.True(forced.Code == 0, $"{forced.Stdout}\n{forced.Stderr}\n{cluster.Logs()}");
        Assert.Contains($"{target} is primary after", forced.Stdout, StringComparison.Ordinal);
        var (next, nextEpoch) = await cluster.PrimaryAsync();
        Assert.Equal(target, next);
        Assert.Equal(epoch + 1, nextEpoch);

        // The history says it was a failover, from the killed primary.
        var history = cluster.Cli("local", "history");
        Assert.True(history.Code == 0, history.Stderr);
        Assert.Matches($@"(?m)^{nextEpoch}\s+\S+ \S+\s+{primary}\s+{target}\s+failover$", history.Stdout);

        var resume = cluster.Cli("local", "resume");
        Assert.True(resume.Code == 0, resume.Stderr);
        Assert.Contains("maintenance mode off", resume.Stdout, StringComparison.Ordinal);

        // The killed manager, started again, follows the new primary.
        Assert.Equal(0, cluster.Cli("local", "up").Code);
        await cluster.WaitHealthyAsync();
        Assert.All(await cluster.StatusAsync(), s => Assert.False(s.Status!.Maintenance));

        // `local reinit`: a replica is rebuilt from the primary (its old data kept aside) and has the rows; the
        // primary is refused.
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        await using (var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(60)))
        {
            Assert.True(await writer.WaitForAckedAsync(20, TimeSpan.FromSeconds(60)), "no writes before the reinit");
        }

        var (now, _) = await cluster.PrimaryAsync();
        var refused = cluster.Cli("local", "reinit", now);
        Assert.Equal(1, refused.Code);
        Assert.Contains("is the primary", refused.Stderr, StringComparison.Ordinal);
        var replica = cluster.Layout.Members.First(m => m.Name != now).Name;
        // Its own bound below the harness's 180 s: a reinit that does not finish prints the table and says why.
        var reinit = cluster.Cli("local", "reinit", replica, "--timeout", "150");
        Assert.True(reinit.Code == 0, $"{reinit.Stdout}\n{reinit.Stderr}\n{cluster.Logs()}");
        Assert.Contains($"{replica} streams again", reinit.Stdout, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(cluster.Dir, replica, "pgdata.reinit.1")));
        await WaitForRowsEverywhereAsync(cluster, await cluster.CountAsync(now));
    }

    [Fact]
    public async Task Sigterm_of_the_primarys_manager_hands_the_primary_over_by_switchover_with_a_short_write_gap_and_no_lost_row()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "async");
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        await using var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(3));
        Assert.True(await writer.WaitForAckedAsync(50, TimeSpan.FromSeconds(60)), $"only {writer.Acked.Count} writes were acknowledged before the stop");
        var (primary, epoch) = await cluster.PrimaryAsync();
        var old = cluster.Layout.Members.Single(m => m.Name == primary);
        var layoutCluster = new LocalCluster(cluster.Layout, TextWriter.Null);
        var pid = layoutCluster.RunningPid(old);

        var stoppedAt = Stopwatch.GetTimestamp();
        Assert.Equal(0, cluster.Cli("local", "kill", primary, "--signal", "TERM").Code);

        // Another member becomes primary at the next epoch, while the old manager waits for it before stopping.
        var watch = Stopwatch.StartNew();
        (string Name, ulong Epoch)? next = null;
        while (next is null && watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            var now = (await cluster.StatusAsync()).FirstOrDefault(s => s.Status is { Role: InstanceRole.Primary, Ready: true } && s.Member.Name != primary && s.Status.Epoch.Value > epoch);
            next = now.Status is null ? null : (now.Member.Name, now.Status.Epoch.Value);
            await Task.Delay(50);
        }

        Assert.True(next is not null, $"no other primary within 60 s of SIGTERM to {primary}'s manager\n{LocalCluster.Table(await cluster.StatusAsync())}\n{cluster.Logs()}");
        Assert.Equal(epoch + 1, next.Value.Epoch);

        // The old manager then stops (well before its 20 s bound) and writes go on on the new primary.
        while (pid is { } p && Directory.Exists($"/proc/{p}") && watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(50);
        }

        var exited = Stopwatch.GetElapsedTime(stoppedAt);
        Assert.True(pid is null || !Directory.Exists($"/proc/{pid}"), $"{primary}'s manager still runs {exited.TotalSeconds:0.0} s after SIGTERM\n{cluster.Logs()}");
        var during = writer.Acked.Count;
        Assert.True(await writer.WaitForAckedAsync(during + 50, TimeSpan.FromSeconds(60)), $"writes did not resume after the hand-over\n{cluster.Logs()}");
        await writer.StopAsync();
        var gap = writer.LongestGap(stoppedAt, Stopwatch.GetTimestamp());
        output.WriteLine($"SIGTERM to {primary}'s manager: {next.Value.Name} primary at epoch {next.Value.Epoch}; the manager exited after {exited.TotalSeconds:0.00} s; longest write gap {gap.TotalSeconds:0.00} s");

        // A switchover, not a failover: the old primary asked for it on stop and handed over once the target had its
        // final WAL; no leader failed over. The gap stays well under a lease-based failover (3.5 s without writes).
        var log = File.ReadAllText(cluster.Layout.LogFile(old));
        var asked = $"this manager is stopping while primary: switchover to {next.Value.Name} requested at epoch {epoch}";
        Assert.True(log.Contains(asked, StringComparison.Ordinal), $"{primary}'s log lacks \"{asked}\"\n{cluster.Logs()}");
        Assert.Contains($"switchover: {next.Value.Name} has received the final WAL record", log, StringComparison.Ordinal);
        Assert.All(cluster.Layout.Members, m => Assert.DoesNotContain($"failover from epoch {epoch}", File.ReadAllText(cluster.Layout.LogFile(m)), StringComparison.Ordinal));
        Assert.True(gap < TimeSpan.FromSeconds(3), $"longest write gap {gap.TotalSeconds:0.00} s\n{cluster.Logs()}");

        // No acknowledged row is lost, and the old member comes back as a replica.
        var acked = writer.Acked;
        Assert.Equal(acked.Count, await cluster.CountAsync(next.Value.Name, $"select count(*) from writes where id = any(array[{string.Join(',', acked)}]::bigint[])"));
        Assert.Equal(0, cluster.Cli("local", "up").Code);
        await cluster.WaitHealthyAsync();
        Assert.Equal(next.Value, await cluster.PrimaryAsync());
    }

    [Fact]
    public async Task Quorum_cluster_grows_to_five_and_shrinks_to_three_through_the_managers_under_a_writer_with_no_failover_and_no_lost_row()
    {
        await using var cluster = await LocalClusterRun.UpAsync(3, "quorum");
        await AckedWriter.CreateTableAsync(cluster.ReadWrite);
        var (_, epoch) = await cluster.PrimaryAsync();
        await using var writer = new AckedWriter(cluster.ReadWrite, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(3));
        Assert.True(await writer.WaitForAckedAsync(30, TimeSpan.FromSeconds(30)), $"only {writer.Acked.Count} writes were acknowledged before scaling");

        // Membership changes are signed like a switchover: unsigned, refused and nothing changes.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var first = cluster.Layout.Members[0];
        var unsigned = await new InstanceApiClient(http).AddMemberAsync(first.HttpBase, new AddMemberRequest(9, "mc-9", "127.0.0.1", 1, 2, 3), CancellationToken.None);
        Assert.False(unsigned.Accepted, unsigned.Message);
        Assert.False((await new InstanceApiClient(http).RemoveMemberAsync(first.HttpBase, 3, CancellationToken.None)).Accepted);
        Assert.Equal(3, (await LocalCluster.Api.MembersAsync(first.HttpBase, CancellationToken.None)).Members.Count);

        var grow = cluster.Cli("local", "scale", "--instances", "5");
        Assert.True(grow.Code == 0, $"scale to 5 failed:\n{grow.Stdout}\n{grow.Stderr}\n{cluster.Logs()}");
        var members = await LocalCluster.Api.MembersAsync(first.HttpBase, CancellationToken.None);
        Assert.Equal([1UL, 2, 3, 4, 5], members.Members.Select(m => m.Id));
        Assert.All(members.Members, m => Assert.True(m.Voter, $"{m.Name} is not a voter"));
        Assert.Equal(2, members.SyncStandbys);
        var (primary, _) = await cluster.PrimaryAsync();
        Assert.StartsWith("ANY 2 (", await SynchronousStandbyNamesAsync(cluster, primary, "ANY 2 ("), StringComparison.Ordinal);

        // k grew from 1 to 2: the primary proves it (two standbys flushed past a position read after the reload).
        await WaitForQuorumKAsync(cluster, 2);
        var during = writer.Acked.Count;

        var shrink = cluster.Cli("local", "scale", "--instances", "3");
        Assert.True(shrink.Code == 0, $"scale to 3 failed:\n{shrink.Stdout}\n{shrink.Stderr}\n{cluster.Logs()}");
        Assert.Contains($"its data is kept in {Path.Combine(cluster.Dir, "mc-5")}", shrink.Stdout, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(cluster.Dir, "mc-4", "pgdata")));
        Assert.True(await writer.WaitForAckedAsync(during + 20, TimeSpan.FromSeconds(30)), "writes stopped after scaling");
        await writer.StopAsync();

        members = await LocalCluster.Api.MembersAsync(first.HttpBase, CancellationToken.None);
        Assert.Equal([1UL, 2, 3], members.Members.Select(m => m.Id));
        Assert.Equal(1, members.SyncStandbys);
        var statuses = await cluster.StatusAsync();
        Assert.Equal(3, statuses.Count);
        Assert.Single(statuses, s => s.Status is { Role: InstanceRole.Primary, Ready: true });
        Assert.Equal(2, statuses.Count(s => s.Status is { Role: InstanceRole.Replica, Streaming: true }));
        Assert.All(statuses, s => Assert.Equal(3, s.Status!.Raft.Members.Count));

        // Two standbys left: nothing was proven of the three left until the primary proved ANY 1 of them in force.
        await WaitForQuorumKAsync(cluster, 1);

        // No failover: the same epoch throughout, and every acknowledged row on the final primary.
        var (final, finalEpoch) = await cluster.PrimaryAsync();
        Assert.Equal(epoch, finalEpoch);
        Assert.StartsWith("ANY 1 (", await SynchronousStandbyNamesAsync(cluster, final, "ANY 1 ("), StringComparison.Ordinal);
        var acked = writer.Acked;
        Assert.True(acked.Count > during, $"{acked.Count} writes acknowledged, {during} before shrinking");
        Assert.Equal(acked.Count, await cluster.CountAsync(final, $"select count(*) from writes where id = any(array[{string.Join(',', acked)}]::bigint[])"));
    }

    /// <summary>The primary's synchronous_standby_names, once it starts with <paramref name="expected"/> (a reload is asynchronous) or after 10 s.</summary>
    private static async Task<string> SynchronousStandbyNamesAsync(LocalClusterRun cluster, string member, string expected)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            await using var connection = new Npgsql.NpgsqlConnection(cluster.Direct(member));
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand("show synchronous_standby_names", connection);
            var names = (string)(await command.ExecuteScalarAsync())!;
            if (names.StartsWith(expected, StringComparison.Ordinal) || watch.Elapsed > TimeSpan.FromSeconds(10))
            {
                return names;
            }

            await Task.Delay(100);
        }
    }

    private static async Task WaitForRowsEverywhereAsync(LocalClusterRun cluster, long expected)
    {
        var deadline = Stopwatch.StartNew();
        foreach (var member in cluster.Layout.Members)
        {
            long count = -1;
            while (deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                try
                {
                    count = await cluster.CountAsync(member.Name);
                }
                catch (Npgsql.NpgsqlException)
                {
                    // Not accepting connections at this moment (a busy machine): the condition is waited for, not assumed.
                    count = -1;
                }

                if (count >= expected)
                {
                    break;
                }

                await Task.Delay(100);
            }

            Assert.True(count >= expected, $"{member.Name} has {count} of {expected} rows\n{cluster.Logs()}");
        }
    }
}
