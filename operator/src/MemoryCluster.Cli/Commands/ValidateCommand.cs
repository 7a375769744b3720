using System.CommandLine;
using MemoryCluster.Cli.Manifests;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// <c>memorycluster validate</c>: checks MemoryCluster manifests against every rule the API server and the
/// operator apply, without a cluster, and names the field path and the rule of each problem.
/// </summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "Manifest files ('-' for standard input).", Arity = ArgumentArity.ZeroOrMore };
        var filename = new Option<string[]>("--filename", "-f") { Description = "A manifest file, as kubectl takes it ('-' for standard input); may be repeated.", AllowMultipleArgumentsPerToken = false };
        var old = new Option<string?>("--old") { Description = "The manifest as it is now, to check an update (immutable fields, shrinking volumes)." };
        var command = new Command("validate", "Check MemoryCluster manifests against the API's schema (unknown fields too), defaults and rules.") { files, filename, old };
        command.SetAction(result =>
        {
            var all = (result.GetValue(filename) ?? []).Concat(result.GetValue(files) ?? []).ToList();
            if (all.Count == 0)
            {
                Console.Error.WriteLine("validate: name the manifests: `memorycluster validate FILE...` or `-f FILE` ('-' for standard input)");
                return 2;
            }

            return Run(all, result.GetValue(old), Console.Out, Console.Error);
        });
        return command;
    }

    internal static int Run(IReadOnlyList<string> files, string? oldFile, TextWriter stdout, TextWriter stderr)
    {
        string? oldYaml = null;
        if (oldFile is not null)
        {
            if (!File.Exists(oldFile))
            {
                stderr.WriteLine($"{oldFile}: no such file");
                return 2;
            }

            oldYaml = File.ReadAllText(oldFile);
        }

        var failed = false;
        foreach (var file in files)
        {
            var clusters = ManifestFiles.Read(file, Console.In, stderr, oldYaml);
            if (clusters is null)
            {
                failed = true;
                continue;
            }

            foreach (var cluster in clusters)
            {
                if (cluster.Errors.Count == 0)
                {
                    stdout.WriteLine($"{file}: memorycluster/{cluster.Name} is valid");
                    continue;
                }

                failed = true;
                foreach (var error in cluster.Errors)
                {
                    stderr.WriteLine($"{file}: memorycluster/{cluster.Name}: {error}");
                }
            }
        }

        return failed ? 1 : 0;
    }
}
