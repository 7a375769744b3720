using System.Globalization;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.E2e;

/// <summary>
/// The processes of one member, found the way the faults need them:
/// <list type="bullet">
/// <item>its manager: the pid in <c>manager.pid</c>; started through <c>setsid</c>, so that pid is also its process
/// group, which holds the manager and its postmaster;</item>
/// <item>its watchdog: started in a session of its own (so that a stop of the manager's group cannot freeze it),
/// found by its command line, which names the member's data folder;</item>
/// <item>its postmaster: line 1 of <c>pgdata/postmaster.pid</c>;</item>
/// <item>its whole PostgreSQL: every process whose working directory is the data folder. The backends call
/// setsid, so neither the postmaster's pid nor a process group finds them all; the working directory does (the
/// postmaster chdirs there and every child inherits it).</item>
/// </list>
/// </summary>
internal sealed class NodeProcesses(LocalLayout layout, Peer member)
{
    public const int SigKill = ProcessSignals.SigKill;
    public const int SigCont = ProcessSignals.SigCont;
    public const int SigStop = ProcessSignals.SigStop;

    public string DataDirectory => Path.Combine(layout.InstanceDirectory(member), "pgdata");

    public int? ManagerPid => new LocalCluster(layout, TextWriter.Null).RunningPid(member);

    public int? PostmasterPid
    {
        get
        {
            try
            {
                var first = File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).FirstOrDefault();
                return int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Directory.Exists($"/proc/{pid}") ? pid : null;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>The member's watchdog processes (normally one; a killed manager's may outlive it until its deadline is handled).</summary>
    public IReadOnlyList<int> WatchdogPids =>
    [
        .. Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0 && Title(pid) is var title && title.Contains(" watchdog ", StringComparison.Ordinal)
                && title.Contains($"--data-dir {DataDirectory} ", StringComparison.Ordinal)),
    ];

    /// <summary>Every process working in the data folder: the postmaster and all its children.</summary>
    public IReadOnlyList<int> PostgresPids => ProcessFence.ProcessesIn(DataDirectory);

    /// <summary>
    /// The PostgreSQL process whose title (PostgreSQL rewrites its command line: <c>postgres: mc-2: startup recovering
    /// ...</c>) names <paramref name="kind"/> (<c>startup</c>, <c>walreceiver</c>, ...); null when there is none.
    /// </summary>
    public int? PostgresProcess(string kind) =>
        PostgresPids.Cast<int?>().FirstOrDefault(pid => Title(pid!.Value).Contains($": {kind}", StringComparison.Ordinal));

    /// <summary>The command line of a process as <c>ps</c> shows it; empty when it is gone.</summary>
    public static string Title(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (IOException)
        {
            return string.Empty;
        }
        catch (UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    /// <summary>Sends <paramref name="signal"/> to one process.</summary>
    public static void SignalProcess(int pid, int signal) => Signal(pid, signal);

    /// <summary>kill -9 of the postmaster only (its children notice and exit).</summary>
    public bool KillPostmaster() => PostmasterPid is { } pid && Signal(pid, SigKill);

    /// <summary>kill -9 of the manager's process group, its watchdog and every PostgreSQL process, together: a node that lost power.</summary>
    public void KillNode() => KillNodes([this]);

    /// <summary>
    /// <see cref="KillNode"/> for several nodes at once: every process is found first (scanning /proc takes
    /// hundreds of milliseconds on a loaded host), then all are killed, so no node outlives another by a scan.
    /// </summary>
    public static void KillNodes(IReadOnlyList<NodeProcesses> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var targets = nodes
            .SelectMany(n => (n.ManagerPid is { } manager ? new[] { -manager } : []).Concat(n.WatchdogPids).Concat(n.PostgresPids))
            .ToList();
        foreach (var pid in targets)
        {
            Signal(pid, SigKill);
        }

        // Processes a node started while the others were found (a postmaster's new backend): killed as before.
        foreach (var pid in nodes.SelectMany(n => n.WatchdogPids.Concat(n.PostgresPids)))
        {
            Signal(pid, SigKill);
        }
    }

    /// <summary>Sends <paramref name="signal"/> to every PostgreSQL process; returns how many got it.</summary>
    public int SignalPostgres(int signal) => PostgresPids.Count(pid => Signal(pid, signal));

    /// <summary>Sends <paramref name="signal"/> to the manager's process group: the manager and its postmaster, not the watchdog.</summary>
    public bool SignalManagerGroup(int signal) => ManagerPid is { } pid && ProcessSignals.Send(-pid, signal) == 0;

    /// <summary>Sends <paramref name="signal"/> to the manager's pid only (not its group).</summary>
    public bool SignalManager(int signal) => ManagerPid is { } pid && Signal(pid, signal);

    /// <summary>
    /// Sends <paramref name="signal"/> to the manager's pid (not its group: the postmaster goes on) and to each of
    /// <paramref name="watchdogs"/>; false when the manager is not running.
    /// </summary>
    public bool SignalManagerAndWatchdogs(IReadOnlyList<int> watchdogs, int signal)
    {
        foreach (var pid in watchdogs)
        {
            Signal(pid, signal);
        }

        return SignalManager(signal);
    }

    /// <summary>SIGCONT to the manager's group, its watchdog and every PostgreSQL process: nothing of this member stays stopped.</summary>
    public void ContinueAll()
    {
        if (ManagerPid is { } manager)
        {
            Signal(-manager, SigCont);
        }

        foreach (var pid in WatchdogPids)
        {
            Signal(pid, SigCont);
        }

        SignalPostgres(SigCont);
    }

    private static bool Signal(int pid, int signal)
    {
        _ = ProcessSignals.Send(pid, signal);
        return true;
    }
}
