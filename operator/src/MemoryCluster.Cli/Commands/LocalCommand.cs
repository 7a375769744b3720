using System.CommandLine;
using System.Diagnostics;
using MemoryCluster.Api;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.Cli.Commands;

/// <summary><c>memorycluster local</c>: a cluster of instance managers on this machine, without Kubernetes.</summary>
internal static class LocalCommand
{
    private static readonly Option<string> DirOption = new("--dir")
    {
        Description = "Folder of the local cluster (data, logs, secrets).",
        DefaultValueFactory = _ => ".memorycluster",
        Recursive = true,
    };

    public static Command Create()
    {
        var command = new Command("local", "Run a cluster of instance managers on this machine, without Kubernetes.") { DirOption };
        command.Add(Up());
        command.Add(Status());
        command.Add(History());
        command.Add(Env());
        command.Add(Logs());
        command.Add(Psql());
        command.Add(Switchover());
        command.Add(Failover());
        command.Add(Scale());
        command.Add(MaintenanceCommand("pause", on: true, "Maintenance mode: pause automatic failover (a failed primary is not replaced until `local resume`; switchovers still work)."));
        command.Add(MaintenanceCommand("resume", on: false, "Leave maintenance mode: automatic failover resumes."));
        command.Add(Reinit());
        command.Add(KillCommand());
        command.Add(LinkCommand("isolate", "Cut one instance's network link (clusters made with --netns; fault injection).", up: false));
        command.Add(LinkCommand("heal", "Restore one instance's network link cut by `local isolate`.", up: true));
        command.Add(Down());
        return command;
    }

    private static string Dir(ParseResult result) => Path.GetFullPath(result.GetValue(DirOption)!);

    private static LocalCluster? Existing(ParseResult result)
    {
        var layout = LocalLayout.Load(Dir(result));
        if (layout is null)
        {
            Console.Error.WriteLine($"no local cluster in {Dir(result)}; start one with `memorycluster local up`");
            return null;
        }

        return new LocalCluster(layout, Console.Out);
    }

    private static Command Up()
    {
        var instances = new Option<int>("--instances") { Description = "3 or 5.", DefaultValueFactory = _ => 3 };
        var mode = new Option<string>("--mode") { Description = "async or quorum.", DefaultValueFactory = _ => ReplicationModes.Async };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for a healthy cluster.", DefaultValueFactory = _ => 120 };
        var netns = new Option<bool>("--netns")
        {
            Description = "On creation: run each member in its own network namespace, on its own address in a 10.213.X.0/24 subnet (root only; for partition tests).",
        };
        var noCompute = new Option<bool>("--no-compute") { Description = "Run this cluster without the compute service (remembered for later `local up`)." };
        var command = new Command("up", "Start the managers (creating the cluster on first use) and the compute service, and wait until they are healthy.") { instances, mode, timeout, netns, noCompute };
        command.SetAction(async (result, ct) =>
        {
            var dir = Dir(result);
            var layout = LocalLayout.Load(dir);
            if (layout is null)
            {
                var n = result.GetValue(instances);
                var m = result.GetValue(mode)!;
                if (n is not (3 or 5))
                {
                    Console.Error.WriteLine($"--instances: must be 3 or 5 (2-node clusters cannot hold a safe majority), not {n}");
                    return 2;
                }

                if (m is not (ReplicationModes.Async or ReplicationModes.Quorum))
                {
                    Console.Error.WriteLine($"--mode: must be async or quorum, not '{m}'");
                    return 2;
                }

                if (result.GetValue(netns) && Environment.UserName != "root")
                {
                    Console.Error.WriteLine("--netns: network namespaces need root");
                    return 2;
                }

                Directory.CreateDirectory(dir);

                // The cluster's folder is ours; PostgreSQL, run as another user, must be able to pass through it.
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
                var network = result.GetValue(netns) ? LocalNetwork.ChooseFree() : null;
                layout = LocalLayout.Create(dir, n, m, network);
                Console.Out.WriteLine($"created a {n}-instance {m} cluster in {dir}" + (network is null ? string.Empty : $", one network namespace per member in {network.Subnet}"));
            }
            else if (result.GetResult(instances) is { Implicit: false } && result.GetValue(instances) != layout.Members.Count)
            {
                Console.Error.WriteLine($"the cluster in {dir} has {layout.Members.Count} instances; changing that is not supported by `local up` (use --purge with `local down` first)");
                return 2;
            }

            var cluster = new LocalCluster(layout, Console.Out);
            var compute = new LocalCompute(layout);
            if (result.GetValue(noCompute))
            {
                compute.Disable();
            }

            var withCompute = compute.Enabled;
            if (layout.Members.All(m => cluster.RunningPid(m) is not null) && (!withCompute || compute.RunningPid() is not null))
            {
                Console.Out.WriteLine($"the cluster in {dir} is already up; nothing changed");
                Console.Out.Write(LocalCluster.Table(await cluster.StatusAsync(ct).ConfigureAwait(false)));
                Console.Out.WriteLine();
                Console.Out.Write(HowToConnect(layout, result.GetValue(DirOption)!));
                return 0;
            }

            cluster.StartManagers();
            Console.Out.WriteLine($"started {layout.Members.Count} instance managers; waiting for a primary and streaming replicas");
            var watch = Stopwatch.StartNew();
            var healthy = await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(result.GetValue(timeout)), ct).ConfigureAwait(false);
            Console.Out.Write(LocalCluster.Table(await cluster.StatusAsync(ct).ConfigureAwait(false)));
            if (!healthy)
            {
                Console.Error.WriteLine($"the cluster did not become healthy within {result.GetValue(timeout)} s; logs: {dir}/*/manager.log");
                return 1;
            }

            Console.Out.WriteLine($"healthy after {watch.Elapsed.TotalSeconds:0.0} s");
            if (withCompute)
            {
                compute.Start();
                if (!await compute.WaitReadyAsync(TimeSpan.FromSeconds(result.GetValue(timeout)), ct).ConfigureAwait(false))
                {
                    Console.Error.WriteLine(compute.RunningPid() is null
                        ? $"the compute service exited before it was ready; log: {compute.LogFile}, ending:"
                        : $"the compute service did not become ready within {result.GetValue(timeout)} s; log: {compute.LogFile}, ending:");
                    foreach (var line in compute.LogTail(8))
                    {
                        Console.Error.WriteLine("  " + line);
                    }

                    return 1;
                }

                Console.Out.WriteLine($"compute service ready at {compute.Url}");
            }

            Console.Out.WriteLine();
            Console.Out.Write(HowToConnect(layout, result.GetValue(DirOption)!));
            return 0;
        });
        return command;
    }

    /// <summary>The connection strings, the password file and what the mode guarantees: printed by every `local up`.</summary>
    private static string HowToConnect(LocalLayout layout, string dirArgument) =>
        $"read-write: {layout.ConnectionString(readOnly: false)}\n" +
        $"read-only:  {layout.ConnectionString(readOnly: true)}\n" +
        $"password:   export PGPASSFILE={layout.PgPassFile}   (or `memorycluster local psql --dir {dirArgument}`; `memorycluster local env` prints these again)\n" +
        (new LocalCompute(layout) is { Url: { } url } compute && compute.RunningPid() is not null
            ? $"compute:    {url} (HTTP API and MCP at {url}mcp; writes need the token in {compute.TokenFile})\n"
            : string.Empty) +
        $"mode:       {ModeGuarantee(layout.Mode)}\n";

    /// <summary>What a mode promises on failover, in one line (README, "Replication modes").</summary>
    internal static string ModeGuarantee(string mode) => mode == ReplicationModes.Quorum
        ? "quorum: a commit is acknowledged once a majority of the instances has it; a failover never loses one"
        : "async: a commit is acknowledged by the primary alone; a failover can lose the last ones acknowledged before it (choose `--mode quorum` when creating the cluster to never lose one)";

    private static Command Env()
    {
        var command = new Command("env", "Print the connection URIs and PGPASSFILE as shell exports: eval \"$(memorycluster local env)\".");
        command.SetAction(result =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var layout = cluster.Layout;
            Console.Out.WriteLine($"export MEMORYCLUSTER_URL={ShellQuote(layout.ConnectionString(readOnly: false))}");
            Console.Out.WriteLine($"export MEMORYCLUSTER_READONLY_URL={ShellQuote(layout.ConnectionString(readOnly: true))}");
            Console.Out.WriteLine($"export PGPASSFILE={ShellQuote(layout.PgPassFile)}");
            if (new LocalCompute(layout) is { Url: { } url } compute)
            {
                Console.Out.WriteLine($"export MEMORYCLUSTER_COMPUTE_URL={ShellQuote(url.ToString())}");
                Console.Out.WriteLine($"export MEMORYCLUSTER_COMPUTE_TOKEN_FILE={ShellQuote(compute.TokenFile)}");
            }

            Console.Out.WriteLine($"# mode {ModeGuarantee(layout.Mode)}");
            return 0;
        });
        return command;
    }

    /// <summary>A value in single quotes for a POSIX shell.</summary>
    private static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static Command Status()
    {
        var output = new Option<string>("--output", "-o") { Description = "table, json or yaml (json and yaml: every manager's whole /status).", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json", "yaml");
        var watch = new Option<bool>("--watch", "-w") { Description = "Print again every 2 s until interrupted." };
        var command = new Command("status", "One row per instance, from each manager's /status; exit 1 unless healthy.") { output, watch };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var format = result.GetValue(output)!;
            try
            {
                while (true)
                {
                    var statuses = await cluster.StatusAsync(ct).ConfigureAwait(false);
                    var compute = new LocalCompute(cluster.Layout);
                    var computeStatus = await compute.StatusAsync(ct).ConfigureAwait(false);
                    Console.Out.Write(StatusText(statuses, format, result.GetValue(watch), compute, computeStatus));
                    if (!result.GetValue(watch))
                    {
                        return LocalCluster.Assess(statuses).Healthy ? 0 : 1;
                    }

                    await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
                    Console.Out.WriteLine(format == "yaml" ? "---" : string.Empty);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Interrupted (Ctrl-C): the way --watch ends.
                return 0;
            }
        });
        return command;
    }

    private static Command History()
    {
        var output = new Option<string>("--output", "-o") { Description = "table, json or yaml.", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json", "yaml");
        var command = new Command("history", "Every change of primary the control state keeps (the last 100): epoch, time, from, to and reason.") { output };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            if (await cluster.HistoryAsync(ct).ConfigureAwait(false) is not { } history)
            {
                Console.Error.WriteLine("no manager answered /history: is the cluster up? (`memorycluster local status`)");
                return 1;
            }

            var format = result.GetValue(output)!;
            Console.Out.Write(format switch
            {
                "table" => LocalCluster.HistoryTable(history),
                "json" => System.Text.Json.JsonSerializer.Serialize(history, IndentedJson) + "\n",
                _ => Manifests.YamlJson.FromJson(System.Text.Json.JsonSerializer.SerializeToNode(history, InstanceJson.Options)!),
            });
            return 0;
        });
        return command;
    }

    private static readonly System.Text.Json.JsonSerializerOptions IndentedJson = new(InstanceJson.Options) { WriteIndented = true };

    /// <summary>The statuses as a table (under the time and the verdict when watched), or as a JSON or YAML document with the verdict.</summary>
    private static string StatusText(IReadOnlyList<(MemoryCluster.Instance.Peer Member, StatusDocument? Status)> statuses, string format, bool watched, LocalCompute compute, System.Text.Json.JsonElement? computeStatus)
    {
        var (healthy, summary) = LocalCluster.Assess(statuses);
        if (format == "table")
        {
            var heading = watched ? $"{DateTime.Now:HH:mm:ss}  {(healthy ? "healthy" : "not healthy")}: {summary}\n" : string.Empty;
            return heading + LocalCluster.Table(statuses) + LocalCompute.StatusLine(compute.Enabled, compute.RunningPid() is not null, compute.Url, computeStatus);
        }

        var document = new System.Text.Json.Nodes.JsonObject
        {
            ["healthy"] = healthy,
            ["summary"] = summary,
            ["members"] = new System.Text.Json.Nodes.JsonArray([.. statuses.Select(s => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["name"] = s.Member.Name,
                ["answering"] = s.Status is not null,
                ["status"] = s.Status is null ? null : System.Text.Json.JsonSerializer.SerializeToNode(s.Status, InstanceJson.Options),
            })]),
            ["compute"] = new System.Text.Json.Nodes.JsonObject
            {
                ["enabled"] = compute.Enabled,
                ["running"] = compute.RunningPid() is not null,
                ["url"] = compute.Url?.ToString(),
                ["status"] = computeStatus is { } c ? System.Text.Json.Nodes.JsonNode.Parse(c.GetRawText()) : null,
            },
        };
        return format == "json"
            ? document.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n"
            : Manifests.YamlJson.FromJson(document);
    }

    /// <summary>
    /// The local cluster and its instance named by <paramref name="name"/>; null, said on standard error (with the
    /// names there are), when there is no cluster or no such instance.
    /// </summary>
    private static (LocalCluster Cluster, MemoryCluster.Instance.Peer Member)? ExistingMember(ParseResult result, Argument<string> name)
    {
        if (Existing(result) is not { } cluster)
        {
            return null;
        }

        var wanted = result.GetValue(name)!;
        var member = cluster.Layout.Members.FirstOrDefault(m => m.Name == wanted);
        if (member is null)
        {
            Console.Error.WriteLine($"no instance is named '{wanted}' (instances: {string.Join(", ", cluster.Layout.Members.Select(m => m.Name))})");
            return null;
        }

        return (cluster, member);
    }

    private static Command Logs()
    {
        var name = new Argument<string>("name") { Description = "The instance, e.g. mc-1." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines until interrupted." };
        var json = new Option<bool>("--json") { Description = "The log lines as written (JSON), not made readable." };
        var command = new Command("logs", "An instance manager's log, PostgreSQL's lines included, made readable.") { name, follow, json };
        command.SetAction(async (result, ct) =>
        {
            if (ExistingMember(result, name) is not var (cluster, member))
            {
                return 2;
            }

            var path = cluster.Layout.LogFile(member);
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"{path}: no log yet (the manager has not started)");
                return 1;
            }

            Func<string, string> show = result.GetValue(json) ? line => line : ManagerLog.Readable;
            using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            try
            {
                while (true)
                {
                    var line = await reader.ReadLineAsync(ct).ConfigureAwait(false);
                    if (line is not null)
                    {
                        Console.Out.WriteLine(show(line));
                        continue;
                    }

                    if (!result.GetValue(follow))
                    {
                        return 0;
                    }

                    await Task.Delay(200, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Interrupted (Ctrl-C): the way -f ends.
                return 0;
            }
        });
        return command;
    }

    private static Command Psql()
    {
        var readOnly = new Option<bool>("--ro") { Description = "Connect to a replica when one is up (prefer-standby)." };
        var rest = new Argument<string[]>("psql-args") { Description = "Arguments passed to psql, e.g. -c 'select 1'.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("psql", "Run psql against the read-write (or read-only) endpoint.") { readOnly, rest };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var start = new ProcessStartInfo("psql") { UseShellExecute = false };
            start.ArgumentList.Add(cluster.Layout.ConnectionString(result.GetValue(readOnly)));
            foreach (var arg in (result.GetValue(rest) ?? []).Concat(result.UnmatchedTokens))
            {
                start.ArgumentList.Add(arg);
            }

            start.Environment["PGPASSFILE"] = cluster.Layout.PgPassFile;
            using var process = Process.Start(start)!;
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            return process.ExitCode;
        });
        return command;
    }

    private static Command Switchover()
    {
        var to = new Option<string?>("--to") { Description = "The replica to make primary (default: the most caught-up streaming replica)." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the new primary.", DefaultValueFactory = _ => 60 };
        var command = new Command("switchover", "Planned change of primary, with no acknowledged write lost.") { to, timeout };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var target = result.GetValue(to);
            var watch = Stopwatch.StartNew();
            if (await AskAnyManagerAsync(cluster, "switchover", (api, member) => api.SwitchoverAsync(member, target, ct)).ConfigureAwait(false) is not { } answer)
            {
                return 1;
            }

            var deadline = TimeSpan.FromSeconds(result.GetValue(timeout));
            var sawPending = false;
            var accepted = Stopwatch.StartNew();
            while (watch.Elapsed < deadline)
            {
                var statuses = await cluster.StatusAsync(ct).ConfigureAwait(false);
                var answering = statuses.Where(s => s.Status is not null).Select(s => s.Status!).ToList();
                sawPending |= answering.Any(s => s.PendingSwitchover is not null);
                // A majority answering: at least one of them has applied whatever the Raft log committed.
                if (answering.Count > cluster.Layout.Members.Count / 2 && answering.All(s => s.Epoch <= answer.Epoch && s.PendingSwitchover is null) && (sawPending || accepted.Elapsed > TimeSpan.FromSeconds(10)))
                {
                    // The primary's own check before stopping refused it and cleared the request: nothing changed.
                    Console.Error.WriteLine($"switchover called off: the primary refused it before stopping and the epoch stays {answer.Epoch}; its log says why");
                    Console.Out.Write(LocalCluster.Table(statuses));
                    return 1;
                }

                if (LocalCluster.NewPrimary(statuses, target, answer.Epoch) is { } now)
                {
                    Console.Out.WriteLine($"{now.Name} is primary after {watch.Elapsed.TotalSeconds:0.00} s");
                    var healthy = await cluster.WaitHealthyAsync(deadline - watch.Elapsed, ct).ConfigureAwait(false);
                    Console.Out.Write(LocalCluster.Table(await cluster.StatusAsync(ct).ConfigureAwait(false)));
                    return healthy ? 0 : 1;
                }

                await Task.Delay(100, ct).ConfigureAwait(false);
            }

            Console.Error.WriteLine($"{target ?? "the target"} did not become primary within {deadline.TotalSeconds:0} s");
            Console.Out.Write(LocalCluster.Table(await cluster.StatusAsync(ct).ConfigureAwait(false)));
            return 1;
        });
        return command;
    }

    private static Command Failover()
    {
        var to = new Option<string?>("--to") { Description = "The replica to promote (default: the one the Raft leader finds most complete)." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the new primary.", DefaultValueFactory = _ => 60 };
        var command = new Command("failover", "Forced failover of a failed primary (also while paused); refused while the primary holds its lease (use switchover).") { to, timeout };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var target = result.GetValue(to);
            if (target is not null && cluster.Layout.Members.All(m => m.Name != target))
            {
                Console.Error.WriteLine($"no instance is named '{target}' (instances: {string.Join(", ", cluster.Layout.Members.Select(m => m.Name))})");
                return 2;
            }

            // Only the Raft leader takes it: asked first, as the members' reports name it.
            var watch = Stopwatch.StartNew();
            var statuses = await cluster.StatusAsync(ct).ConfigureAwait(false);
            var order = statuses.OrderByDescending(s => s.Status?.Raft.Role == "leader").Select(s => s.Member).ToList();
            if (await AskAnyManagerAsync(cluster, "failover", (api, member) => api.FailoverAsync(member, target, ct), order, a => a.Message.Contains("is not the Raft leader", StringComparison.Ordinal)).ConfigureAwait(false) is not { } answer)
            {
                return 1;
            }

            var deadline = TimeSpan.FromSeconds(result.GetValue(timeout));
            while (watch.Elapsed < deadline)
            {
                statuses = await cluster.StatusAsync(ct).ConfigureAwait(false);
                if (LocalCluster.NewPrimary(statuses, target, answer.Epoch) is { } now)
                {
                    Console.Out.WriteLine($"{now.Name} is primary after {watch.Elapsed.TotalSeconds:0.00} s");
                    Console.Out.Write(LocalCluster.Table(statuses));
                    return 0;
                }

                if (statuses.Select(s => s.Status?.ForcedFailoverRefused).FirstOrDefault(r => r is not null) is { } refused)
                {
                    Console.Error.WriteLine($"failover refused by the Raft leader: {refused}");
                    return 1;
                }

                await Task.Delay(100, ct).ConfigureAwait(false);
            }

            var why = statuses.Select(s => s.Status?.Failover).FirstOrDefault(f => f is not null);
            Console.Error.WriteLine($"{(target is null ? "no replica became" : $"{target} did not become")} primary within {deadline.TotalSeconds:0} s{(why is null ? string.Empty : $"; the Raft leader says: {why}")}");
            Console.Out.Write(LocalCluster.Table(statuses));
            return 1;
        });
        return command;
    }

    /// <summary>
    /// Sends a signed request to the first manager that answers (in <paramref name="order"/>, else the layout's), and
    /// prints its answer; null (said on standard error) when none answered or one refused (unless
    /// <paramref name="tryNext"/> says to go on to the next).
    /// </summary>
    private static async Task<ManagerAnswer?> AskAnyManagerAsync(LocalCluster cluster, string verb, Func<InstanceApiClient, Uri, Task<ManagerAnswer>> ask, IReadOnlyList<MemoryCluster.Instance.Peer>? order = null, Func<ManagerAnswer, bool>? tryNext = null)
    {
        var api = cluster.SigningApi();
        ManagerAnswer? passed = null;
        foreach (var member in order ?? cluster.Layout.Members)
        {
            ManagerAnswer answer;
            try
            {
                answer = await ask(api, member.HttpBase).ConfigureAwait(false);
            }
            catch (InstanceApiException)
            {
                continue;
            }

            if (!answer.Accepted && tryNext?.Invoke(answer) == true)
            {
                passed = answer;
                continue;
            }

            if (!answer.Accepted)
            {
                Console.Error.WriteLine($"{verb} refused: {answer.Message}");
                return null;
            }

            Console.Out.WriteLine(answer.Message);
            return answer;
        }

        Console.Error.WriteLine(passed is null ? "no manager answered" : $"{verb} refused: {passed.Message}");
        return null;
    }

    private static Command Reinit()
    {
        var name = new Argument<string>("name") { Description = "The replica to rebuild, e.g. mc-2." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait until it streams again.", DefaultValueFactory = _ => 300 };
        var command = new Command("reinit", "Rebuild a replica from the primary: its data is set aside (DIR/NAME/pgdata.reinit.N) and cloned afresh; refused for the primary.") { name, timeout };
        command.SetAction(async (result, ct) =>
        {
            if (ExistingMember(result, name) is not var (cluster, member))
            {
                return 2;
            }

            var wanted = member.Name;

            // Counted before asking: the manager may set the data aside before the answer is even read here.
            var folder = cluster.Layout.InstanceDirectory(member);
            string[] Kept() => Directory.GetDirectories(folder, "pgdata.reinit.*");
            var before = Kept().Length;
            ManagerAnswer answer;
            try
            {
                answer = await cluster.SigningApi().ReinitAsync(member.HttpBase, ct).ConfigureAwait(false);
            }
            catch (InstanceApiException e)
            {
                Console.Error.WriteLine($"{wanted}'s manager did not answer: {e.Message}");
                return 1;
            }

            if (!answer.Accepted)
            {
                Console.Error.WriteLine($"reinit refused: {answer.Message}");
                return 1;
            }

            Console.Out.WriteLine(answer.Message);
            var watch = Stopwatch.StartNew();
            var (streams, statuses) = await cluster.WaitForAsync(
                all => Kept().Length > before && all.Single(s => s.Member == member).Status is { Role: InstanceRole.Replica, Ready: true, Streaming: true },
                TimeSpan.FromSeconds(result.GetValue(timeout)),
                TimeSpan.FromMilliseconds(200),
                ct).ConfigureAwait(false);
            if (streams)
            {
                Console.Out.WriteLine($"{wanted} streams again after {watch.Elapsed.TotalSeconds:0.0} s; its old data is kept in {Kept().Order(StringComparer.Ordinal).Last()}");
                return 0;
            }

            Console.Error.WriteLine($"{wanted} did not stream again within {result.GetValue(timeout)} s");
            Console.Out.Write(LocalCluster.Table(statuses));
            return 1;
        });
        return command;
    }

    private static Command MaintenanceCommand(string verb, bool on, string description)
    {
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait until every manager shows it.", DefaultValueFactory = _ => 30 };
        var command = new Command(verb, description) { timeout };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            if (await AskAnyManagerAsync(cluster, verb, (api, member) => api.MaintenanceAsync(member, on, ct)).ConfigureAwait(false) is null)
            {
                return 1;
            }

            var (shown, statuses) = await cluster.WaitForAsync(
                all => all.Where(s => s.Status is not null).All(s => s.Status!.Maintenance == on),
                TimeSpan.FromSeconds(result.GetValue(timeout)),
                TimeSpan.FromMilliseconds(100),
                ct).ConfigureAwait(false);
            if (!shown)
            {
                Console.Error.WriteLine($"not every manager shows maintenance mode {(on ? "on" : "off")} after {result.GetValue(timeout)} s");
            }

            Console.Out.Write(LocalCluster.Table(statuses));
            return shown ? 0 : 1;
        });
        return command;
    }

    private static Command Scale()
    {
        var instances = new Option<int>("--instances") { Description = "3 or 5.", Required = true };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the change and a healthy cluster.", DefaultValueFactory = _ => 120 };
        var command = new Command("scale", "Grow (3 to 5) or shrink (5 to 3) a running cluster through the managers' membership endpoints; removed members' data is kept.") { instances, timeout };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var target = result.GetValue(instances);
            var current = cluster.Layout.Members.Count;
            if (target is not (3 or 5))
            {
                Console.Error.WriteLine($"--instances: must be 3 or 5 (2-node clusters cannot hold a safe majority), not {target}");
                return 2;
            }

            if (target == current)
            {
                Console.Out.WriteLine($"the cluster already has {current} instances; nothing changed");
                return 0;
            }

            if (cluster.Layout.Members.Any(m => cluster.RunningPid(m) is null))
            {
                Console.Error.WriteLine("every member must be running to change the membership: start them with `memorycluster local up` first");
                return 1;
            }

            var scale = new LocalScale(cluster, Console.Out);
            var limit = TimeSpan.FromSeconds(result.GetValue(timeout));
            var done = target > current
                ? await scale.GrowAsync(target, limit, ct).ConfigureAwait(false)
                : await scale.ShrinkAsync(target, limit, ct).ConfigureAwait(false);
            var layout = LocalLayout.Load(cluster.Layout.Directory)!;
            Console.Out.Write(LocalCluster.Table(await new LocalCluster(layout, Console.Out).StatusAsync(ct).ConfigureAwait(false)));
            if (!done)
            {
                Console.Error.WriteLine($"scaling to {target} did not complete; logs: {layout.Directory}/*/manager.log");
                return 1;
            }

            Console.Out.WriteLine($"{target} instances, every one a voter");
            return 0;
        });
        return command;
    }

    private static Command KillCommand()
    {
        var name = new Argument<string>("name") { Description = "Instance whose manager gets the signal." };
        var signal = new Option<string>("--signal") { Description = "KILL, STOP, CONT or TERM.", DefaultValueFactory = _ => "KILL" };
        signal.AcceptOnlyFromAmong("KILL", "STOP", "CONT", "TERM");
        var command = new Command("kill", "Send a signal to one instance's manager (fault injection).") { name, signal };
        command.SetAction(result =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var member = cluster.Layout.Members.FirstOrDefault(m => m.Name == result.GetValue(name));
            if (member is null)
            {
                Console.Error.WriteLine($"no instance named '{result.GetValue(name)}' (instances: {string.Join(", ", cluster.Layout.Members.Select(m => m.Name))})");
                return 2;
            }

            if (cluster.RunningPid(member) is not { } pid)
            {
                Console.Error.WriteLine($"{member.Name}: its manager is not running");
                return 1;
            }

            var number = result.GetValue(signal) switch { "KILL" => 9, "STOP" => 19, "CONT" => 18, _ => 15 };
            _ = MemoryCluster.Instance.Postgres.ProcessSignals.Send(pid, number);
            Console.Out.WriteLine($"sent SIG{result.GetValue(signal)} to {member.Name}'s manager (pid {pid})");
            return 0;
        });
        return command;
    }

    private static Command LinkCommand(string verb, string description, bool up)
    {
        var name = new Argument<string>("name") { Description = "Instance whose link changes." };
        var command = new Command(verb, description) { name };
        command.SetAction(result =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            var member = cluster.Layout.Members.FirstOrDefault(m => m.Name == result.GetValue(name));
            if (member is null || cluster.Layout.Network is not { } network)
            {
                Console.Error.WriteLine(member is null ? $"no instance named '{result.GetValue(name)}'" : "this cluster was not made with `local up --netns`");
                return 2;
            }

            network.SetLink(member, up);
            Console.Out.WriteLine($"{member.Name}: link {network.Veth(member)} {(up ? "up" : "down")}");
            return 0;
        });
        return command;
    }

    private static Command Down()
    {
        var purge = new Option<bool>("--purge") { Description = "Also delete the cluster's folder: data, logs and secrets." };
        var command = new Command("down", "Stop every manager and PostgreSQL it started; data is kept unless --purge.") { purge };
        command.SetAction(async (result, ct) =>
        {
            if (Existing(result) is not { } cluster)
            {
                return 2;
            }

            await new LocalCompute(cluster.Layout).StopAsync(TimeSpan.FromSeconds(15), ct).ConfigureAwait(false);
            await cluster.StopManagersAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            cluster.RemoveNetwork();
            Console.Out.WriteLine($"stopped the cluster in {cluster.Layout.Directory}");
            if (result.GetValue(purge))
            {
                Directory.Delete(cluster.Layout.Directory, recursive: true);
                Console.Out.WriteLine($"deleted {cluster.Layout.Directory}");
            }

            return 0;
        });
        return command;
    }
}
