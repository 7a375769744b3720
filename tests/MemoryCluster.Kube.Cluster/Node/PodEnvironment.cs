using System.Text;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>What a container's environment and files are made from, besides the pod itself.</summary>
/// <param name="Secrets">Secrets of the pod's namespace that exist, by name.</param>
/// <param name="ConfigMaps">ConfigMaps of the pod's namespace that exist, by name.</param>
/// <param name="Cluster">Variables every container gets (the API server's address, <c>PATH</c>).</param>
public sealed record PodInputs(
    IReadOnlyDictionary<string, V1Secret> Secrets,
    IReadOnlyDictionary<string, V1ConfigMap> ConfigMaps,
    IReadOnlyList<KeyValuePair<string, string>> Cluster);

/// <summary>A container's environment, or why it cannot start (the kubelet's <c>CreateContainerConfigError</c>).</summary>
public sealed record ContainerEnvironment(IReadOnlyList<KeyValuePair<string, string>> Variables, string? Error);

/// <summary>
/// A container's environment as the kubelet makes it: the cluster's variables and <c>HOSTNAME</c>, then
/// <c>envFrom</c> (ConfigMaps and Secrets, with a prefix), then <c>env</c> in order, later names replacing earlier
/// ones: plain values (with <c>$(NAME)</c> references to variables defined before), <c>fieldRef</c> (the pod's
/// name, namespace, uid, IP, node, ServiceAccount, a label or annotation), <c>secretKeyRef</c> and
/// <c>configMapKeyRef</c>. A missing Secret, ConfigMap or key that is not optional is an error naming it.
/// </summary>
public static class PodEnvironment
{
    public static ContainerEnvironment Resolve(V1Pod pod, V1Container container, PodInputs inputs)
    {
        var values = new List<KeyValuePair<string, string>>();
        void Set(string name, string value)
        {
            values.RemoveAll(v => v.Key == name);
            values.Add(new(name, value));
        }

        foreach (var (name, value) in inputs.Cluster)
        {
            Set(name, value);
        }

        Set("HOSTNAME", pod.Spec.Hostname ?? pod.Metadata.Name);
        var ns = pod.Metadata.NamespaceProperty;
        foreach (var source in container.EnvFrom ?? [])
        {
            var prefix = source.Prefix ?? "";
            if (source.ConfigMapRef is { } mapRef)
            {
                if (!inputs.ConfigMaps.TryGetValue(mapRef.Name, out var map))
                {
                    if (mapRef.Optional != true)
                    {
                        return Error($"configmap \"{mapRef.Name}\" not found");
                    }

                    continue;
                }

                foreach (var (key, value) in map.Data ?? new Dictionary<string, string>())
                {
                    Set(prefix + key, value);
                }
            }

            if (source.SecretRef is { } secretRef)
            {
                if (!inputs.Secrets.TryGetValue(secretRef.Name, out var secret))
                {
                    if (secretRef.Optional != true)
                    {
                        return Error($"secret \"{secretRef.Name}\" not found");
                    }

                    continue;
                }

                foreach (var (key, value) in secret.Data ?? new Dictionary<string, byte[]>())
                {
                    Set(prefix + key, Encoding.UTF8.GetString(value));
                }
            }
        }

        foreach (var variable in container.Env ?? [])
        {
            if (variable.ValueFrom is not { } from)
            {
                Set(variable.Name, Expand(variable.Value ?? "", values));
                continue;
            }

            if (from.FieldRef is { } field)
            {
                var value = Field(pod, field.FieldPath);
                if (value is null)
                {
                    return Error($"unsupported fieldPath: {field.FieldPath}");
                }

                Set(variable.Name, value);
            }
            else if (from.SecretKeyRef is { } secretKey)
            {
                if (!inputs.Secrets.TryGetValue(secretKey.Name, out var secret))
                {
                    if (secretKey.Optional == true)
                    {
                        continue;
                    }

                    return Error($"secret \"{secretKey.Name}\" not found");
                }

                if (secret.Data?.TryGetValue(secretKey.Key, out var bytes) != true)
                {
                    if (secretKey.Optional == true)
                    {
                        continue;
                    }

                    return Error($"couldn't find key {secretKey.Key} in Secret {ns}/{secretKey.Name}");
                }

                Set(variable.Name, Encoding.UTF8.GetString(bytes!));
            }
            else if (from.ConfigMapKeyRef is { } mapKey)
            {
                if (!inputs.ConfigMaps.TryGetValue(mapKey.Name, out var map))
                {
                    if (mapKey.Optional == true)
                    {
                        continue;
                    }

                    return Error($"configmap \"{mapKey.Name}\" not found");
                }

                if (map.Data?.TryGetValue(mapKey.Key, out var text) != true)
                {
                    if (mapKey.Optional == true)
                    {
                        continue;
                    }

                    return Error($"couldn't find key {mapKey.Key} in ConfigMap {ns}/{mapKey.Name}");
                }

                Set(variable.Name, text!);
            }
            else
            {
                return Error($"env {variable.Name}: valueFrom has no source this node supports (resourceFieldRef)");
            }
        }

        return new ContainerEnvironment(values, null);
    }

    /// <summary>The value of a downward-API field path, or null when the path is not one the kubelet supports.</summary>
    public static string? Field(V1Pod pod, string path) => path switch
    {
        "metadata.name" => pod.Metadata.Name,
        "metadata.namespace" => pod.Metadata.NamespaceProperty,
        "metadata.uid" => pod.Metadata.Uid,
        "spec.nodeName" => pod.Spec.NodeName ?? "",
        "spec.serviceAccountName" => pod.Spec.ServiceAccountName ?? "default",
        "status.podIP" or "status.hostIP" => pod.Status?.PodIP ?? "",
        "status.podIPs" or "status.hostIPs" => pod.Status?.PodIP ?? "",
        _ when Keyed(path, "metadata.labels") is { } key => pod.Metadata.Labels?.TryGetValue(key, out var v) == true ? v : "",
        _ when Keyed(path, "metadata.annotations") is { } key => pod.Metadata.Annotations?.TryGetValue(key, out var v) == true ? v : "",
        _ => null,
    };

    private static string? Keyed(string path, string prefix) =>
        path.StartsWith(prefix + "['", StringComparison.Ordinal) && path.EndsWith("']", StringComparison.Ordinal)
            ? path[(prefix.Length + 2)..^2]
            : null;

    /// <summary><c>$(NAME)</c> becomes the value of a variable defined before; <c>$$</c> is a literal <c>$</c>; anything else stays.</summary>
    public static string Expand(string value, IReadOnlyList<KeyValuePair<string, string>> defined)
    {
        var result = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '$' && i + 1 < value.Length && value[i + 1] == '$')
            {
                result.Append('$');
                i++;
                continue;
            }

            if (value[i] == '$' && i + 1 < value.Length && value[i + 1] == '(' && value.IndexOf(')', i + 2) is var end and > 0)
            {
                var name = value[(i + 2)..end];
                var found = defined.LastOrDefault(d => d.Key == name);
                if (found.Key is not null)
                {
                    result.Append(found.Value);
                    i = end;
                    continue;
                }
            }

            result.Append(value[i]);
        }

        return result.ToString();
    }

    private static ContainerEnvironment Error(string message) => new([], message);
}
