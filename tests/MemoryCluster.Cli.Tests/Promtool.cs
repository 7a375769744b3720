using System.Diagnostics;

namespace MemoryCluster.Cli.Tests;

/// <summary>Prometheus's own checker (<c>promtool</c>, from Debian's prometheus package, which .ci/run installs).</summary>
internal static class Promtool
{
    /// <summary><c>promtool check metrics</c> on <paramref name="exposition"/>: its exit code and what it printed.</summary>
    public static async Task<(int Code, string Output)> CheckMetricsAsync(string exposition)
    {
        var path = new[] { "/usr/bin/promtool", "/usr/local/bin/promtool" }.FirstOrDefault(File.Exists);
        Assert.True(path is not null, "promtool is not installed: apt-get install prometheus (.ci/run does)");
        var start = new ProcessStartInfo(path!, ["check", "metrics"]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, output);
    }
}
