using System.Text.Json.Nodes;
using MemoryCluster.Compute.Bench;

// Compute engine benchmark: ANN vs hnswlib-node, graph traversal vs recursive SQL, fusion latency.
// Progress on stderr; the last line on stdout is the JSON summary.
var settings = BenchSettings.Parse(args);
var summary = new JsonObject();
if (settings.Sections.Contains("ann") || settings.Sections.Contains("fusion"))
{
    var (ann, index, queries) = AnnBench.Run(settings);
    summary["ann"] = ann;
    summary["graph"] = null;
    summary["fusion"] = null;
    GC.KeepAlive(index);
    GC.KeepAlive(queries);
}

Console.Out.WriteLine(summary.ToJsonString());
