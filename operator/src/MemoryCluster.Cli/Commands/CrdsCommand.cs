using System.CommandLine;
using MemoryCluster.Cli.Manifests;

namespace MemoryCluster.Cli.Commands;

/// <summary><c>memorycluster crds</c>: writes the CRD generated from the C# types, or checks the committed one.</summary>
internal static class CrdsCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--output", "-o")
        {
            Description = "Where to write the CRD ('-' for standard output).",
            DefaultValueFactory = _ => CrdFile.RelativePath,
        };
        var check = new Option<bool>("--check")
        {
            Description = "Do not write; exit 1 when the file differs from what the types generate.",
        };
        var command = new Command("crds", "Generate the MemoryCluster CustomResourceDefinition from the C# types.") { output, check };
        command.SetAction(result => Run(result.GetValue(output)!, result.GetValue(check)));
        return command;
    }

    private static int Run(string output, bool check)
    {
        var yaml = CrdFile.Generate();
        if (output == "-")
        {
            Console.Out.Write(yaml);
            return 0;
        }

        if (check)
        {
            var committed = File.Exists(output) ? File.ReadAllText(output) : null;
            if (committed == yaml)
            {
                Console.Out.WriteLine($"{output} is up to date");
                return 0;
            }

            Console.Error.WriteLine(committed is null
                ? $"{output} is missing; run `make crds`"
                : $"{output} differs from what the C# types generate; run `make crds` and commit the result");
            return 1;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, yaml);
        Console.Out.WriteLine($"wrote {output}");
        return 0;
    }
}
