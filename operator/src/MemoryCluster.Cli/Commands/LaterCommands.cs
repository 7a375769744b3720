using System.CommandLine;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// The roles of the binary that are not built yet. Each is listed so that `memorycluster --help` shows the
/// whole shape of the tool, and each says plainly that it is not available rather than pretending to run.
/// </summary>
internal static class LaterCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Unavailable("compute", "Run the compute tier: graph, nearest-neighbour and fused queries over HTTP.");
    }

    private static Command Unavailable(string name, string description)
    {
        var command = new Command(name, description + " Not available in this build yet.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction(_ =>
        {
            Console.Error.WriteLine($"memorycluster {name}: not available in this build yet; README.md lists what works today");
            return 2;
        });
        return command;
    }
}
