using System.Diagnostics;

namespace MemoryCluster.Kube.Cluster.Local;

/// <summary>
/// The real kubectl against a kubeconfig: the way a user drives the one-machine cluster. With
/// <paramref name="plugins"/>, that folder comes first on its PATH (where kubectl finds <c>kubectl-memorycluster</c>).
/// </summary>
public sealed class Kubectl(string kubeconfig, string? plugins = null)
{
    /// <summary>Runs kubectl; its exit code and output (killed, with exit code -1 reported as such, after the timeout).</summary>
    public (int Code, string Stdout, string Stderr) Run(IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["KUBECONFIG"] = kubeconfig;
        if (plugins is not null)
        {
            start.Environment["PATH"] = plugins + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("kubectl is not on PATH");
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var ended = process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60));
        if (!ended)
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit();
        return (ended ? process.ExitCode : -1, stdout.Result, stderr.Result + (ended ? "" : $"\n(killed after {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:0} s)"));
    }

    /// <summary>Runs kubectl and throws, with its output, when it fails.</summary>
    public string RunOrThrow(IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var list = args.ToList();
        var (code, stdout, stderr) = Run(list, stdin, timeout);
        return code == 0 ? stdout : throw new InvalidOperationException($"kubectl {string.Join(' ', list)} exited {code}: {stderr}{stdout}");
    }

    /// <summary>Installs the chart's rendered objects into memorycluster-system and waits for the operator to be Available.</summary>
    public void InstallChart(string renderedChart, TimeSpan timeout)
    {
        // kubectl create sends protobuf, which the double does not read; apply sends JSON.
        RunOrThrow(["apply", "--server-side", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: memorycluster-system\n");
        RunOrThrow(["apply", "--server-side", "-f", renderedChart]);
        RunOrThrow(["-n", "memorycluster-system", "wait", "--for=condition=Available", "deployment", "--all", $"--timeout={(int)timeout.TotalSeconds}s"], timeout: timeout + TimeSpan.FromSeconds(20));
    }
}
