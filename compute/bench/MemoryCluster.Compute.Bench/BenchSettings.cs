namespace MemoryCluster.Compute.Bench;

/// <summary>Command line: --vectors DIR --graph FILE.tsv --cache DIR --peer DIR --cpp-peer FILE --rounds N --pg-bin DIR --sections ann,graph,fusion,service --triples N.</summary>
internal sealed record BenchSettings(
    string? VectorsDir,
    string? GraphFile,
    string CacheDir,
    string? PeerDir,
    string PgBin,
    IReadOnlySet<string> Sections)
{
    /// <summary>Triples the service section loads (default 1,000,000).</summary>
    public int Triples { get; init; } = 1_000_000;

    /// <summary>The compiled C++ hnswlib driver (compute/bench/peer/hnsw_cpp.cpp), or null to skip that peer.</summary>
    public string? CppPeer { get; init; }

    /// <summary>Rounds of the ANN comparison, each ours then C++ hnswlib (default 3; figures are the medians).</summary>
    public int Rounds { get; init; } = 3;

    public static BenchSettings Parse(string[] args)
    {
        string? vectors = null, graph = null, peer = null;
        var cache = Path.Combine(Path.GetTempPath(), "memorycluster-bench-cache");
        var pgBin = "/usr/lib/postgresql/15/bin";
        var sections = new HashSet<string>(["ann", "graph", "fusion"]);
        var triples = 1_000_000;
        string? cppPeer = null;
        var rounds = 3;
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
                case "--cpp-peer":
                    cppPeer = string.IsNullOrEmpty(value) ? null : Path.GetFullPath(value);
                    break;
                case "--rounds":
                    rounds = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                    if (rounds < 1)
                    {
                        throw new ArgumentException($"--rounds must be at least 1, not {rounds}.");
                    }

                    break;
                case "--pg-bin":
                    pgBin = value;
                    break;
                case "--triples":
                    triples = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
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
        return new BenchSettings(vectors, graph, cache, peer, pgBin, sections) { Triples = triples, CppPeer = cppPeer, Rounds = rounds };
    }
}
