using System.Globalization;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>A process of the node as <c>/proc/PID/stat</c> shows it: pid, parent pid, command name.</summary>
public readonly record struct ProcessEntry(int Pid, int ParentPid, string Command);

/// <summary>
/// The node's processes below one process (a container's), from <c>/proc</c>: how the node finds a process inside a
/// pod for a fault (kill -9 of the pod's PostgreSQL). Parsing and choosing are pure.
/// </summary>
public static class ProcessTree
{
    /// <summary>
    /// One <c>/proc/PID/stat</c> line: <c>PID (COMM) STATE PPID ...</c>. COMM may hold spaces and parentheses, so it
    /// runs to the last ')'. Null when the line is not of that shape.
    /// </summary>
    public static ProcessEntry? ParseStat(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var open = line.IndexOf('(', StringComparison.Ordinal);
        var close = line.LastIndexOf(')');
        if (open < 1 || close < open)
        {
            return null;
        }

        var rest = line[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return rest.Length >= 2
            && int.TryParse(line[..open].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            && int.TryParse(rest[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            ? new ProcessEntry(pid, parent, line[(open + 1)..close])
            : null;
    }

    /// <summary>Every process below <paramref name="root"/> (children, their children, ...), not the root itself.</summary>
    public static IReadOnlyList<ProcessEntry> Below(IEnumerable<ProcessEntry> all, int root)
    {
        var children = all.ToLookup(p => p.ParentPid);
        var found = new List<ProcessEntry>();
        var next = new Queue<int>([root]);
        var seen = new HashSet<int> { root };
        while (next.TryDequeue(out var pid))
        {
            foreach (var child in children[pid].Where(c => seen.Add(c.Pid)))
            {
                found.Add(child);
                next.Enqueue(child.Pid);
            }
        }

        return found;
    }

    /// <summary>
    /// The topmost processes named <paramref name="command"/> among <paramref name="processes"/>: those whose parent
    /// is not one of that name (for PostgreSQL, its postmaster, not the backends it forked).
    /// </summary>
    public static IReadOnlyList<ProcessEntry> Topmost(IReadOnlyList<ProcessEntry> processes, string command)
    {
        var named = processes.Where(p => p.Command == command).ToList();
        var pids = named.Select(p => p.Pid).ToHashSet();
        return [.. named.Where(p => !pids.Contains(p.ParentPid))];
    }

    /// <summary>The node's processes now (those that end while being read are left out).</summary>
    public static IReadOnlyList<ProcessEntry> Read()
    {
        var found = new List<ProcessEntry>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                continue;
            }

            try
            {
                if (ParseStat(File.ReadAllText(Path.Combine(folder, "stat"))) is { } entry)
                {
                    found.Add(entry);
                }
            }
            catch (IOException)
            {
                // It ended.
            }
        }

        return found;
    }
}
