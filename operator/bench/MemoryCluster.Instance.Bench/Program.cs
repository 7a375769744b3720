// Bootstrap time and planned-switchover write unavailability of the local cluster, measured on real
// PostgreSQL 15 and real instance managers. Ends with one JSON line. Bounded: every wait has a limit.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MemoryCluster.E2e;
using Npgsql;

var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;

// Two writers run through every switchover. One re-checks which host is primary on every connection (Npgsql Host
// Recheck Seconds 0): its gap is the cluster's own part. The other keeps Npgsql's cache of each host's state for
// RECHECK seconds (1 by default: an application tuned for failover): a host seen as a standby while the switchover
// ran is not tried again before that, so its gap is at least about RECHECK seconds whatever the cluster does.
var hostRecheck = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
var cli = Path.Combine(AppContext.BaseDirectory, "memorycluster.dll");

(int Code, string Output) Run(params string[] arguments)
{
    var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
    start.ArgumentList.Add(cli);
    foreach (var a in arguments)
    {
        start.ArgumentList.Add(a);
    }

    using var process = Process.Start(start)!;
    var stdout = process.StandardOutput.ReadToEndAsync();
    var stderr = process.StandardError.ReadToEndAsync();
    if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
    {
        process.Kill(entireProcessTree: true);
        throw new TimeoutException($"memorycluster {string.Join(' ', arguments)} took over 3 minutes");
    }

    return (process.ExitCode, stdout.Result + stderr.Result);
}

string NewDir()
{
    var dir = Path.Combine(Path.GetTempPath(), "mc-bench-" + Guid.NewGuid().ToString("N")[..8]);
    return dir;
}

double Bootstrap(int instances)
{
    var dir = NewDir();
    try
    {
        var watch = Stopwatch.StartNew();
        var (code, output) = Run("local", "up", "--dir", dir, "--instances", instances.ToString(CultureInfo.InvariantCulture), "--timeout", "150", "--no-compute");
        var seconds = watch.Elapsed.TotalSeconds;
        if (code != 0)
        {
            throw new InvalidOperationException($"local up ({instances}) failed:\n{output}");
        }

        Console.WriteLine($"bootstrap {instances} instances: {seconds:0.00} s (local up, start to healthy)");
        return seconds;
    }
    finally
    {
        Run("local", "down", "--dir", dir, "--purge");
    }
}

static double Percentile(IReadOnlyList<double> sorted, double p) =>
    sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

// CPU time of a process (clock ticks): its own, or with its waited-for children (a postmaster's exited backends).
static long CpuTicks(int pid, bool withReaped = false)
{
    try
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var own = long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture);
        return withReaped ? own + long.Parse(f[13], CultureInfo.InvariantCulture) + long.Parse(f[14], CultureInfo.InvariantCulture) : own;
    }
    catch (IOException)
    {
        return 0;
    }
}

static IEnumerable<int> Descendants(int pid)
{
    var tasks = $"/proc/{pid}/task";
    if (!Directory.Exists(tasks))
    {
        yield break;
    }

    foreach (var task in Directory.EnumerateDirectories(tasks))
    {
        string children;
        try
        {
            children = File.ReadAllText(Path.Combine(task, "children"));
        }
        catch (IOException)
        {
            continue;
        }

        foreach (var child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(c => int.Parse(c, CultureInfo.InvariantCulture)))
        {
            yield return child;
            foreach (var grandchild in Descendants(child))
            {
                yield return grandchild;
            }
        }
    }
}

static string Comm(int pid)
{
    try
    {
        return File.ReadAllText($"/proc/{pid}/comm").Trim();
    }
    catch (IOException)
    {
        return string.Empty;
    }
}

// Per member of an idle cluster: CPU of the manager, of its watchdog, of its PostgreSQL (every process of it, and
// backends that exited meanwhile), as a percentage of one core over the window.
async Task<List<(string Member, double Manager, double Watchdog, double Postgres)>> IdleCpu(string dir, TimeSpan settle, TimeSpan window)
{
    var layout = MemoryCluster.Cli.Local.LocalLayout.Load(dir)!;
    await Task.Delay(settle);

    var pids = layout.Members.ToDictionary(m => m.Name, m => int.Parse(File.ReadAllText(layout.PidFile(m)).Trim(), CultureInfo.InvariantCulture));
    Dictionary<string, (long Manager, long Watchdog, long Postgres)> Sample() => pids.ToDictionary(p => p.Key, p =>
    {
        long watchdog = 0, postgres = 0;
        foreach (var d in Descendants(p.Value))
        {
            if (Comm(d) == "postgres")
            {
                postgres += CpuTicks(d, withReaped: true);
            }
            else
            {
                watchdog += CpuTicks(d);
            }
        }

        return (CpuTicks(p.Value), watchdog, postgres);
    });
    var a = Sample();
    var watch = Stopwatch.StartNew();
    await Task.Delay(window);
    var b = Sample();
    var seconds = watch.Elapsed.TotalSeconds;
    const double ticksPerSecond = 100; // USER_HZ on Linux
    double Pct(long from, long to) => Math.Max(0, to - from) / ticksPerSecond / seconds * 100;
    return [.. pids.Keys.Order().Select(m => (m, Pct(a[m].Manager, b[m].Manager), Pct(a[m].Watchdog, b[m].Watchdog), Pct(a[m].Postgres, b[m].Postgres)))];
}

var bootstrap3 = Bootstrap(3);
var bootstrap5 = Bootstrap(5);

var switchDir = NewDir();
var gaps = new List<double>();
var durations = new List<double>();
long lost;
long acked;
List<(string Member, double Manager, double Watchdog, double Postgres)> idle;
List<(string Member, double Manager, double Watchdog, double Postgres)> idleSteady;
var clientGaps = new List<double>();
try
{
    var (code, output) = Run("local", "up", "--dir", switchDir, "--instances", "3", "--timeout", "150", "--no-compute");
    if (code != 0)
    {
        throw new InvalidOperationException(output);
    }

    // Idle cost first, before the writers start: the cluster (default mode) with nothing to do. Two windows: from
    // 20 s after it is healthy (the JIT still compiles hot code at its second tier), then the next minute but one
    // (steady state).
    idle = await IdleCpu(switchDir, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(60));
    PrintIdle(idle, "60 s from 20 s after healthy");
    await Task.Delay(TimeSpan.FromSeconds(60));
    idleSteady = await IdleCpu(switchDir, TimeSpan.Zero, TimeSpan.FromSeconds(60));
    PrintIdle(idleSteady, "60 s from 140 s after healthy");

    var layout = MemoryCluster.Cli.Local.LocalLayout.Load(switchDir)!;
    string Connection(int recheck) => new NpgsqlConnectionStringBuilder
    {
        Host = string.Join(',', layout.Members.Select(m => $"{m.Host}:{m.PgPort}")),
        Username = "app",
        Database = "app",
        Passfile = layout.PgPassFile,
        TargetSessionAttributes = "read-write",
        // Npgsql caches which host is primary for HostRecheckSeconds (default 10).
        HostRecheckSeconds = recheck,
        Timeout = 2,
    }.ConnectionString;
    var connection = Connection(0);
    var clientConnection = Connection(hostRecheck);
    await AckedWriter.CreateTableAsync(connection);
    await AckedWriter.CreateTableAsync(connection, "writes_cached");
    await using var writer = new AckedWriter(connection, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(30));
    await using var client = new AckedWriter(clientConnection, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(30), "writes_cached");
    await writer.WaitForAckedAsync(20, TimeSpan.FromSeconds(30));
    await client.WaitForAckedAsync(20, TimeSpan.FromSeconds(30));
    for (var i = 0; i < runs; i++)
    {
        var statuses = await new MemoryCluster.Cli.Local.LocalCluster(layout, TextWriter.Null).StatusAsync(CancellationToken.None);
        var current = statuses.Single(st => st.Status is { Role: MemoryCluster.Instance.Node.InstanceRole.Primary }).Member;
        var members = layout.Members.ToList();
        var target = members[(members.IndexOf(current) + 1) % members.Count].Name;
        var from = Stopwatch.GetTimestamp();
        var (c, o) = Run("local", "switchover", "--dir", switchDir, "--to", target);
        var to = Stopwatch.GetTimestamp();
        if (c != 0)
        {
            throw new InvalidOperationException($"switchover {i + 1} to {target} failed:\n{o}");
        }

        // Let the writer land a few more writes on the new primary, so the gap closes inside the window.
        var before = writer.Acked.Count;
        var clientBefore = client.Acked.Count;
        await writer.WaitForAckedAsync(before + 5, TimeSpan.FromSeconds(30));
        await client.WaitForAckedAsync(clientBefore + 5, TimeSpan.FromSeconds(30));
        var end = Stopwatch.GetTimestamp();
        var gap = writer.LongestGap(from, end).TotalSeconds;
        var clientGap = client.LongestGap(from, end).TotalSeconds;
        gaps.Add(gap);
        clientGaps.Add(clientGap);
        durations.Add(Stopwatch.GetElapsedTime(from, to).TotalSeconds);
        Console.WriteLine($"switchover {i + 1,2} to {target}: writes unavailable {gap:0.000} s (recheck 0), {clientGap:0.000} s (recheck {hostRecheck}); command took {durations[^1]:0.00} s");
    }

    await writer.StopAsync();
    await client.StopAsync();
    await using var check = new NpgsqlConnection(connection);
    await check.OpenAsync();
    async Task<long> Lost(AckedWriter w, string table)
    {
        await using var command = new NpgsqlCommand($"select count(*) from {table} where id = any($1)", check);
        command.Parameters.AddWithValue(w.Acked.ToArray());
        return w.Acked.Count - (long)(await command.ExecuteScalarAsync())!;
    }

    acked = writer.Acked.Count + client.Acked.Count;
    lost = await Lost(writer, "writes") + await Lost(client, "writes_cached");
    Console.WriteLine($"acknowledged writes: {acked}, lost: {lost}, writer errors: {writer.Failures + client.Failures}");
}
finally
{
    Run("local", "down", "--dir", switchDir, "--purge");
}

gaps.Sort();
clientGaps.Sort();
Console.WriteLine(JsonSerializer.Serialize(new
{
    bootstrap_s = new Dictionary<string, double> { ["3"] = Math.Round(bootstrap3, 2), ["5"] = Math.Round(bootstrap5, 2) },
    idle_cpu_percent = IdleJson(idle),
    idle_cpu_percent_steady = IdleJson(idleSteady),
    switchover = new
    {
        runs,
        write_unavailable_s_p50 = Math.Round(Percentile(gaps, 0.50), 3),
        write_unavailable_s_p99 = Math.Round(Percentile(gaps, 0.99), 3),
        write_unavailable_s_max = Math.Round(gaps[^1], 3),
        client_host_recheck_s = hostRecheck,
        client_write_unavailable_s_p50 = Math.Round(Percentile(clientGaps, 0.50), 3),
        client_write_unavailable_s_p99 = Math.Round(Percentile(clientGaps, 0.99), 3),
        acknowledged_writes = acked,
        lost_acked_writes = lost,
    },
}));
return lost == 0 ? 0 : 1;

static void PrintIdle(List<(string Member, double Manager, double Watchdog, double Postgres)> idle, string window)
{
    foreach (var (member, manager, watchdog, postgres) in idle)
    {
        Console.WriteLine($"idle {member}: manager {manager:0.00}% of a core, watchdog {watchdog:0.00}%, postgres {postgres:0.00}% ({window})");
    }
}

static Dictionary<string, object> IdleJson(List<(string Member, double Manager, double Watchdog, double Postgres)> idle) =>
    idle.ToDictionary(i => i.Member, object (i) => new { manager = Math.Round(i.Manager, 2), watchdog = Math.Round(i.Watchdog, 2), postgres = Math.Round(i.Postgres, 2) });
