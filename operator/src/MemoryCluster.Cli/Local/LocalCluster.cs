using System.Diagnostics;
using System.Globalization;
using System.Text;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Cli.Local;

/// <summary>Runs and inspects a cluster of instance managers on this machine.</summary>
internal sealed class LocalCluster(LocalLayout layout, TextWriter output)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };

    /// <summary>The managers' API client (public endpoints only).</summary>
    public static InstanceApiClient Api { get; } = new(Http);

    /// <summary>
    /// A client that signs with this cluster's key (<see cref="LocalLayout.ClusterKeyFile"/>, made by <c>local up</c>),
    /// for the endpoints that change something: switchover, membership.
    /// </summary>
    public InstanceApiClient SigningApi() => new(Http, File.ReadAllBytes(layout.ClusterKeyFile));

    public LocalLayout Layout => layout;

    /// <summary>The pid of a member's manager, when it is running.</summary>
    public int? RunningPid(Peer member)
    {
        var file = layout.PidFile(member);
        if (!File.Exists(file) || !int.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return null;
        }

        // A pid is ours only while /proc shows our manager under it (pids are reused).
        var cmdline = $"/proc/{pid}/cmdline";
        return File.Exists(cmdline) && File.ReadAllText(cmdline).Contains(layout.InstanceDirectory(member), StringComparison.Ordinal) ? pid : null;
    }

    /// <summary>
    /// Starts every manager that is not running. Each runs detached from this command, in its own session (so
    /// its pid is its process group), and, with network namespaces, inside its member's namespace.
    /// </summary>
    /// <param name="joining">Members started for the first time to join the running cluster (<c>--join true</c>).</param>
    public void StartManagers(IReadOnlyCollection<ulong>? joining = null)
    {
        var (program, prefix) = SelfCommand();
        layout.Network?.Ensure(layout.Members);
        foreach (var member in layout.Members)
        {
            if (RunningPid(member) is not null)
            {
                continue;
            }

            Directory.CreateDirectory(layout.InstanceDirectory(member));
            var args = new List<string>(prefix)
            {
                "instance",
                "--id", member.Id.ToString(CultureInfo.InvariantCulture),
                "--data-dir", layout.InstanceDirectory(member),
                "--peers", layout.PeersArgument,
                "--cluster-key-file", layout.ClusterKeyFile,
                "--replication-password-file", layout.ReplicationPasswordFile,
                "--app-password-file", layout.AppPasswordFile,
                "--mode", layout.Mode,
            };
            if (joining?.Contains(member.Id) == true)
            {
                args.AddRange(["--join", "true"]);
            }

            var command = "exec " + layout.Network?.ExecPrefix(member) + "setsid " + Quote(program) + " " + string.Join(' ', args.Select(Quote)) + " >> " + Quote(layout.LogFile(member)) + " 2>&1 < /dev/null";
            using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { UseShellExecute = false, WorkingDirectory = layout.Directory })!;
            File.WriteAllText(layout.PidFile(member), process.Id.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Every member's /status, or null for members that do not answer.</summary>
    public async Task<IReadOnlyList<(Peer Member, StatusDocument? Status)>> StatusAsync(CancellationToken cancellationToken) =>
        await Task.WhenAll(layout.Members.Select(async m => (m, await StatusAsync(m, cancellationToken).ConfigureAwait(false)))).ConfigureAwait(false);

    /// <summary>One member's /status, or null when it does not answer (within 2 s, or before the token is cancelled).</summary>
    public static Task<StatusDocument?> StatusAsync(Peer member, CancellationToken cancellationToken) => Api.TryStatusAsync(member.HttpBase, cancellationToken);

    /// <summary>
    /// The history of the member that has applied the most of the control state (a member that was away may lag);
    /// null when no manager answers.
    /// </summary>
    public async Task<HistoryDocument?> HistoryAsync(CancellationToken cancellationToken)
    {
        var answers = await Task.WhenAll(layout.Members.Select(m => Api.TryHistoryAsync(m.HttpBase, cancellationToken))).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return answers.Where(a => a is not null).MaxBy(a => a!.AppliedIndex);
    }

    /// <summary>
    /// The member that is now a ready primary at an epoch after <paramref name="before"/> (and is
    /// <paramref name="target"/>, when one was named): how a switchover or failover asked at that epoch is seen done.
    /// </summary>
    public static Peer? NewPrimary(IReadOnlyList<(Peer Member, StatusDocument? Status)> statuses, string? target, Epoch? before) =>
        statuses.Where(s => (target is null || s.Member.Name == target) && s.Status is { Role: InstanceRole.Primary, Ready: true } && s.Status.Epoch > before).Select(s => s.Member).FirstOrDefault();

    /// <summary>Whether one primary is ready and every other member is a streaming replica.</summary>
    public static (bool Healthy, string Summary) Assess(IReadOnlyList<(Peer Member, StatusDocument? Status)> statuses)
    {
        var primaries = statuses.Where(s => s.Status is { Role: InstanceRole.Primary, Ready: true }).Select(s => s.Member.Name).ToList();
        var streaming = statuses.Count(s => s.Status is { Role: InstanceRole.Replica, Ready: true });
        var replicas = statuses.Count - 1;
        var summary = primaries.Count switch
        {
            0 => $"no primary ready yet; {streaming}/{replicas} replicas streaming",
            1 => $"primary {primaries[0]} ready; {streaming}/{replicas} replicas streaming",
            _ => $"{primaries.Count} instances claim to be primary ({string.Join(", ", primaries)})",
        };
        return (primaries.Count == 1 && streaming == replicas, summary);
    }

    /// <summary>
    /// Reads every manager's status every <paramref name="interval"/> until <paramref name="done"/> holds of them (at
    /// least once), for at most <paramref name="timeout"/>; whether it held, and the statuses read last.
    /// </summary>
    public async Task<(bool Held, IReadOnlyList<(Peer Member, StatusDocument? Status)> Statuses)> WaitForAsync(
        Func<IReadOnlyList<(Peer Member, StatusDocument? Status)>, bool> done, TimeSpan timeout, TimeSpan interval, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var statuses = await StatusAsync(cancellationToken).ConfigureAwait(false);
            if (done(statuses))
            {
                return (true, statuses);
            }

            if (watch.Elapsed > timeout)
            {
                return (false, statuses);
            }

            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for <see cref="Assess"/> to say healthy, printing progress when it changes.</summary>
    public async Task<bool> WaitHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        var last = string.Empty;
        while (deadline.Elapsed < timeout)
        {
            var (healthy, summary) = Assess(await StatusAsync(cancellationToken).ConfigureAwait(false));
            if (summary != last)
            {
                output.WriteLine($"  [{deadline.Elapsed.TotalSeconds,5:0.0}s] {summary}");
                last = summary;
            }

            if (healthy)
            {
                return true;
            }

            foreach (var member in layout.Members.Where(m => RunningPid(m) is null))
            {
                var log = layout.LogFile(member);
                var tail = File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(5)) : "(no log)";
                output.WriteLine($"{member.Name}: its manager is not running; the end of {log}:\n{tail}");
                return false;
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>The table of <c>local status</c>: one row per instance, name first.</summary>
    public static string Table(IReadOnlyList<(Peer Member, StatusDocument? Status)> statuses)
    {
        var rows = new List<string[]> { new[] { "NAME", "ROLE", "READY", "EPOCH", "TIMELINE", "LSN", "LAG", "PG PORT", "RAFT", "ACTIVITY" } };
        foreach (var (member, s) in statuses)
        {
            rows.Add(s is null
                ? [member.Name, "down", "no", "-", "-", "-", "-", member.PgPort.ToString(CultureInfo.InvariantCulture), "-", "manager not answering"]
                :
                [
                    member.Name, s.Role.ToString().ToLowerInvariant(), s.Ready ? "yes" : "no", s.Epoch.ToString(),
                    s.Timeline?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    (s.Role == InstanceRole.Primary ? s.WriteLsn : s.ReplayLsn)?.ToString() ?? "-",
                    s.LagBytes?.ToString(CultureInfo.InvariantCulture) ?? (s.Follow is FollowState.Diverged or FollowState.Rewinding or FollowState.Cloning ? s.Follow.ToString().ToLowerInvariant() : "-"),
                    member.PgPort.ToString(CultureInfo.InvariantCulture),
                    s.Raft.Role,
                    s.LastError is { } error && s.Activity?.StartsWith("waiting", StringComparison.Ordinal) == true ? $"{s.Activity} (last error: {error})" : s.Activity ?? string.Empty,
                ]);
        }

        var text = new StringBuilder(Columns(rows));
        if (statuses.Any(s => s.Status?.Maintenance == true))
        {
            text.Append("maintenance mode: automatic failover is paused (`local resume` resumes it)\n");
        }

        return text.ToString();
    }

    /// <summary>
    /// The changes of primary as a table, oldest first (as <c>patronictl history</c>): epoch, time (UTC), from, to,
    /// reason; a line under it says how many the control state keeps.
    /// </summary>
    public static string HistoryTable(HistoryDocument history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var rows = new List<string[]> { new[] { "EPOCH", "TIME (UTC)", "FROM", "TO", "REASON" } };
        rows.AddRange(history.Changes.Select(c => new[]
        {
            c.Epoch.ToString(),
            c.At?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) ?? "-",
            c.From ?? "-",
            c.To,
            c.Reason switch
            {
                PrimaryChangeReason.SwitchoverAborted => "switchover aborted (resumed at a new epoch)",
                PrimaryChangeReason.Unknown => "unknown (proposed by an older manager)",
                _ => c.Reason.ToString().ToLowerInvariant(),
            },
        }));
        var limit = history.Changes.Count >= ControlState.HistoryLimit ? $"; the control state keeps the last {ControlState.HistoryLimit}" : string.Empty;
        return Columns(rows) + $"epoch {history.Epoch} now{limit}\n";
    }

    /// <summary>Rows as aligned columns, two spaces apart (the last column not padded), a line each.</summary>
    internal static string Columns(List<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in rows)
        {
            text.AppendJoin("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>
    /// Stops every manager (or those of <paramref name="only"/>): SIGTERM (they stop Postgres cleanly), then SIGKILL after
    /// the grace period. A primary's manager that gets SIGTERM switches over to a streaming replica first; stopping
    /// several, the others get SIGTERM first, and the primary once their PostgreSQL stopped (not later: without them
    /// its lease runs out and it fences itself), so that it finds no replica to hand over to, stops at once and keeps
    /// its epoch.
    /// </summary>
    public async Task StopManagersAsync(TimeSpan grace, CancellationToken cancellationToken, IReadOnlyList<Peer>? only = null)
    {
        var stopping = only ?? layout.Members;
        var watch = Stopwatch.StartNew();
        var primaries = new HashSet<Peer>();
        if (stopping.Count > 1)
        {
            foreach (var (member, status) in await Task.WhenAll(stopping.Select(async m => (m, await StatusAsync(m, cancellationToken).ConfigureAwait(false)))).ConfigureAwait(false))
            {
                if (status is { Role: InstanceRole.Primary })
                {
                    primaries.Add(member);
                }
            }
        }

        var others = Terminate(stopping.Where(m => !primaries.Contains(m)));
        while (primaries.Count > 0 && watch.Elapsed < grace && !await PostgresStoppedAsync(others, cancellationToken).ConfigureAwait(false))
        {
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        var pids = others.Concat(Terminate(primaries)).ToList();
        while (pids.Any(p => Directory.Exists($"/proc/{p.Pid}")) && watch.Elapsed < grace)
        {
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (member, pid) in pids.Where(p => Directory.Exists($"/proc/{p.Pid}")))
        {
            output.WriteLine($"{member.Name}: manager (pid {pid}) did not stop within {grace.TotalSeconds:0} s; killing it");
            Signal(pid, 9);
        }

        // A manager killed with SIGKILL leaves its postmaster behind: stop any that still holds our data.
        foreach (var member in stopping)
        {
            var pidFile = Path.Combine(layout.InstanceDirectory(member), "pgdata", "postmaster.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var postmaster)
                && File.Exists($"/proc/{postmaster}/cmdline") && File.ReadAllText($"/proc/{postmaster}/cmdline").Contains("postgres", StringComparison.Ordinal))
            {
                output.WriteLine($"{member.Name}: stopping the postmaster (pid {postmaster}) its manager left behind");
                Signal(postmaster, 3);
                Signal(postmaster, 18);
            }

            File.Delete(layout.PidFile(member));
        }
    }

    /// <summary>SIGTERM (and SIGCONT: a stopped manager, fault injection, would keep SIGTERM pending until SIGKILL) to the running managers of <paramref name="members"/>.</summary>
    private List<(Peer Member, int Pid)> Terminate(IEnumerable<Peer> members)
    {
        var pids = members.Select(m => (Member: m, Pid: RunningPid(m))).Where(p => p.Pid is not null).Select(p => (p.Member, p.Pid!.Value)).ToList();
        foreach (var (_, pid) in pids)
        {
            Signal(pid, 15);
            Signal(pid, 18);
        }

        return pids;
    }

    /// <summary>Whether every one of <paramref name="members"/> has its PostgreSQL stopped: its manager gone, not answering, or saying so.</summary>
    private static async Task<bool> PostgresStoppedAsync(IReadOnlyList<(Peer Member, int Pid)> members, CancellationToken cancellationToken)
    {
        var statuses = await Task.WhenAll(members.Where(p => Directory.Exists($"/proc/{p.Pid}")).Select(p => StatusAsync(p.Member, cancellationToken))).ConfigureAwait(false);
        return statuses.All(s => s is null || !s.PostgresRunning);
    }

    /// <summary>Removes the cluster's namespaces, veth pairs, bridge (and blackhole route when no other cluster needs it).</summary>
    public void RemoveNetwork() => layout.Network?.Remove(layout.Members);

    internal static void Signal(int pid, int signal) => _ = ProcessSignals.Send(pid, signal);

    /// <summary>How to run this same binary again: the apphost, or dotnet with the dll.</summary>
    internal static (string Program, IReadOnlyList<string> Prefix) SelfCommand()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program is running");
        return Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? (process, [typeof(LocalCluster).Assembly.Location])
            : (process, []);
    }

    internal static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
