using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace MemoryCluster.Instance.Postgres;

/// <summary>
/// Stops a PostgreSQL for good, at once: SIGKILL to every process whose working directory is its data
/// directory. Postgres children call setsid and outlive a killed postmaster for a while, so neither the
/// postmaster's pid nor a process group finds them all; the working directory does (the postmaster chdirs
/// into the data directory and every child inherits it). SIGKILL also works on stopped (SIGSTOP) processes.
/// </summary>
public static partial class ProcessFence
{
    /// <summary>
    /// Pids of the processes working in <paramref name="dataDirectory"/>, however it is reached: the kernel shows a
    /// process's working directory with every symlink resolved, so the directory is resolved the same way first.
    /// </summary>
    public static IReadOnlyList<int> ProcessesIn(string dataDirectory)
    {
        var target = Resolved(dataDirectory);
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

    /// <summary>The absolute path with every symlink on the way resolved (<c>realpath(3)</c>); as given, made absolute, when it cannot be resolved (gone).</summary>
    public static string Resolved(string path)
    {
        var full = Path.GetFullPath(path);
        var resolved = RealPath(full, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return full.Length > 1 ? full.TrimEnd('/') : full;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved) ?? full;
        }
        finally
        {
            Free(resolved);
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPath(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr pointer);

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
