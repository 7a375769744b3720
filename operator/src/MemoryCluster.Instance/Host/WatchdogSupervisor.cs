using System.Diagnostics;
using System.Globalization;
using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Runs the watchdog process beside the manager (started again whenever it exits) and writes the deadline the node
/// arms or disarms to <c>DATA_ROOT/watchdog.deadline</c>, synchronously, before the node's next action is carried out.
/// </summary>
internal sealed partial class WatchdogSupervisor : BackgroundService
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>util-linux's setsid (Debian's essential set, so also in the instance image).</summary>
    private const string SetsidPath = "/usr/bin/setsid";

    private readonly InstanceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private Process? _process;

    public WatchdogSupervisor(InstanceOptions options, NodeDriver driver, TimeProvider time, ILogger<WatchdogSupervisor> logger)
    {
        _options = options;
        _time = time;
        _logger = logger;
        driver.Handle<ArmWatchdog>(a => WatchdogDeadline.Write(DeadlineFile, driver.ToTimestamp(a.Deadline)));
        driver.Handle<DisarmWatchdog>(_ => WatchdogDeadline.Write(DeadlineFile, null));
    }

    public string DeadlineFile => Path.Combine(_options.DataRoot, "watchdog.deadline");

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Disarmed before the process starts: a deadline left by an earlier life must not fire on what starts now.
        WatchdogDeadline.Write(DeadlineFile, null);
        StartProcess();
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);

        // PostgreSQL is stopped by now (the supervisor stops first): nothing may write, and the watchdog exits by itself.
        WatchdogDeadline.Write(DeadlineFile, null);
        _process?.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(CheckInterval, _time, stoppingToken).ConfigureAwait(false);
                if (_process is { HasExited: true } dead)
                {
                    Log.Exited(_logger, dead.ExitCode);
                    dead.Dispose();
                    _process = null;
                    StartProcess();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void StartProcess()
    {
        if (_options.WatchdogCommand is not { Count: > 0 } command)
        {
            Log.None(_logger);
            return;
        }

        // IMPORTANT: the watchdog runs in a session of its own, so that a stop of the manager's process group
        // (kill -STOP -PGID, Ctrl-Z in a terminal) cannot freeze the one process that fences a frozen manager while
        // PostgreSQL's backends, each in its own session, go on committing. setsid execs in place (the child .NET
        // starts leads no group), so the process watched below is the watchdog itself.
        var isolated = File.Exists(SetsidPath);
        var info = new ProcessStartInfo(isolated ? SetsidPath : command[0]) { UseShellExecute = false, WorkingDirectory = "/" };
        if (!isolated)
        {
            Log.NoSetsid(_logger, SetsidPath);
        }

        foreach (var argument in (isolated ? command : command.Skip(1)).Concat(["--data-dir", _options.DataDirectory, "--deadline-file", DeadlineFile, "--manager-pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)]))
        {
            info.ArgumentList.Add(argument);
        }

        _process = Process.Start(info);
    }

    private static partial class Log
    {
        [LoggerMessage(110, LogLevel.Warning, "no watchdog process configured: a hung manager cannot be fenced by anything but its own lease rule")]
        public static partial void None(ILogger logger);

        [LoggerMessage(111, LogLevel.Warning, "the watchdog exited with code {Code}; starting it again")]
        public static partial void Exited(ILogger logger, int code);

        [LoggerMessage(112, LogLevel.Warning, "no {Path}: the watchdog shares the manager's process group, and a stop of that group freezes both")]
        public static partial void NoSetsid(ILogger logger, string path);
    }
}
