using System.Diagnostics;
using System.Globalization;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// The deadline the manager gives its watchdog: <c>armed NANOSECONDS</c> (a CLOCK_MONOTONIC instant, the clock
/// <see cref="Stopwatch"/> reads on Linux, shared by every process on the host) or <c>disarmed</c>.
/// </summary>
public static class WatchdogDeadline
{
    /// <summary>Writes the deadline by replacing the file, so a reader never sees half of it.</summary>
    public static void Write(string path, long? deadlineTimestamp)
    {
        var temp = path + ".new";
        File.WriteAllText(temp, deadlineTimestamp is { } d ? string.Create(CultureInfo.InvariantCulture, $"armed {ToNanoseconds(d)}\n") : "disarmed\n");
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The armed deadline in <see cref="Stopwatch"/> ticks; null when disarmed; throws on anything else.</summary>
    public static long? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        if (t == "disarmed")
        {
            return null;
        }

        if (t.StartsWith("armed ", StringComparison.Ordinal) && long.TryParse(t.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out var ns))
        {
            return (long)(ns * (Stopwatch.Frequency / 1e9));
        }

        throw new FormatException($"a watchdog deadline is 'armed NANOSECONDS' or 'disarmed', not '{t}'");
    }

    private static long ToNanoseconds(long timestamp) => (long)(timestamp * (1e9 / Stopwatch.Frequency));
}

/// <summary>
/// The watchdog: a process of its own beside the manager, so that a manager that hangs (SIGSTOP, a stuck runtime,
/// a long pause) or dies cannot leave a primary writing past its lease. It reads the deadline file every 250 ms,
/// and wakes at an armed deadline itself; while an armed deadline has passed it kills every process in the data
/// directory, again every 50 ms (a PostgreSQL started after the deadline by a manager that paused between its lease
/// check and the start is killed too). It exits when the manager is gone and nothing is armed, or the armed deadline has passed and
/// nothing is left to kill.
/// </summary>
public static partial class Watchdog
{
    private static readonly TimeSpan ReadEvery = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan KillEvery = TimeSpan.FromMilliseconds(50);

    public static async Task<int> RunAsync(string dataDirectory, string deadlineFile, int managerPid, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(logger);
        Log.Watching(logger, dataDirectory, managerPid);
        long? deadline = null;
        long? loggedFor = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                deadline = WatchdogDeadline.Parse(await File.ReadAllTextAsync(deadlineFile, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is IOException or FormatException)
            {
                // Keep the last deadline read: a missing or garbled file never disarms.
            }

            var managerAlive = Directory.Exists($"/proc/{managerPid}");
            var expired = deadline is { } d && Stopwatch.GetTimestamp() > d;
            var left = 0;
            if (expired)
            {
                var pids = ProcessFence.ProcessesIn(dataDirectory);
                left = pids.Count;
                if (pids.Count > 0)
                {
                    // IMPORTANT: every time, not once per deadline: whatever runs in the data directory past an armed
                    // deadline may be a writable primary.
                    if (loggedFor != deadline)
                    {
                        Log.Firing(logger, pids.Count, dataDirectory);
                        loggedFor = deadline;
                    }

                    var done = await ProcessFence.KillAllAsync(dataDirectory, TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
                    left = done ? 0 : 1;
                    Log.Fired(logger, done);
                }
            }

            if (!managerAlive && (deadline is null || (expired && left == 0)))
            {
                Log.ManagerGone(logger, managerPid);
                return 0;
            }

            // Idle reads are cheap and rare; an armed deadline is met on time (the file is re-read at it, since the
            // manager may have moved it on), and past it the checks are frequent.
            var wait = ReadEvery;
            if (deadline is { } armed)
            {
                var until = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), armed);
                wait = expired ? KillEvery : until < wait ? until + TimeSpan.FromMilliseconds(1) : wait;
            }

            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
        }

        return 0;
    }

    private static partial class Log
    {
        [LoggerMessage(30, LogLevel.Information, "watchdog: watching {DataDirectory} for manager {Pid}")]
        public static partial void Watching(ILogger logger, string dataDirectory, int pid);

        [LoggerMessage(31, LogLevel.Warning, "watchdog: the primary lease deadline passed; killing {Count} processes in {DataDirectory}")]
        public static partial void Firing(ILogger logger, int count, string dataDirectory);

        [LoggerMessage(32, LogLevel.Warning, "watchdog: fenced (every process gone: {Done})")]
        public static partial void Fired(ILogger logger, bool done);

        [LoggerMessage(33, LogLevel.Information, "watchdog: manager {Pid} is gone and nothing is armed; exiting")]
        public static partial void ManagerGone(ILogger logger, int pid);
    }
}
