using System.Diagnostics;
using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Instance.Tests.Host;

/// <summary>Fencing on real processes: SIGKILL by working directory, and the watchdog process's rules.</summary>
public sealed class FencingTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mc-fence-");
    private readonly List<Process> _started = [];

    private Process StartIn(string directory, string script)
    {
        var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", script]) { WorkingDirectory = directory, UseShellExecute = false })!;
        _started.Add(process);
        return process;
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Fencing_kills_every_process_in_the_data_directory_including_detached_and_stopped_ones()
    {
        var data = _dir.CreateSubdirectory("pgdata").FullName;
        var other = _dir.CreateSubdirectory("elsewhere").FullName;

        // A parent with a child in its own session (as Postgres backends are), and one process stopped with SIGSTOP.
        StartIn(data, "setsid sleep 300 & sleep 300");
        var stopped = StartIn(data, "sleep 300");
        var bystander = StartIn(other, "sleep 300");
        await WaitForAsync(() => ProcessFence.ProcessesIn(data).Count >= 4, "the processes to start");
        Assert.Equal(0, ProcessSignals.Send(stopped.Id, ProcessSignals.SigStop));

        Assert.True(await ProcessFence.KillAllAsync(data, TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.Empty(ProcessFence.ProcessesIn(data));
        Assert.False(bystander.HasExited);
    }

    [Fact]
    public async Task Fencing_finds_and_kills_the_processes_of_a_data_directory_reached_through_a_symlink()
    {
        // The kernel shows a working directory with its symlinks resolved: a data root under a symlink (a mounted
        // volume, /tmp on some systems) must be resolved the same way, or the fence finds nothing and says done.
        var real = _dir.CreateSubdirectory("volume").CreateSubdirectory("pgdata").FullName;
        var link = Path.Combine(_dir.FullName, "data-root");
        File.CreateSymbolicLink(link, Path.Combine(_dir.FullName, "volume"));
        var data = Path.Combine(link, "pgdata");
        var postgres = StartIn(data, "sleep 300");
        await WaitForAsync(() => ProcessFence.ProcessesIn(real).Contains(postgres.Id), "the process to start");

        Assert.Contains(postgres.Id, ProcessFence.ProcessesIn(data));
        Assert.Equal(ProcessFence.Resolved(real), ProcessFence.Resolved(data + "/"));
        Assert.DoesNotContain("data-root", ProcessFence.Resolved(data), StringComparison.Ordinal);
        Assert.True(await ProcessFence.KillAllAsync(data, TimeSpan.FromSeconds(5), CancellationToken.None));
        await WaitForAsync(() => postgres.HasExited, "the process to die");
        Assert.Equal(Path.Combine(_dir.FullName, "gone"), ProcessFence.Resolved(Path.Combine(_dir.FullName, "gone")));
    }

    [Fact]
    public void Deadline_file_round_trips_and_refuses_garbage()
    {
        var file = Path.Combine(_dir.FullName, "deadline");
        var at = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
        WatchdogDeadline.Write(file, at);
        var read = WatchdogDeadline.Parse(File.ReadAllText(file));
        Assert.InRange(read!.Value, at - (Stopwatch.Frequency / 1000), at + (Stopwatch.Frequency / 1000));
        WatchdogDeadline.Write(file, null);
        Assert.Null(WatchdogDeadline.Parse(File.ReadAllText(file)));
        Assert.Throws<FormatException>(() => WatchdogDeadline.Parse("armed soon"));
    }

    [Fact]
    public async Task Watchdog_fences_whatever_runs_past_an_armed_deadline_and_leaves_a_disarmed_instance_alone()
    {
        var data = _dir.CreateSubdirectory("pgdata").FullName;
        var file = Path.Combine(_dir.FullName, "deadline");
        var manager = StartIn(_dir.FullName, "sleep 300");
        var victim = StartIn(data, "sleep 300");
        WatchdogDeadline.Write(file, null);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var watchdog = Watchdog.RunAsync(data, file, manager.Id, NullLogger.Instance, stop.Token);

        // Disarmed: several rounds pass (the file is read every 50 ms) and the process lives.
        await Task.Delay(400);
        Assert.False(victim.HasExited);

        WatchdogDeadline.Write(file, Stopwatch.GetTimestamp() - 1);
        await WaitForAsync(() => victim.HasExited, "the watchdog to kill the process");

        // Still past the armed deadline: a process started afterwards (a manager that paused between its lease
        // check and the start) is killed too, not only what ran when the deadline passed.
        var late = StartIn(data, "sleep 300");
        await WaitForAsync(() => late.HasExited, "the watchdog to kill a process started after the deadline");

        // The manager goes away: the watchdog, having fired for the armed deadline, exits by itself.
        manager.Kill();
        await manager.WaitForExitAsync();
        Assert.Equal(0, await watchdog.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    public void Dispose()
    {
        foreach (var process in _started)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }

        foreach (var pid in ProcessFence.ProcessesIn(_dir.FullName).Concat(Directory.Exists(Path.Combine(_dir.FullName, "pgdata")) ? ProcessFence.ProcessesIn(Path.Combine(_dir.FullName, "pgdata")) : []))
        {
            _ = ProcessSignals.Send(pid, ProcessSignals.SigKill);
        }

        _dir.Delete(recursive: true);
    }
}
