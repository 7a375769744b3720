using System.Diagnostics;
using System.Globalization;

namespace MemoryCluster.Instance.Postgres;

/// <summary>
/// Stops a PostgreSQL for good, at once: SIGKILL to every process whose working directory is its data
/// directory. Postgres children call setsid and outlive a killed postmaster for a while, so neither the
/// postmaster's pid nor a process group finds them all; the working directory does (the postmaster chdirs
/// into the data directory and every child inherits it). SIGKILL also works on stopped (SIGSTOP) processes.
/// </summary>
public static class ProcessFence
{
    /// <summary>Pids of the processes working in <paramref name="dataDirectory"/> (resolved through symlinks).</summary>
    public static IReadOnlyList<int> ProcessesIn(string dataDirectory)
    {
        var target = Path.GetFullPath(dataDirectory).TrimEnd('/');
        var result = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var cwd = new FileInfo(Path.Combine(dir, "cwd")).LinkTarget;
                if (cwd is not null && cwd.TrimEnd('/') == target)
                {
                    result.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to look at.
            }
        }

        return result;
    }

    /// <summary>
    /// Kills every process in <paramref name="dataDirectory"/> and waits until none is left. True when none is
    /// left within <paramref name="budget"/>; false means some process survived (it is still being killed).
    /// </summary>
    public static async Task<bool> KillAllAsync(string dataDirectory, TimeSpan budget, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var pids = ProcessesIn(dataDirectory);
            if (pids.Count == 0)
            {
                return true;
            }

            foreach (var pid in pids)
            {
                _ = ProcessSignals.Send(pid, ProcessSignals.SigKill);
            }

            if (watch.Elapsed > budget)
            {
                return false;
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }
}
