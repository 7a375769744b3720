using System.Diagnostics;

namespace MemoryCluster.E2e;

/// <summary>
/// The host programs some scenarios need beyond the cluster's own (nft for the partition scenarios, stress-ng for
/// cpu-stress), and the rules the partition scenarios put inside a member's network namespace. `make e2e`,
/// `make e2e-stress` and `make bench-failover` install the programs from Debian when missing (e2e/tools.sh).
/// </summary>
internal static class HostTools
{
    /// <summary>The one nftables table the suite adds in a namespace; removing it removes every rule of the suite.</summary>
    public const string Table = "memorycluster_e2e";

    private static readonly string[] SearchPath = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

    /// <summary>The full path of <paramref name="program"/>; throws naming the Debian package when it is missing.</summary>
    public static string Require(string program, string package) =>
        SearchPath.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{program} is not installed: apt-get install {package} (make e2e installs it; see e2e/README.md)");

    /// <summary>
    /// Puts <paramref name="input"/> and <paramref name="output"/> rules (nft syntax, one per line) in the suite's
    /// own table inside namespace <paramref name="ns"/>, replacing what the table held.
    /// </summary>
    public static void ApplyRules(string ns, IReadOnlyList<string> input, IReadOnlyList<string> output)
    {
        RemoveRules(ns);
        var script = $$"""
            table inet {{Table}} {
              chain input {
                type filter hook input priority 0; policy accept;
                {{string.Join("\n    ", input)}}
              }
              chain output {
                type filter hook output priority 0; policy accept;
                {{string.Join("\n    ", output)}}
              }
            }
            """;
        Run(["ip", "netns", "exec", ns, Require("nft", "nftables"), "-f", "-"], script);
    }

    /// <summary>Removes the suite's table from namespace <paramref name="ns"/>; nothing when it is not there.</summary>
    public static void RemoveRules(string ns)
    {
        var nft = Require("nft", "nftables");
        if (Run(["ip", "netns", "exec", ns, nft, "list", "tables"], null).Contains($"inet {Table}", StringComparison.Ordinal))
        {
            Run(["ip", "netns", "exec", ns, nft, "delete", "table", "inet", Table], null);
        }
    }

    /// <summary>Runs a program to its end (at most 30 s); throws with its error output when it fails.</summary>
    private static string Run(string[] command, string? stdin)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {command[0]}");
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{string.Join(' ', command)} did not finish in 30 s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', command)} failed ({process.ExitCode}): {stderr.Result.Trim()}");
        }

        return stdout.Result;
    }
}
