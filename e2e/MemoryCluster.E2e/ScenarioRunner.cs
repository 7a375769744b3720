using System.Diagnostics;
using System.Globalization;
using System.Text;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Node;
using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>What one run of a scenario showed.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Run">1, 2, ...</param>
/// <param name="OldPrimary">The primary the fault aimed at.</param>
/// <param name="NewPrimary">The primary named after the cluster settled; null when none.</param>
/// <param name="FailoverSeconds">
/// From the fault to the end of the write outage it caused: the first write sent after the fault and after the
/// first attempt that failed after it (if any), acknowledged by the primary the cluster settled on; null when
/// none came within the bound.
/// </param>
/// <param name="LongestGapSeconds">The longest time between two acknowledged writes around the fault.</param>
/// <param name="Acked">Writes acknowledged so far in this scenario.</param>
/// <param name="Lost">Writes acknowledged by then but absent from the final primary, new in this run.</param>
/// <param name="Dual">Instants at which two or more instances accepted writes, during this run.</param>
/// <param name="FullStrengthSeconds">From the end of the fault (healed) to one ready primary and every replica streaming.</param>
/// <param name="Violations">The invariants this run broke, each said plainly; empty when it passed.</param>
internal sealed record RunResult(
    string Scenario,
    int Run,
    string OldPrimary,
    string? NewPrimary,
    double? FailoverSeconds,
    double LongestGapSeconds,
    long Acked,
    long Lost,
    IReadOnlyList<DualPrimaryInstant> Dual,
    double? FullStrengthSeconds,
    IReadOnlyList<string> Violations)
{
    public bool Passed => Violations.Count == 0;

    /// <summary>Of <see cref="Acked"/>: the writes acknowledged on the members' long-lived sessions.</summary>
    public long SessionAcked { get; init; }

    /// <summary>Inserts answered during this run with the synchronous-replication warning: not acknowledged.</summary>
    public long Warned { get; init; }

    /// <summary>How many times the epoch (the primary) changed during this run.</summary>
    public long EpochChanges { get; init; }

    /// <summary>What the scenario noted about this run.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>Every run of one scenario.</summary>
internal sealed record ScenarioReport(Scenario Scenario, string Mode, IReadOnlyList<RunResult> Runs, IReadOnlyList<string> Violations, string? Dump)
{
    public bool Passed => Violations.Count == 0 && Runs.All(r => r.Passed);

    /// <summary>Why the scenario did not run in this mode; null when it ran.</summary>
    public string? Skipped { get; init; }

    /// <summary>Inserts answered with the synchronous-replication warning over the whole scenario, those answered when the writers stopped included.</summary>
    public long WarnedTotal { get; init; }

    public IEnumerable<string> AllViolations => Violations.Concat(Runs.SelectMany(r => r.Violations.Select(v => $"run {r.Run}: {v}")));
}

/// <summary>What watches a scenario's cluster: the run clock's zero, the writers, the monitor and the managers' reports.</summary>
internal sealed record Watch(long Origin, AckedWriter Writer, SessionWriters Sessions, DualPrimaryMonitor Monitor, StatusWatcher Statuses);

/// <summary>Options shared by <c>make e2e</c>, <c>make bench-failover</c> and the default test.</summary>
/// <param name="Work">Folder the clusters live in (one subfolder each).</param>
/// <param name="Mode">quorum or async.</param>
internal sealed record RunnerOptions(string Work, string Mode)
{
    public static string DefaultWork => Path.Combine(Path.GetTempPath(), "memorycluster-e2e");
}

/// <summary>
/// Runs scenarios on fresh local clusters with a writer that follows the primary, a writer on a long-lived session
/// to every member, a dual-primary monitor and a reader of every manager's /status, and checks after every run: at
/// most one writable primary at every sampled instant, and no insert acknowledged by one member while another was
/// seen writable; no acknowledged write lost (quorum mode; counted and reported in async mode); a member that may
/// write has its watchdog armed; reported WAL positions never go back; back to full strength within a bound after
/// healing. Every wait is bounded; the cluster is brought down (processes continued, network removed) even on
/// failure; a failure report carries every manager's /status and log tail.
/// </summary>
internal sealed class ScenarioRunner(RunnerOptions options, TextWriter output)
{
    /// <summary>Bound on the return to full strength after the fault healed.</summary>
    public static readonly TimeSpan FullStrengthBound = TimeSpan.FromSeconds(120);

    /// <summary>Bound on the first acknowledged write on the final primary, counted from the fault.</summary>
    public static readonly TimeSpan WritesBound = TimeSpan.FromSeconds(90);

    /// <summary>How long the cluster must stay healthy to count as back at full strength.</summary>
    public static readonly TimeSpan Steady = TimeSpan.FromSeconds(3);

    private static readonly TimeSpan WriteInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>The cadence of each member's session writer.</summary>
    private static readonly TimeSpan SessionWriteInterval = TimeSpan.FromMilliseconds(20);

    public async Task<ScenarioReport> RunAsync(Scenario scenario, int runs, CancellationToken cancellationToken)
    {
        if (!scenario.Modes.Contains(options.Mode))
        {
            var skipped = new ScenarioReport(scenario, options.Mode, [], [], null) { Skipped = scenario.SkipWhy ?? $"runs in {string.Join(", ", scenario.Modes)} mode only" };
            output.WriteLine(Summary(skipped));
            return skipped;
        }

        // Bounded as a whole: bootstrap, every run, and the checks.
        var maxDuration = TimeSpan.FromMinutes(4) + (runs * (TimeSpan.FromMinutes(5) + scenario.ExtraTime));
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(maxDuration);
        var ct = limit.Token;
        output.WriteLine($"{scenario.Name}: {scenario.Description} ({scenario.Instances} instances, {options.Mode}{(scenario.NetworkNamespaces ? ", network namespaces" : string.Empty)})");
        var results = new List<RunResult>();
        var violations = new List<string>();
        string? dump = null;
        long warnedTotal = 0;
        E2eCluster? cluster = null;
        try
        {
            cluster = await E2eCluster.UpAsync(options.Work, scenario.Name, scenario.Instances, options.Mode, scenario.NetworkNamespaces, ct);
            var layout = cluster.Layout;
            var table = "e2e_" + scenario.Name.Replace('-', '_');
            await AckedWriter.CreateTableAsync(ConnectionStrings.ReadWrite(layout), table);
            await SessionWriter.CreateFunctionAsync(ConnectionStrings.ReadWrite(layout), table);
            var origin = Stopwatch.GetTimestamp();
            var acknowledging = scenario.WritableMeansCanAcknowledge && options.Mode == "quorum" ? layout.Members.Count / 2 : 0;
            await using var monitor = new DualPrimaryMonitor(layout, maxDuration, acknowledging);
            using var follower = new PrimaryFollower(layout);
            await using var statuses = new StatusWatcher(layout, maxDuration, follower.Observe);
            await using var writer = new AckedWriter(follower, WriteInterval, maxDuration, table);
            await using var sessions = new SessionWriters(layout, table, SessionWriteInterval, maxDuration);
            var watch = new Watch(origin, writer, sessions, monitor, statuses);
            if (!await writer.WaitForAckedAsync(20, TimeSpan.FromSeconds(60)))
            {
                violations.Add($"the writer got only {writer.Acked.Count} writes acknowledged before any fault");
            }
            else
            {
                var lost = new HashSet<long>();
                for (var run = 1; run <= runs; run++)
                {
                    var result = await RunOnceAsync(scenario, run, cluster, watch, lost, ct);
                    results.Add(result);
                    output.WriteLine("  " + Line(result));
                    if (result.FullStrengthSeconds is null)
                    {
                        violations.Add($"stopped after run {run}: the cluster did not return to full strength");
                        break;
                    }
                }
            }

            // Inserts still waiting are cancelled now, after every check: one that was waiting for its synchronous
            // standbys then returns with the warning, and counts as not acknowledged.
            await writer.StopAsync();
            await sessions.StopAsync();
            warnedTotal = writer.Warned.Count + sessions.Warned.Count;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or NpgsqlException or OperationCanceledException or IOException)
        {
            violations.Add($"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            if (cluster is not null)
            {
                if (violations.Count > 0 || results.Any(r => !r.Passed))
                {
                    dump = await cluster.DumpAsync(CancellationToken.None);
                }

                await cluster.DisposeAsync();
            }
        }

        var report = new ScenarioReport(scenario, options.Mode, results, violations, dump) { WarnedTotal = warnedTotal };
        output.WriteLine(Summary(report));
        if (!report.Passed)
        {
            foreach (var violation in report.AllViolations)
            {
                output.WriteLine($"  VIOLATION {violation}");
            }

            if (dump is not null)
            {
                output.WriteLine(dump);
            }
        }

        return report;
    }

    /// <summary>The per-scenario report line.</summary>
    public static string Summary(ScenarioReport report)
    {
        if (report.Skipped is { } why)
        {
            return $"{report.Scenario.Name,-32} SKIP  {report.Mode}: {why}";
        }

        var runs = report.Runs;
        var failovers = runs.Where(r => r.FailoverSeconds is not null).Select(r => r.FailoverSeconds!.Value).Order().ToList();
        return string.Create(
            CultureInfo.InvariantCulture,
            $"{report.Scenario.Name,-32} {(report.Passed ? "PASS" : "FAIL")}  {report.Mode} {report.Scenario.Instances}  runs {runs.Count}  " +
            $"failover p50 {Seconds(Percentile(failovers, 0.5))} p99 {Seconds(Percentile(failovers, 0.99))}  " +
            $"lost {runs.Sum(r => r.Lost)}/{runs.LastOrDefault()?.Acked ?? 0} acked  dual-primary instants {runs.Sum(r => r.Dual.Count)}  " +
            $"not-acked-with-warning {Math.Max(report.WarnedTotal, runs.Sum(r => r.Warned))}  epoch changes {runs.Sum(r => r.EpochChanges)}  " +
            $"primaries {string.Join(' ', runs.Select(r => $"{r.OldPrimary}->{r.NewPrimary ?? "?"}"))}");
    }

    /// <summary>Nearest-rank percentile of sorted values; null when there are none.</summary>
    public static double? Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? null : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static string Seconds(double? value) => value is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v:0.00} s") : "-";

    private static string Line(RunResult r)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"run {r.Run}: {(r.Passed ? "ok" : "FAILED")}; primary {r.OldPrimary} -> {r.NewPrimary ?? "?"}; ")
            .Append(CultureInfo.InvariantCulture, $"first write on it {Seconds(r.FailoverSeconds)} after the fault; longest write gap {r.LongestGapSeconds:0.00} s; ")
            .Append(CultureInfo.InvariantCulture, $"lost {r.Lost} of {r.Acked} acked ({r.SessionAcked} on members' sessions); dual-primary instants {r.Dual.Count}; ")
            .Append(CultureInfo.InvariantCulture, $"not acknowledged (sync-rep warning) {r.Warned}; epoch changes {r.EpochChanges}; full strength {Seconds(r.FullStrengthSeconds)} after healing");
        foreach (var d in r.Dual.Take(5))
        {
            text.Append(CultureInfo.InvariantCulture, $"\n      dual primary at monitor time {d.At.TotalSeconds:0.00} s: {string.Join(", ", d.Writable)}");
        }

        foreach (var n in r.Notes)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n      note: {n}");
        }

        foreach (var v in r.Violations)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n      VIOLATION {v}");
        }

        return text.ToString();
    }

    private async Task<RunResult> RunOnceAsync(Scenario scenario, int run, E2eCluster cluster, Watch watch, HashSet<long> lost, CancellationToken ct)
    {
        var (origin, writer, sessions, monitor, statusWatcher) = watch;
        var violations = new List<string>();
        var local = cluster.Local;
        if (!await local.WaitHealthyAsync(FullStrengthBound, ct))
        {
            return new RunResult(scenario.Name, run, "?", null, null, 0, writer.Acked.Count + sessions.Writes.Count, 0, [], null, ["the cluster was not at full strength before the fault"]);
        }

        // Sessions opened before the fault: every member's writer and the monitor's session to every member.
        var members = cluster.Layout.Members.Select(m => m.Name).ToList();
        var notes = new List<string>();
        if (!await sessions.WaitForSessionsAsync(TimeSpan.FromSeconds(10), ct) || !await Poll.UntilAsync(() => monitor.OpenSessions.IsSupersetOf(members), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(50), ct))
        {
            notes.Add($"not every session was open before the fault: writers on {string.Join(", ", sessions.Open)}; monitor on {string.Join(", ", monitor.OpenSessions)}");
        }

        var statuses = await local.StatusAsync(ct);
        var primary = statuses.Single(s => s.Status is { Role: InstanceRole.Primary, Ready: true }).Member;
        var start = Stopwatch.GetTimestamp();
        var context = new FaultContext(cluster, writer, statusWatcher, primary, output, ct);
        await scenario.Inject(context);
        var healed = Stopwatch.GetTimestamp();

        double? fullStrength = null;
        if (await WaitSteadilyHealthyAsync(local, ct) is { } steadySince)
        {
            fullStrength = Math.Max(0, Stopwatch.GetElapsedTime(healed, steadySince).TotalSeconds);
        }
        else
        {
            violations.Add($"not back to full strength (one ready primary, every replica streaming, for {Steady.TotalSeconds:0} s on end) within {FullStrengthBound.TotalSeconds:0} s of healing: {LocalCluster.Assess(await local.StatusAsync(ct)).Summary}");
        }

        var finalPrimary = PrimaryFollower.NamedPrimary(await local.StatusAsync(ct));
        var final = cluster.Layout.Members.FirstOrDefault(m => m.Name == finalPrimary);
        double? failover = null;
        if (final is null)
        {
            violations.Add("no instance is named primary after the fault");
        }
        else
        {
            // Writes resumed on the final primary: a write sent after the fault, and after the first attempt that
            // failed after it (if any), acknowledged by it. (A killed postmaster's backends can still acknowledge a
            // write or two before they notice; those are not the end of the outage that follows.)
            var remaining = WritesBound - Stopwatch.GetElapsedTime(context.FaultAt);
            var count = writer.Acked.Count;
            await writer.WaitForAsync(ws => ws.Count > count && ws[^1].ServerPort == final.PgPort, remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
            await writer.WaitForAckedAsync(writer.Acked.Count + 5, TimeSpan.FromSeconds(10));
            var firstFailure = writer.FailedAt.FirstOrDefault(f => f >= context.FaultAt);
            var resumed = writer.Writes.FirstOrDefault(w => w.SentAt >= Math.Max(context.FaultAt, firstFailure) && w.ServerPort == final.PgPort);
            if (resumed.Id != 0 && Stopwatch.GetElapsedTime(context.FaultAt, resumed.AckedAt) <= WritesBound)
            {
                failover = Stopwatch.GetElapsedTime(context.FaultAt, resumed.AckedAt).TotalSeconds;
            }
            else
            {
                violations.Add($"writes did not resume on the primary {final.Name} within {WritesBound.TotalSeconds:0} s of the fault");
            }
        }

        foreach (var check in context.Checks)
        {
            if (check(statusWatcher) is { } violation)
            {
                violations.Add(violation);
            }
        }

        var end = Stopwatch.GetTimestamp();

        // Every acknowledged insert, from every writer, with the member that acknowledged it.
        var byPort = cluster.Layout.Members.ToDictionary(m => m.PgPort, m => m.Name);
        var sessionWrites = sessions.Writes;
        var all = writer.Writes.Concat(sessionWrites).ToList();
        var newlyLost = 0L;
        if (final is not null)
        {
            foreach (var id in await MissingAsync(cluster.Layout, final, scenarioTable: "e2e_" + scenario.Name.Replace('-', '_'), [.. all.Select(w => w.Id)], ct))
            {
                if (lost.Add(id))
                {
                    newlyLost++;
                }
            }
        }

        if (newlyLost > 0 && options.Mode == "quorum")
        {
            violations.Add($"{newlyLost} acknowledged writes are missing on the primary {final!.Name} (quorum mode must lose none): {Sample(lost, all, byPort, origin)}");
        }

        // A monitor that never got an answer would find no dual primary either: it must have seen the primary.
        if (final is not null && !monitor.WritableMembers(start, end).Contains(final.Name))
        {
            violations.Add($"the monitor never saw the primary {final.Name} accept writes during the run ({monitor.Samples} samples so far): it cannot vouch for the run");
        }

        var dual = monitor.Instants(start, end);
        if (scenario.WritableMeansCanAcknowledge && monitor.OutOfRecoveryInstants(start, end) is { Count: > 0 } outOfRecovery)
        {
            // Not a violation here: the fault keeps the old primary out of recovery; what counts is who could acknowledge.
            notes.Add($"{outOfRecovery.Count} instants with two or more instances out of recovery (not all able to acknowledge a commit), first at monitor time {outOfRecovery[0].At.TotalSeconds:0.00} s: {string.Join(", ", outOfRecovery[0].Writable)}");
        }

        if (dual.Count > 0)
        {
            violations.Add($"{dual.Count} instants with two or more writable instances, first at monitor time {dual[0].At.TotalSeconds:0.00} s: {string.Join(", ", dual[0].Writable)}");
        }

        var windowed = all.Where(w => w.AckedAt >= start && w.AckedAt <= end).Select(w => (byPort.GetValueOrDefault(w.ServerPort, $"port {w.ServerPort}"), w));
        var (executedWhileWritable, maybeWhileWritable) = StatusChecks.ExecutedWhileAnotherWritable(windowed, monitor.ServerAnswers());
        Add(violations, "executed while another member was writable", executedWhileWritable);
        if (maybeWhileWritable.Count > 0)
        {
            notes.Add($"{maybeWhileWritable.Count} acknowledged inserts executed while another member changed state, in the gap between two of its answers (order unknown): {string.Join("; ", StatusChecks.Capped(maybeWhileWritable, 3))}");
        }

        // The clients' intervals: a write whose answer was held up (a cut link) overlaps everything after its commit.
        // Only a clue, printed as a note; the servers' clocks above decide.
        if (StatusChecks.AckedWhileAnotherWritable(windowed, monitor.WritableSamples(start - Stopwatch.Frequency, end), origin) is { Count: > 0 } overlapping)
        {
            notes.Add($"{overlapping.Count} acknowledged inserts whose client interval (sent to acknowledged) overlaps another member's writable sample; by the servers' clocks {executedWhileWritable.Count} executed while it was writable: {string.Join("; ", StatusChecks.Capped(overlapping, 3))}");
        }

        var reports = statusWatcher.Samples();
        var inRun = reports.Where(r => r.AnsweredAt >= start && r.AnsweredAt <= end).ToList();
        Add(violations, "may write with the watchdog not armed", StatusChecks.UnarmedWriters(inRun, origin));
        Add(violations, "watchdog not armed while writable on a monitor session", StatusChecks.UnarmedWhileSessionWritable(monitor.SessionAnswers(start, end), inRun, origin));
        Add(violations, "WAL position went back", StatusChecks.PositionsBackwards(reports.Where(r => r.AnsweredAt <= end), origin, reportFrom: start));
        Add(violations, "replica position below what it acknowledged", StatusChecks.UnderReported([.. reports.Where(r => r.AnsweredAt <= end)], origin, reportFrom: start));

        if (scenario.KeepsThePrimary && StatusChecks.EpochChanges(reports, context.FaultAt, end) is > 0 and var changes)
        {
            violations.Add($"the epoch changed {changes} time(s) after the fault, which must leave the primary {context.Primary.Name} in place");
        }

        var warned = writer.Warned.Concat(sessions.Warned).Count(w => w.At >= start && w.At <= end);
        notes.AddRange(context.Notes);
        return new RunResult(
            scenario.Name,
            run,
            context.Primary.Name,
            final?.Name,
            failover,
            writer.LongestGap(context.FaultAt, end).TotalSeconds,
            all.Count,
            newlyLost,
            dual,
            fullStrength,
            violations)
        {
            SessionAcked = sessionWrites.Count,
            Warned = warned,
            EpochChanges = StatusChecks.EpochChanges(reports, start, end),
            Notes = notes,
        };
    }

    /// <summary>Adds each of <paramref name="found"/> (at most a few, then how many more) under one heading.</summary>
    private static void Add(List<string> violations, string what, IReadOnlyList<string> found)
    {
        foreach (var line in StatusChecks.Capped(found))
        {
            violations.Add($"{what}: {line}");
        }
    }

    /// <summary>A few of the lost ids, with who acknowledged them and when, for the report.</summary>
    private static string Sample(HashSet<long> lost, List<AckedWrite> all, Dictionary<int, string> byPort, long origin) =>
        string.Join("; ", all.Where(w => lost.Contains(w.Id)).Take(5).Select(w => $"id {w.Id} by {byPort.GetValueOrDefault(w.ServerPort, "?")} acknowledged at {StatusChecks.At(w.AckedAt, origin)}"));

    /// <summary>
    /// When the cluster became healthy for good: healthy in every check (every 200 ms) for <see cref="Steady"/> on
    /// end, so a /status that has not noticed the fault yet does not count. Null when not within the bound.
    /// </summary>
    private static async Task<long?> WaitSteadilyHealthyAsync(LocalCluster local, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        long? since = null;
        while (watch.Elapsed < FullStrengthBound)
        {
            if (LocalCluster.Assess(await local.StatusAsync(ct)).Healthy)
            {
                since ??= Stopwatch.GetTimestamp();
                if (Stopwatch.GetElapsedTime(since.Value) >= Steady)
                {
                    return since;
                }
            }
            else
            {
                since = null;
            }

            await Task.Delay(200, ct);
        }

        return null;
    }

    /// <summary>The acknowledged ids the instance does not hold (retried for a few seconds while it is unreachable).</summary>
    private static async Task<IReadOnlyList<long>> MissingAsync(LocalLayout layout, Peer member, string scenarioTable, IReadOnlyList<long> acked, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(ConnectionStrings.Direct(layout, member, pooled: false));
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await connection.OpenAsync(ct);
                break;
            }
            catch (NpgsqlException) when (attempt < 20)
            {
                await Task.Delay(500, ct);
            }
        }

        await using var command = new NpgsqlCommand($"select a.id from unnest($1::bigint[]) a(id) where not exists (select 1 from {scenarioTable} w where w.id = a.id)", connection);
        command.Parameters.AddWithValue(acked.ToArray());
        var missing = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            missing.Add(reader.GetInt64(0));
        }

        return missing;
    }
}
