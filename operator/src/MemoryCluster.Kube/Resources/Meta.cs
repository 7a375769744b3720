using System.Text.Json;
using System.Text.Json.Serialization;

namespace MemoryCluster.Kube.Resources;

/// <summary>What every typed resource has.</summary>
public interface IKubernetesObject
{
    string ApiVersion { get; }

    string Kind { get; }

    Api.Meta.ObjectMeta Metadata { get; }
}

/// <summary><c>metav1.ListMeta</c>.</summary>
public sealed record ListMeta
{
    public string? ResourceVersion { get; init; }

    [JsonPropertyName("continue")]
    public string? Continue { get; init; }

    public long? RemainingItemCount { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>A page of a list: <c>items</c> and the list's resourceVersion.</summary>
public sealed record KubeList<T>
{
    public string? ApiVersion { get; init; }

    public string? Kind { get; init; }

    public ListMeta Metadata { get; init; } = new();

    public IReadOnlyList<T> Items { get; init; } = [];
}

/// <summary>Kubernetes' <c>metav1.Status</c>, the body of every error.</summary>
public sealed record Status
{
    public string? ApiVersion { get; init; }

    public string? Kind { get; init; }

    [JsonPropertyName("status")]
    public string? Outcome { get; init; }

    public string? Message { get; init; }

    public string? Reason { get; init; }

    public StatusDetails? Details { get; init; }

    public int? Code { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record StatusDetails
{
    public string? Name { get; init; }

    public string? Group { get; init; }

    public string? Kind { get; init; }

    public string? Uid { get; init; }

    public IReadOnlyList<StatusCause>? Causes { get; init; }

    public int? RetryAfterSeconds { get; init; }
}

public sealed record StatusCause
{
    public string? Reason { get; init; }

    public string? Message { get; init; }

    public string? Field { get; init; }
}

/// <summary>The kinds of watch event.</summary>
public enum WatchEventType
{
    Unknown = 0,
    Added,
    Modified,
    Deleted,
    Bookmark,
}

/// <summary>One event of a watch. For bookmarks only <c>metadata.resourceVersion</c> of the object is set.</summary>
public sealed record WatchEvent<T>(WatchEventType Type, T Object, string? ResourceVersion);

/// <summary>DELETE's <c>propagationPolicy</c>.</summary>
public enum PropagationPolicy
{
    Unknown = 0,
    Background,
    Foreground,
    Orphan,
}

/// <summary><c>metav1.DeleteOptions</c>.</summary>
public sealed record DeleteOptions
{
    public PropagationPolicy PropagationPolicy { get; init; } = PropagationPolicy.Background;

    /// <summary>Delete only if the object still has this uid.</summary>
    public string? PreconditionUid { get; init; }

    /// <summary>Delete only if the object still has this resourceVersion.</summary>
    public string? PreconditionResourceVersion { get; init; }
}

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
