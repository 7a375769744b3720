using System.Text.Json.Nodes;
using MemoryCluster.Compute.Bench;

// Compute engine benchmark: ANN vs hnswlib-node, graph traversal vs recursive SQL, fusion latency.
// Progress on stderr; the last line on stdout is the JSON summary.
var settings = BenchSettings.Parse(args);
var summary = new JsonObject { ["ann"] = null, ["graph"] = null, ["fusion"] = null };
if (settings.Sections.Contains("service"))
{
    // make bench-compute: the compute service against PostgreSQL, through its HTTP API.
    summary = new JsonObject { ["service"] = await ServiceBench.RunAsync(settings) };
    Console.Out.WriteLine(summary.ToJsonString());
    return;
}

if (settings.Sections.Contains("ann") || settings.Sections.Contains("fusion"))
{
    var (ann, index, ids, queries) = AnnBench.Run(settings);
    summary["ann"] = ann;
    if (settings.Sections.Contains("fusion"))
    {
        summary["fusion"] = FusionBench.Run(index, ids, queries);
    }
}

if (settings.Sections.Contains("graph"))
{
    summary["graph"] = GraphBench.Run(settings);
}

Console.Out.WriteLine(summary.ToJsonString());
