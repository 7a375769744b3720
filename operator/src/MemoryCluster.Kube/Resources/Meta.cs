using k8s.Models;

namespace MemoryCluster.Kube.Resources;

// The package models metav1's own types (V1ListMeta, V1Status, V1DeleteOptions, WatchEventType) and we use
// them. What stays here is what it has no shape for: a list page that also holds our own custom resource
// (its KubernetesList<T> needs T : IKubernetesObject, which MemoryCluster.Api cannot implement without the
// package), a parsed watch event, and the query parameters of a list and a watch.

/// <summary>A page of a list: <c>items</c> and the list's resourceVersion and continue token.</summary>
public sealed record KubeList<T>
{
    public string? ApiVersion { get; init; }

    public string? Kind { get; init; }

    public V1ListMeta Metadata { get; init; } = new();

    public IReadOnlyList<T> Items { get; init; } = [];
}

/// <summary>
/// One event of a watch. For bookmarks only <c>metadata.resourceVersion</c> of the object is set. ERROR events are
/// never delivered: the watch throws the matching exception instead.
/// </summary>
public sealed record WatchEvent<T>(k8s.WatchEventType Type, T Object, string? ResourceVersion);

/// <summary>Query parameters of a list.</summary>
public sealed record ListOptions
{
    public string? LabelSelector { get; init; }

    public string? FieldSelector { get; init; }

    public int? Limit { get; init; }

    public string? Continue { get; init; }

    public string? ResourceVersion { get; init; }

    /// <summary><c>NotOlderThan</c> or <c>Exact</c>; only with <see cref="ResourceVersion"/>.</summary>
    public string? ResourceVersionMatch { get; init; }
}

/// <summary>Query parameters of a watch.</summary>
public sealed record WatchOptions
{
    public string? LabelSelector { get; init; }

    public string? FieldSelector { get; init; }

    public string? ResourceVersion { get; init; }

    public bool AllowWatchBookmarks { get; init; } = true;

    /// <summary>The server closes the watch after this many seconds.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Cancel the watch when no byte arrives for this long (silent hangs of dead connections).</summary>
    public TimeSpan? IdleTimeout { get; init; }
}
