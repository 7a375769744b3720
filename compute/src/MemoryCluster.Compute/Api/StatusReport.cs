using System.Globalization;
using System.Text;
using MemoryCluster.Compute.Store;

namespace MemoryCluster.Compute.Api;

public sealed record PoolDto(string Endpoint, int Size, int Busy, int Idle, int Waiting, long Failed);

/// <summary>The local snapshot: written and read so far, set aside, and the commit of the last one (-1: none).</summary>
public sealed record SnapshotDto(bool Enabled, long Saves, long Loads, long Rejected, long Seq);

public sealed record StatusDto(
    string Phase,
    bool Ready,
    long Seq,
    string CommitId,
    long Loads,
    long Reconnects,
    int Triples,
    int Nodes,
    int Edges,
    IReadOnlyDictionary<string, int> Vectors,
    long SkippedEmbeddings,
    IReadOnlyList<PoolDto> Pools,
    SnapshotDto Snapshot,
    string? LastError);

/// <summary>The service's /status document and /metrics exposition, from the same figures.</summary>
public static class StatusReport
{
    public static StatusDto Of(ComputeContext c)
    {
        var (triples, nodes, edges, vectors) = c.Model.Read(v => (v.TripleCount, v.Graph.NodeCount, v.Graph.EdgeCount, v.Spaces.ToDictionary(s => s.Key, s => s.Value.Index.Count, StringComparer.Ordinal)));
        var position = c.Model.Position;
        return new StatusDto(
            c.Follower.Phase.ToString().ToLowerInvariant(),
            c.Follower.CaughtUp,
            position.Seq,
            position.CommitId.ToString(),
            c.Follower.Loads,
            c.Follower.Reconnects,
            triples,
            nodes,
            edges,
            vectors,
            c.Model.SkippedEmbeddings,
            [.. new[] { c.ReadWrite, c.ReadOnly }.OfType<Database>().Select(Pool)],
            new SnapshotDto(c.Follower.SnapshotsEnabled, c.Follower.SnapshotSaves, c.Follower.SnapshotLoads, c.Follower.SnapshotRejected, c.Follower.SnapshotSeq),
            c.Follower.LastError);
    }

    public static string Metrics(ComputeContext c)
    {
        var s = Of(c);
        var text = new StringBuilder();
        Family(text, "memorycluster_compute_feed_seq", "gauge", "The last feed commit this process applied.", ("", s.Seq));
        Family(text, "memorycluster_compute_ready", "gauge", "1 when loaded and caught up with the feed.", ("", s.Ready ? 1 : 0));
        Family(text, "memorycluster_compute_loads_total", "counter", "Full loads from PostgreSQL (the first one included).", ("", s.Loads));
        Family(text, "memorycluster_compute_feed_reconnects_total", "counter", "Times the feed connection failed and was made again.", ("", s.Reconnects));
        Family(text, "memorycluster_compute_snapshot_saves_total", "counter", "Local snapshots written.", ("", s.Snapshot.Saves));
        Family(text, "memorycluster_compute_snapshot_loads_total", "counter", "Starts served from the local snapshot instead of a full load.", ("", s.Snapshot.Loads));
        Family(text, "memorycluster_compute_snapshot_rejected_total", "counter", "Local snapshots found unusable (damaged, another format, or off the database's history).", ("", s.Snapshot.Rejected));
        Family(text, "memorycluster_compute_triples", "gauge", "Triples held.", ("", s.Triples));
        Family(text, "memorycluster_compute_graph_nodes", "gauge", "Entities in the graph.", ("", s.Nodes));
        Family(text, "memorycluster_compute_graph_edges", "gauge", "Edges in the graph (superseded ones included).", ("", s.Edges));
        Family(text, "memorycluster_compute_vectors", "gauge", "Vectors indexed per embedding model.", [.. s.Vectors.Select(v => ($"model=\"{Escape(v.Key)}\"", (double)v.Value))]);
        Family(text, "memorycluster_compute_skipped_embeddings", "gauge", "Embedding rows not indexed (wrong dimension or not finite).", ("", s.SkippedEmbeddings));
        foreach (var (name, help, pick) in new (string, string, Func<PoolDto, double>)[]
        {
            ("size", "The pool's bound.", p => p.Size),
            ("busy", "Connections checked out.", p => p.Busy),
            ("idle", "Connections open and free.", p => p.Idle),
            ("waiting", "Checkouts waiting for a connection.", p => p.Waiting),
        })
        {
            Family(text, $"memorycluster_compute_pool_{name}", "gauge", help, [.. s.Pools.Select(p => ($"endpoint=\"{p.Endpoint}\"", pick(p)))]);
        }

        Family(text, "memorycluster_compute_pool_failed_total", "counter", "Connections that failed or broke.", [.. s.Pools.Select(p => ($"endpoint=\"{p.Endpoint}\"", (double)p.Failed))]);
        return text.ToString();
    }

    private static PoolDto Pool(Database d)
    {
        var stats = d.Stats;
        return new PoolDto(d.Options.Name, stats.Size, stats.Busy, stats.Idle, stats.Waiting, stats.Failed);
    }

    private static void Family(StringBuilder text, string name, string type, string help, params (string Labels, double Value)[] samples)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (var (labels, value) in samples)
        {
            text.Append(name);
            if (labels.Length > 0)
            {
                text.Append('{').Append(labels).Append('}');
            }

            text.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
