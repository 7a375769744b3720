using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Postgres;

/// <summary>How to stop PostgreSQL, gentlest first (the signals the postmaster documents).</summary>
internal enum ShutdownMode
{
    Unknown = 0,

    /// <summary>SIGTERM: wait for clients to leave.</summary>
    Smart = 1,

    /// <summary>SIGINT: end sessions, checkpoint, ship the last WAL to connected standbys.</summary>
    Fast = 2,

    /// <summary>SIGQUIT: stop at once; crash recovery at next start.</summary>
    Immediate = 3,
}

/// <summary>
/// One running postmaster, the manager's direct child: started, logged, stopped with escalating signals,
/// and reaped, so a killed postmaster never lingers as a zombie holding postmaster.pid.
/// </summary>
internal sealed partial class PostgresProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ILogger _logger;

    private PostgresProcess(Process process, ILogger logger)
    {
        _process = process;
        _logger = logger;
        Exited = WaitAsync();
    }

    /// <summary>The postmaster's pid.</summary>
    public int Pid => _process.Id;

    /// <summary>Completes with the exit code when the postmaster exits, for whatever reason.</summary>
    public Task<int> Exited { get; }

    public bool HasExited => Exited.IsCompleted;

    /// <summary>Starts <c>postgres -D <paramref name="dataDirectory"/></c>; its log lines go to <paramref name="logger"/> and to <paramref name="onLine"/>.</summary>
    public static PostgresProcess Start(PgBinaries binaries, string dataDirectory, ILogger logger, Action<string>? onLine = null)
    {
        var process = new Process { StartInfo = binaries.StartInfo("postgres", ["-D", dataDirectory]), EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => LogLine(logger, e.Data, onLine);
        process.ErrorDataReceived += (_, e) => LogLine(logger, e.Data, onLine);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Log.Started(logger, process.Id, dataDirectory);
        return new PostgresProcess(process, logger);
    }

    /// <summary>Stops the postmaster: smart, then fast, then immediate, then SIGKILL, each with its own time limit.</summary>
    public async Task StopAsync(ShutdownMode gentlest, TimeSpan perStep, CancellationToken cancellationToken)
    {
        foreach (var (mode, signal) in new[] { (ShutdownMode.Smart, ProcessSignals.SigTerm), (ShutdownMode.Fast, ProcessSignals.SigInt), (ShutdownMode.Immediate, ProcessSignals.SigQuit) })
        {
            if (mode < gentlest)
            {
                continue;
            }

            if (HasExited)
            {
                return;
            }

            Log.Stopping(_logger, Pid, mode);
            _ = ProcessSignals.Send(Pid, signal);
            if (await Task.WhenAny(Exited, Task.Delay(perStep, cancellationToken)).ConfigureAwait(false) == Exited)
            {
                return;
            }
        }

        if (!HasExited)
        {
            Log.Killing(_logger, Pid);
            _process.Kill(entireProcessTree: true);
            await Exited.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!HasExited)
        {
            await StopAsync(ShutdownMode.Fast, TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
        }

        _process.Dispose();
    }

    private async Task<int> WaitAsync()
    {
        await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        _process.WaitForExit();
        Log.Exited(_logger, _process.Id, _process.ExitCode);
        return _process.ExitCode;
    }

    private static void LogLine(ILogger logger, string? line, Action<string>? onLine)
    {
        if (!string.IsNullOrEmpty(line))
        {
            Log.PostgresLine(logger, line);
            onLine?.Invoke(line);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "postgres started (pid {Pid}, data {DataDirectory})")]
        public static partial void Started(ILogger logger, int pid, string dataDirectory);

        [LoggerMessage(2, LogLevel.Information, "stopping postgres (pid {Pid}) with a {Mode} shutdown")]
        public static partial void Stopping(ILogger logger, int pid, ShutdownMode mode);

        [LoggerMessage(3, LogLevel.Warning, "postgres (pid {Pid}) ignored every shutdown signal; killing it")]
        public static partial void Killing(ILogger logger, int pid);

        [LoggerMessage(4, LogLevel.Information, "postgres (pid {Pid}) exited with code {ExitCode}")]
        public static partial void Exited(ILogger logger, int pid, int exitCode);

        [LoggerMessage(5, LogLevel.Information, "postgres: {Line}")]
        public static partial void PostgresLine(ILogger logger, string line);
    }
}
