using System.Diagnostics;

namespace MemoryCluster.Cli.Tests;

/// <summary>Runs a program to its end from the repository root, with standard input given and both outputs read.</summary>
internal static class TestProcess
{
    /// <summary>
    /// The program's exit code and outputs. When it cannot be started (not installed), the test fails with
    /// <paramref name="missing"/>, which should say how to install it.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, IEnumerable<string> args, string? stdin, string missing, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = Repository.Root,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"{missing} ({e.Message})");
            throw;
        }

        using (process)
        {
            if (stdin is not null)
            {
                process.StandardInput.Write(stdin);
            }

            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish in {timeout.TotalSeconds} s");
            }

            return (process.ExitCode, stdout.Result, stderr.Result);
        }
    }

    /// <summary>
    /// Runs a program that goes on until interrupted: reads its standard output until <paramref name="enough"/> holds
    /// for what it printed, then sends SIGINT (as Ctrl-C does) and waits for it to exit; the process is killed when
    /// either takes longer than <paramref name="timeout"/>. The program starts with SIGINT's default action (through
    /// <c>env --default-signal=INT</c>): a process started with SIGINT ignored, as a shell's background job is,
    /// passes the ignore on to its children, and a program that inherits it rightly ignores Ctrl-C.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) RunUntil(string file, IEnumerable<string> args, Func<string, bool> enough, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("env", ["--default-signal=INT", file, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repository.Root };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = new System.Text.StringBuilder();
        var watch = Stopwatch.StartNew();
        try
        {
            var buffer = new char[4096];
            while (!enough(stdout.ToString()))
            {
                var read = process.StandardOutput.ReadAsync(buffer, 0, buffer.Length);
                if (!read.Wait(timeout - watch.Elapsed) || read.Result == 0)
                {
                    throw new TimeoutException($"{string.Join(' ', start.ArgumentList)} printed no more than this in {watch.Elapsed.TotalSeconds:0} s:\n{stdout}");
                }

                stdout.Append(buffer, 0, read.Result);
            }

            using (var interrupt = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                interrupt.WaitForExit();
            }

            var rest = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException($"{string.Join(' ', start.ArgumentList)} did not exit within 30 s of SIGINT ({SignalState(process.Id)}); it printed:\n{stdout}");
            }

            stdout.Append(rest.Result);
            return (process.ExitCode, stdout.ToString(), stderr.Result);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    // The signal masks and state of a process (from /proc), for a failure's message.
    private static string SignalState(int pid)
    {
        try
        {
            return string.Join(", ", File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("State", StringComparison.Ordinal) || l.StartsWith("Sig", StringComparison.Ordinal)).Select(l => l.Replace('\t', ' ')));
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }
}
