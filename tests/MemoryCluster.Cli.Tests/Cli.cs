namespace MemoryCluster.Cli.Tests;

/// <summary>Runs the real <c>memorycluster</c> binary built next to the tests.</summary>
internal static class Cli
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => RunWithInput(null, args);

    public static (int ExitCode, string Stdout, string Stderr) RunWithInput(string? stdin, params string[] args) =>
        TestProcess.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "memorycluster.dll"), .. args], stdin, "dotnet is not on PATH", TimeSpan.FromSeconds(180));
}
