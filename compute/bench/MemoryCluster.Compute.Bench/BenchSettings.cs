namespace MemoryCluster.Compute.Bench;

/// <summary>Command line: --vectors DIR --graph FILE.tsv --cache DIR --peer DIR --pg-bin DIR --sections ann,graph,fusion.</summary>
internal sealed record BenchSettings(
    string? VectorsDir,
    string? GraphFile,
    string CacheDir,
    string? PeerDir,
    string PgBin,
    IReadOnlySet<string> Sections)
{
    public static BenchSettings Parse(string[] args)
    {
        string? vectors = null, graph = null, peer = null;
        var cache = Path.Combine(Path.GetTempPath(), "memorycluster-bench-cache");
        var pgBin = "/usr/lib/postgresql/15/bin";
        var sections = new HashSet<string>(["ann", "graph", "fusion"]);
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--vectors":
                    vectors = string.IsNullOrEmpty(value) ? null : value;
                    break;
                case "--graph":
                    graph = string.IsNullOrEmpty(value) ? null : value;
                    break;
                case "--cache":
                    cache = value;
                    break;
                case "--peer":
                    peer = string.IsNullOrEmpty(value) ? null : Path.GetFullPath(value);
                    break;
                case "--pg-bin":
                    pgBin = value;
                    break;
                case "--sections":
                    sections = [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                default:
                    throw new ArgumentException($"Unknown argument {args[i]}.");
            }

            i++;
        }

        Directory.CreateDirectory(cache);
        return new BenchSettings(vectors, graph, cache, peer, pgBin, sections);
    }
}
