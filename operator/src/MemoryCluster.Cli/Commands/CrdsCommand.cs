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
        var reference = new Option<string>("--api-reference")
        {
            Description = "The Markdown API reference whose generated field table is kept in step ('' to skip).",
            DefaultValueFactory = _ => ApiReference.RelativePath,
        };
        var chartCopy = new Option<string>("--chart-copy")
        {
            Description = "The Helm chart's copy of the CRD, written and checked with it ('' to skip).",
            DefaultValueFactory = _ => CrdFile.ChartCopyRelativePath,
        };
        var check = new Option<bool>("--check")
        {
            Description = "Do not write; exit 1 when the file differs from what the types generate.",
        };
        var command = new Command("crds", "Generate the MemoryCluster CustomResourceDefinition from the C# types.") { output, reference, chartCopy, check };
        command.SetAction(result => Run(result.GetValue(output)!, result.GetValue(reference)!, result.GetValue(chartCopy)!, result.GetValue(check)));
        return command;
    }

    private static int Run(string output, string reference, string chartCopy, bool check)
    {
        var yaml = CrdFile.Generate();
        if (output == "-")
        {
            Console.Out.Write(yaml);
            return 0;
        }

        var files = new List<(string Path, string Content)> { (output, yaml) };
        if (chartCopy.Length > 0)
        {
            files.Add((chartCopy, yaml));
        }

        if (reference.Length > 0)
        {
            if (!File.Exists(reference))
            {
                Console.Error.WriteLine($"{reference} is missing: it holds the prose around the generated field table");
                return 1;
            }

            files.Add((reference, ApiReference.Update(File.ReadAllText(reference), CrdFile.Build())));
        }

        var status = 0;
        foreach (var (path, content) in files)
        {
            status = Math.Max(status, check ? Check(path, content) : Write(path, content));
        }

        return status;
    }

    private static int Check(string path, string content)
    {
        var committed = File.Exists(path) ? File.ReadAllText(path) : null;
        if (committed == content)
        {
            Console.Out.WriteLine($"{path} is up to date");
            return 0;
        }

        Console.Error.WriteLine(committed is null
            ? $"{path} is missing; run `make crds`"
            : $"{path} differs from what the C# types generate; run `make crds` and commit the result");
        return 1;
    }

    private static int Write(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, content);
        Console.Out.WriteLine($"wrote {path}");
        return 0;
    }
}
