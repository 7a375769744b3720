using System.Xml.Linq;
using MemoryCluster.Api;
using MemoryCluster.Api.Crd;

namespace MemoryCluster.Cli.Manifests;

/// <summary>The generated CRD file, as committed under <c>crds/</c>.</summary>
internal static class CrdFile
{
    /// <summary>Path of the CRD relative to the repository root.</summary>
    public const string RelativePath = "crds/memorycluster.io_memoryclusters.yaml";

    /// <summary>The Helm chart's copy of the CRD (Helm installs what is in a chart's <c>crds/</c>), kept equal to <see cref="RelativePath"/>.</summary>
    public const string ChartCopyRelativePath = "charts/memorycluster-operator/crds/memorycluster.io_memoryclusters.yaml";

    private const string Header =
        "# Generated from the C# types in operator/src/MemoryCluster.Api by `memorycluster crds` (make crds).\n" +
        "# Do not edit by hand: `make checks` fails when this file differs from what the types generate.\n";

    /// <summary>The CRD YAML, with descriptions from the API assembly's XML documentation.</summary>
    public static string Generate() => Header + YamlJson.FromJson(Build());

    /// <summary>The CRD as a JSON tree, with descriptions from the API assembly's XML documentation.</summary>
    public static System.Text.Json.Nodes.JsonObject Build()
    {
        var docsPath = Path.Combine(AppContext.BaseDirectory, typeof(MemoryClusterResource).Assembly.GetName().Name + ".xml");
        if (!File.Exists(docsPath))
        {
            throw new FileNotFoundException(
                $"the API's XML documentation is missing at {docsPath}; build with GenerateDocumentationFile=true", docsPath);
        }

        var docs = new XmlDocumentation(XDocument.Load(docsPath));
        return CrdBuilder.Build(docs);
    }
}
