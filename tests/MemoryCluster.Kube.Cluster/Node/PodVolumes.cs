using System.Text;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>The files of a Secret, ConfigMap or ServiceAccount volume: relative path, content, mode.</summary>
public sealed record VolumeFile(string Path, byte[] Content, int Mode);

/// <summary>How the node makes one pod volume.</summary>
public abstract record VolumeSource(string Name);

/// <summary>Files written by the node (Secret, ConfigMap, the ServiceAccount's token).</summary>
public sealed record FilesVolume(string Name, IReadOnlyList<VolumeFile> Files) : VolumeSource(Name);

/// <summary>An empty folder that lives as long as the pod.</summary>
public sealed record EmptyVolume(string Name) : VolumeSource(Name);

/// <summary>A folder of the node that outlives the pod (a claim's, or a hostPath).</summary>
public sealed record FolderVolume(string Name, string Folder) : VolumeSource(Name);

/// <summary>
/// A pod's volumes as the kubelet makes them, decided before anything is written: a Secret's or ConfigMap's keys as
/// files (all, or the listed items, with <c>defaultMode</c> or the item's mode; 0644 unless said), an emptyDir, a
/// claim's folder, a hostPath; a Secret or ConfigMap that is missing (and not optional) or a claim not yet bound
/// is an error naming it. With an <c>fsGroup</c>, files are group-readable by it, as the kubelet makes them.
/// </summary>
public static class PodVolumes
{
    public static (IReadOnlyList<VolumeSource> Volumes, string? Error) Plan(V1Pod pod, PodInputs inputs, IReadOnlyDictionary<string, string> claimFolders)
    {
        var result = new List<VolumeSource>();
        var fsGroup = pod.Spec.SecurityContext?.FsGroup;
        foreach (var volume in pod.Spec.Volumes ?? [])
        {
            if (volume.Secret is { } secretSource)
            {
                if (!inputs.Secrets.TryGetValue(secretSource.SecretName, out var secret))
                {
                    if (secretSource.Optional == true)
                    {
                        result.Add(new FilesVolume(volume.Name, []));
                        continue;
                    }

                    return ([], $"MountVolume.SetUp failed for volume \"{volume.Name}\" : secret \"{secretSource.SecretName}\" not found");
                }

                var data = (secret.Data ?? new Dictionary<string, byte[]>()).ToDictionary(d => d.Key, d => d.Value, StringComparer.Ordinal);
                var files = Files(volume.Name, data, secretSource.Items, secretSource.DefaultMode, fsGroup, $"Secret {secretSource.SecretName}");
                if (files.Error is not null)
                {
                    return ([], files.Error);
                }

                result.Add(new FilesVolume(volume.Name, files.Files));
            }
            else if (volume.ConfigMap is { } mapSource)
            {
                if (!inputs.ConfigMaps.TryGetValue(mapSource.Name, out var map))
                {
                    if (mapSource.Optional == true)
                    {
                        result.Add(new FilesVolume(volume.Name, []));
                        continue;
                    }

                    return ([], $"MountVolume.SetUp failed for volume \"{volume.Name}\" : configmap \"{mapSource.Name}\" not found");
                }

                var data = (map.Data ?? new Dictionary<string, string>()).ToDictionary(d => d.Key, d => Encoding.UTF8.GetBytes(d.Value), StringComparer.Ordinal);
                foreach (var (key, value) in map.BinaryData ?? new Dictionary<string, byte[]>())
                {
                    data[key] = value;
                }

                var files = Files(volume.Name, data, mapSource.Items, mapSource.DefaultMode, fsGroup, $"ConfigMap {mapSource.Name}");
                if (files.Error is not null)
                {
                    return ([], files.Error);
                }

                result.Add(new FilesVolume(volume.Name, files.Files));
            }
            else if (volume.EmptyDir is not null)
            {
                result.Add(new EmptyVolume(volume.Name));
            }
            else if (volume.PersistentVolumeClaim is { } claim)
            {
                if (!claimFolders.TryGetValue(claim.ClaimName, out var folder))
                {
                    return ([], $"persistentvolumeclaim \"{claim.ClaimName}\" not found or not bound");
                }

                result.Add(new FolderVolume(volume.Name, folder));
            }
            else if (volume.HostPath is { } hostPath)
            {
                result.Add(new FolderVolume(volume.Name, hostPath.Path));
            }
            else
            {
                return ([], $"volume \"{volume.Name}\": a kind of volume this node does not make");
            }
        }

        return (result, null);
    }

    /// <summary>The mode a file gets: the item's, else the volume's default, else 0644; group-readable under an fsGroup.</summary>
    public static int Mode(int? item, int? defaultMode, long? fsGroup) => (item ?? defaultMode ?? Convert.ToInt32("644", 8)) | (fsGroup is null ? 0 : Convert.ToInt32("440", 8));

    private static (List<VolumeFile> Files, string? Error) Files(string volume, Dictionary<string, byte[]> data, IList<V1KeyToPath>? items, int? defaultMode, long? fsGroup, string what)
    {
        if (items is not { Count: > 0 })
        {
            return ([.. data.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => new VolumeFile(d.Key, d.Value, Mode(null, defaultMode, fsGroup)))], null);
        }

        var files = new List<VolumeFile>();
        foreach (var item in items)
        {
            if (!data.TryGetValue(item.Key, out var content))
            {
                return ([], $"MountVolume.SetUp failed for volume \"{volume}\" : configmap references non-existent config key: {item.Key} ({what})");
            }

            files.Add(new VolumeFile(item.Path, content, Mode(item.Mode, defaultMode, fsGroup)));
        }

        return (files, null);
    }
}
