using System.Globalization;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>Where one pod's files are on the node (under its folder).</summary>
/// <param name="PodFolder">The pod's folder.</param>
/// <param name="Volumes">Each volume's folder, by volume name (the ServiceAccount's under <see cref="LaunchPlanner.ServiceAccountVolume"/>).</param>
public sealed record PodFiles(string PodFolder, IReadOnlyDictionary<string, string> Volumes)
{
    public string Hosts => Path.Combine(PodFolder, "hosts");

    public string Passwd => Path.Combine(PodFolder, "passwd");

    public string Group => Path.Combine(PodFolder, "group");

    public string Log(string container) => Path.Combine(PodFolder, "logs", container + ".log");

    public string Script(string container) => Path.Combine(PodFolder, container + ".sh");

    public string Overlay(string container, int index, string part) => Path.Combine(PodFolder, "overlays", container, index.ToString(CultureInfo.InvariantCulture), part);
}

/// <summary>
/// How the node starts a container, decided from the spec alone: its user (the container's securityContext over
/// the pod's; root when neither says), groups (fsGroup and supplementalGroups), mounts (each volumeMount with its
/// subPath; Secret and ConfigMap volumes always read-only; the ServiceAccount's files; the pod's hosts file and user
/// database, the node's command folders under <see cref="CommandsPath"/>), overlays for mount points the node lacks,
/// <c>PATH</c> (those folders first) and <c>HOME</c>
/// unless the environment sets them, and its command and args with <c>$(NAME)</c> references expanded.
/// </summary>
public static class LaunchPlanner
{
    public const string ServiceAccountVolume = "kube-api-access";
    public const string ServiceAccountPath = "/var/run/secrets/kubernetes.io/serviceaccount";
    public const string SystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Where the node's command folders appear in a container (first on its PATH).</summary>
    public const string CommandsPath = "/opt/one-machine-node/bin";

    /// <param name="pod">The pod.</param>
    /// <param name="container">The container to start.</param>
    /// <param name="environment">Its resolved environment.</param>
    /// <param name="files">Where the pod's files are.</param>
    /// <param name="searchPath">The node's folders for commands.</param>
    /// <param name="exists">Whether a path exists on the node (a file, or a folder when asked with a trailing slash).</param>
    public static LaunchSpec Plan(V1Pod pod, V1Container container, IReadOnlyList<KeyValuePair<string, string>> environment, PodFiles files,
        IReadOnlyList<string> searchPath, Func<string, bool> exists)
    {
        var (uid, gid, groups) = User(pod, container);
        var mounts = new List<Mount>();
        foreach (var mount in container.VolumeMounts ?? [])
        {
            if (!files.Volumes.TryGetValue(mount.Name, out var folder))
            {
                continue;
            }

            var source = string.IsNullOrEmpty(mount.SubPath) ? folder : Path.Combine(folder, mount.SubPath);
            var volume = pod.Spec.Volumes?.FirstOrDefault(v => v.Name == mount.Name);
            var readOnly = mount.ReadOnlyProperty == true || volume?.Secret is not null || volume?.ConfigMap is not null;
            mounts.Add(new Mount(source, mount.MountPath, readOnly, exists(source) && !exists(source + "/")));
        }

        if (files.Volumes.TryGetValue(ServiceAccountVolume, out var account))
        {
            mounts.Add(new Mount(account, ServiceAccountPath, true));
        }

        // The node's command folders, bound where no volume can hide them (a pod's /tmp emptyDir would hide a
        // folder of the node under /tmp), as an image's /usr/local/bin.
        var commands = searchPath.Select((folder, i) => new Mount(folder, $"{CommandsPath}/{i.ToString(CultureInfo.InvariantCulture)}", true)).ToList();
        mounts.AddRange(commands);
        mounts.Add(new Mount(files.Hosts, "/etc/hosts", true, true));
        mounts.Add(new Mount(files.Passwd, "/etc/passwd", true, true));
        mounts.Add(new Mount(files.Group, "/etc/group", true, true));

        mounts = Order(mounts);
        var overlays = LaunchScript.OverlayFolders(mounts.Select(m => m.Target), exists)
            .Select((folder, i) => (folder, files.Overlay(container.Name, i, "upper"), files.Overlay(container.Name, i, "work"))).ToList();

        var variables = environment.ToList();
        if (variables.All(v => v.Key != "PATH"))
        {
            variables.Insert(0, new("PATH", string.Join(':', commands.Select(c => c.Target).Append(SystemPath))));
        }

        if (variables.All(v => v.Key != "HOME"))
        {
            variables.Add(new("HOME", "/"));
        }

        var command = (container.Command ?? []).Concat(container.Args ?? []).Select(a => PodEnvironment.Expand(a, variables)).ToList();
        return new LaunchSpec(pod.Spec.Hostname ?? pod.Metadata.Name, overlays, mounts, container.WorkingDir ?? "/", files.Log(container.Name),
            uid, gid, groups, variables, command);
    }

    /// <summary>
    /// The order to bind mounts in: a mount whose target holds another's source (an emptyDir at /tmp when the node's
    /// folder is under /tmp) goes after it, or it would hide that source; a mount inside another's target goes after
    /// that one. Otherwise, and when the two rules disagree, the order given.
    /// </summary>
    public static List<Mount> Order(IReadOnlyList<Mount> mounts)
    {
        static bool Within(string path, string folder) =>
            path == folder || path.StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal);

        bool MustPrecede(Mount first, Mount second) =>
            (Within(first.Source, second.Target) && !Within(second.Source, first.Target)) || (Within(second.Target, first.Target) && first.Target != second.Target);

        var left = mounts.ToList();
        var ordered = new List<Mount>();
        while (left.Count > 0)
        {
            var next = left.FirstOrDefault(m => !left.Any(o => !ReferenceEquals(o, m) && MustPrecede(o, m))) ?? left[0];
            ordered.Add(next);
            left.Remove(next);
        }

        return ordered;
    }

    /// <summary>The container's uid, gid and supplementary groups.</summary>
    public static (long Uid, long Gid, IReadOnlyList<long> Groups) User(V1Pod pod, V1Container container)
    {
        var security = pod.Spec.SecurityContext;
        var groups = new List<long>();
        if (security?.FsGroup is { } fsGroup)
        {
            groups.Add(fsGroup);
        }

        groups.AddRange((security?.SupplementalGroups ?? []).Where(g => g is not null).Select(g => g!.Value));
        return (container.SecurityContext?.RunAsUser ?? security?.RunAsUser ?? 0, container.SecurityContext?.RunAsGroup ?? security?.RunAsGroup ?? 0, groups);
    }
}
