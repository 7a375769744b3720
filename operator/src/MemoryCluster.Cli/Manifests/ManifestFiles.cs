namespace MemoryCluster.Cli.Manifests;

/// <summary>Reads the MemoryClusters of a manifest file given on the command line, as kubectl's <c>-f</c> does.</summary>
internal static class ManifestFiles
{
    /// <summary>
    /// The MemoryClusters in <paramref name="file"/> ('-' is <paramref name="stdin"/>), each with the rules it
    /// breaks; null, after naming the problem on <paramref name="stderr"/>, when the file is missing, is not
    /// YAML or holds no MemoryCluster.
    /// </summary>
    public static IReadOnlyList<ClusterManifest>? Read(string file, TextReader stdin, TextWriter stderr, string? oldYaml = null)
    {
        string yaml;
        if (file == "-")
        {
            yaml = stdin.ReadToEnd();
        }
        else if (File.Exists(file))
        {
            yaml = File.ReadAllText(file);
        }
        else
        {
            stderr.WriteLine($"{file}: no such file");
            return null;
        }

        IReadOnlyList<ClusterManifest> clusters;
        try
        {
            clusters = ClusterManifest.Read(yaml, oldYaml);
        }
        catch (ManifestException e)
        {
            stderr.WriteLine($"{file}: not valid YAML: {e.Message}");
            return null;
        }

        if (clusters.Count == 0)
        {
            stderr.WriteLine($"{file}: holds no MemoryCluster");
            return null;
        }

        return clusters;
    }
}
