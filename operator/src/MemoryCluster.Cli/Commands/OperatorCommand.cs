using System.CommandLine;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Cli.Manifests;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// <c>memorycluster operator</c>: the Kubernetes operator. <c>operator render</c> prints every object the planner
/// would apply for a MemoryCluster, with no cluster needed; running the operator itself is not in this build yet.
/// </summary>
internal static class OperatorCommand
{
    public static Command Create()
    {
        var command = new Command("operator", "Run the Kubernetes operator (watches MemoryClusters and what they own). Running it is not available in this build yet; 'operator render' is.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("memorycluster operator: running the operator is not available in this build yet ('memorycluster operator render -f FILE' is); README.md lists what works today");
            return 2;
        });
        command.Add(RenderCommand());
        return command;
    }

    private static Command RenderCommand()
    {
        var files = new Option<string[]>("--filename", "-f") { Description = "MemoryCluster manifest files ('-' for standard input).", Arity = ArgumentArity.OneOrMore, Required = true };
        var computeImage = new Option<string>("--compute-image") { Description = "Image of the compute pods (the operator's setting; the chart's values name it).", DefaultValueFactory = _ => OperatorSettings.Default.ComputeImage };
        var command = new Command("render", "Print, as YAML, every object the operator would apply for each MemoryCluster in the files; no cluster needed.") { files, computeImage };
        command.SetAction(result => Render(result.GetValue(files)!, OperatorSettings.Default with { ComputeImage = result.GetValue(computeImage)! }, Console.In, Console.Out, Console.Error));
        return command;
    }

    internal static int Render(IReadOnlyList<string> files, OperatorSettings settings, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var failed = false;
        var first = true;
        foreach (var file in files)
        {
            var clusters = ManifestFiles.Read(file, stdin, stderr);
            if (clusters is null)
            {
                failed = true;
                continue;
            }

            foreach (var manifest in clusters)
            {
                if (manifest.Errors.Count > 0 || manifest.Cluster is null)
                {
                    failed = true;
                    foreach (var error in manifest.Errors)
                    {
                        stderr.WriteLine($"{file}: memorycluster/{manifest.Name}: {error}");
                    }

                    continue;
                }

                var desired = ObjectPlanner.Render(manifest.Cluster, settings);
                foreach (var document in Documents(manifest.Cluster.Metadata.Uid is null, ClusterNames.Of(manifest.Cluster), desired))
                {
                    if (!first)
                    {
                        stdout.Write("---\n");
                    }

                    first = false;
                    stdout.Write(document);
                }
            }
        }

        return failed ? 1 : 0;
    }

    /// <summary>One YAML document per object; a Secret shows its fixed keys and names the keys generated at apply time.</summary>
    private static IEnumerable<string> Documents(bool noOwner, ClusterNames names, DesiredObjects desired)
    {
        var header = $"# memorycluster/{names.Cluster} in namespace {names.Namespace}";
        if (noOwner)
        {
            header += "; rendered from a file: the operator adds an owner reference to the MemoryCluster on every object";
        }

        var firstDocument = true;
        foreach (var secret in desired.Secrets)
        {
            var obj = new V1Secret
            {
                ApiVersion = "v1",
                Kind = "Secret",
                Metadata = new V1ObjectMeta { Name = secret.Name, NamespaceProperty = names.Namespace, Labels = ClusterLabels.For(names, ClusterLabels.PostgresComponent) },
                Type = secret.Type,
                StringData = secret.Fixed.Count == 0 ? null : new Dictionary<string, string>(secret.Fixed),
            };
            var generated = string.Join(", ", secret.Generated.Select(g => $"{g.Key} ({g.Value} random bytes)"));
            yield return (firstDocument ? header + "\n" : string.Empty) + $"# generated once by the operator when the Secret does not exist, never logged or rendered: {generated}\n" + Yaml(obj);
            firstDocument = false;
        }

        foreach (var obj in desired.Objects)
        {
            yield return Yaml(obj);
        }
    }

    private static string Yaml(object obj) => YamlJson.FromJson(JsonNode.Parse(KubernetesJson.Serialize(obj))!);
}
