using System.CommandLine;
using MemoryCluster.Compute;
using MemoryCluster.Compute.Store;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// <c>memorycluster compute</c>: the compute service (the <c>NAME-compute</c> Deployment's process). Settings come
/// from flags, then <c>MEMORYCLUSTER_COMPUTE_*</c> variables (what the operator sets); bad ones are refused at start
/// with the key and why (exit 2).
/// </summary>
internal static class ComputeCommand
{
    public static Command Create()
    {
        var stdio = new Option<bool>("--stdio") { Description = "Serve the MCP tools over standard input and output (logs go to standard error)." };
        var portFile = new Option<string?>("--port-file") { Description = "Write the HTTP port into this file once listening (with --port 0, the port the system chose)." };
        var command = new Command("compute", "Run the compute tier: graph, nearest-neighbour and fused queries over HTTP and MCP, fed from PostgreSQL.") { stdio, portFile };
        var flags = ComputeSettings.Keys.ToDictionary(k => k, k => new Option<string?>("--" + k) { Description = ComputeSettings.Describe(k) });
        foreach (var flag in flags.Values)
        {
            command.Add(flag);
        }

        command.SetAction(async (result, cancellationToken) =>
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var key in ComputeSettings.Keys)
            {
                if ((result.GetValue(flags[key]) ?? Environment.GetEnvironmentVariable(ComputeSettings.EnvironmentName(key))) is { Length: > 0 } value)
                {
                    values[key] = value;
                }
            }

            foreach (var (fileKey, key) in new[] { ("token-file", "token"), ("password-file", "password") })
            {
                if (values.Remove(fileKey, out var path))
                {
                    if (!File.Exists(path))
                    {
                        await Console.Error.WriteLineAsync($"memorycluster compute: {fileKey}: no file at {path}").ConfigureAwait(false);
                        return 2;
                    }

                    values[key] = (await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)).Trim();
                }
            }

            var (options, errors) = ComputeSettings.Parse(values);
            if (options is null)
            {
                foreach (var error in errors)
                {
                    await Console.Error.WriteLineAsync($"memorycluster compute: {error}").ConfigureAwait(false);
                }

                return 2;
            }

            // With --stdio, standard output carries MCP messages: the log goes to standard error.
            using var loggers = result.GetValue(stdio) ? InstanceCommand.JsonLogs(toStandardError: true) : InstanceCommand.JsonLogs();
            try
            {
                var writePort = result.GetValue(portFile) is { Length: > 0 } path ? address => WritePort(path, address) : (Action<Uri>?)null;
                await ComputeHost.RunAsync(options with { Stdio = result.GetValue(stdio) }, loggers, writePort, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is StoreException or InvalidOperationException or IOException)
            {
                await Console.Error.WriteLineAsync($"memorycluster compute: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            return 0;
        });
        return command;
    }

    /// <summary>The port, written whole (a reader never sees half a number): a temporary file renamed over the target.</summary>
    private static void WritePort(string path, Uri address)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        File.Move(temporary, path, overwrite: true);
    }
}
