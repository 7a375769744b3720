using System.Text;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>A folder (or, with <paramref name="IsFile"/>, a file) of the node bound into a container at <paramref name="Target"/>.</summary>
public sealed record Mount(string Source, string Target, bool ReadOnly, bool IsFile = false);

/// <summary>Everything one start of a container needs, decided by the node before it runs anything.</summary>
/// <param name="Hostname">The pod's hostname (its own UTS namespace).</param>
/// <param name="Overlays">Folders of the node made writable inside the pod only (an overlay over each), so mount points can be made there without touching the node: (folder, upper, work).</param>
/// <param name="Mounts">Volumes, the hosts file and the user database, in order.</param>
/// <param name="WorkingDir">Where the command starts.</param>
/// <param name="Log">The file its output goes to.</param>
/// <param name="Uid">The user it runs as.</param>
/// <param name="Gid">Its group.</param>
/// <param name="Groups">Its supplementary groups (fsGroup, supplementalGroups).</param>
/// <param name="Environment">Its whole environment.</param>
/// <param name="Command">Its command and arguments.</param>
public sealed record LaunchSpec(
    string Hostname,
    IReadOnlyList<(string Folder, string Upper, string Work)> Overlays,
    IReadOnlyList<Mount> Mounts,
    string WorkingDir,
    string Log,
    long Uid,
    long Gid,
    IReadOnlyList<long> Groups,
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    IReadOnlyList<string> Command);

/// <summary>
/// The shell script that becomes a container: run by <c>unshare</c> in new mount, UTS and PID namespaces (with its
/// own /proc, so the container sees only its own processes, as in a pod), it sets the hostname, lays the overlays
/// and bind mounts and replaces itself with the command under the container's user (no capabilities). Its output
/// goes to the log opened by the node before the namespaces are made (a volume mounted over the log's folder
/// cannot hide it). Every value is quoted for the shell; nothing in it is interpreted.
/// </summary>
public static class LaunchScript
{
    public static string Render(LaunchSpec spec)
    {
        var script = new StringBuilder();
        script.Append("set -eu\n");
        script.Append("hostname ").Append(Quote(spec.Hostname)).Append('\n');
        foreach (var (folder, upper, work) in spec.Overlays)
        {
            script.Append("mount -t overlay overlay -o ").Append(Quote($"lowerdir={folder},upperdir={upper},workdir={work}")).Append(' ').Append(Quote(folder)).Append('\n');
        }

        foreach (var mount in spec.Mounts)
        {
            if (mount.IsFile)
            {
                script.Append("mkdir -p ").Append(Quote(Path.GetDirectoryName(mount.Target) ?? "/")).Append('\n');
                script.Append("[ -e ").Append(Quote(mount.Target)).Append(" ] || touch ").Append(Quote(mount.Target)).Append('\n');
            }
            else
            {
                script.Append("mkdir -p ").Append(Quote(mount.Target)).Append('\n');
            }

            script.Append("mount --bind ").Append(Quote(mount.Source)).Append(' ').Append(Quote(mount.Target)).Append('\n');
            if (mount.ReadOnly)
            {
                script.Append("mount -o remount,bind,ro ").Append(Quote(mount.Target)).Append('\n');
            }
        }

        script.Append("cd ").Append(Quote(spec.WorkingDir)).Append('\n');
        var groups = spec.Groups.Count == 0 ? "--clear-groups" : "--groups=" + string.Join(",", spec.Groups);
        script.Append("exec setpriv --reuid=").Append(spec.Uid).Append(" --regid=").Append(spec.Gid).Append(' ').Append(groups)
            .Append(" --inh-caps=-all --bounding-set=-all -- env -i");
        foreach (var (name, value) in spec.Environment)
        {
            script.Append(' ').Append(Quote(name + "=" + value));
        }

        // The command through a shell's exec "$@": env would take a first word with "=" in it for a variable.
        script.Append(" /bin/sh -c 'exec \"$@\"' sh");
        foreach (var part in spec.Command)
        {
            script.Append(' ').Append(Quote(part));
        }

        script.Append('\n');
        return script.ToString();
    }

    /// <summary>A shell word that is exactly <paramref name="value"/>.</summary>
    public static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// The folders to lay an overlay over so every target can be made: for a target that does not exist, its
    /// deepest existing ancestor (shallowest first, each once).
    /// </summary>
    public static IReadOnlyList<string> OverlayFolders(IEnumerable<string> targets, Func<string, bool> exists)
    {
        var folders = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var target in targets)
        {
            if (exists(target))
            {
                continue;
            }

            var ancestor = Path.GetDirectoryName(target.TrimEnd('/'));
            while (ancestor is not null && ancestor != "/" && !exists(ancestor))
            {
                ancestor = Path.GetDirectoryName(ancestor);
            }

            if (ancestor is not null && ancestor != "/")
            {
                folders.Add(ancestor);
            }
        }

        return [.. folders.OrderBy(f => f.Count(c => c == '/')).ThenBy(f => f, StringComparer.Ordinal)];
    }
}
