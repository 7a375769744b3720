using k8s.Models;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Client;

/// <summary>
/// The verbs of the Kubernetes REST API over typed resources (shaped like KubernetesClient's <c>GenericClient</c>).
/// <c>ns</c> arguments are ignored for cluster-scoped types; null on a namespaced type means all namespaces
/// (list and watch) and is an error otherwise. Errors are <see cref="KubeApiException"/> subclasses.
/// </summary>
public interface IKubeApiClient
{
    Task<T> GetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken cancellationToken)
        where T : class;

    /// <summary>One page (when <see cref="ListOptions.Limit"/> is set) or the whole list.</summary>
    Task<KubeList<T>> ListAsync<T>(ResourceType<T> type, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class;

    /// <summary>
    /// A watch stream, read as it arrives. Ends when the server closes it; an ERROR event is thrown as the matching
    /// exception (410 → <see cref="GoneException"/>); no byte for <see cref="WatchOptions.IdleTimeout"/> throws
    /// <see cref="WatchIdleException"/>.
    /// </summary>
    IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceType<T> type, string? ns, WatchOptions options, CancellationToken cancellationToken)
        where T : class;

    Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class;

    /// <summary>PUT; needs metadata.resourceVersion, and a stale one throws <see cref="ConflictException"/>.</summary>
    Task<T> ReplaceAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class;

    /// <summary>PUT to the status subresource: only <c>.status</c> changes.</summary>
    Task<T> ReplaceStatusAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class;

    /// <summary>PATCH with a merge or JSON patch, to the object or (with <paramref name="subresource"/> "status") its status.</summary>
    Task<T> PatchAsync<T>(ResourceType<T> type, string? ns, string name, Patch patch, string? subresource, CancellationToken cancellationToken)
        where T : class;

    /// <summary>
    /// Server-side apply of <paramref name="obj"/> as <paramref name="fieldManager"/>: nulls are left out, and so
    /// are managedFields and the server-owned metadata; 201 (created) and 200 (updated) are both success.
    /// </summary>
    Task<ApplyResult<T>> ApplyAsync<T>(ResourceType<T> type, T obj, string fieldManager, bool force, string? subresource, CancellationToken cancellationToken)
        where T : class;

    /// <summary>
    /// DELETE with <paramref name="options"/> as the body (null: background propagation); returns the object when the
    /// server returns it (e.g. when finalizers delay the deletion), else null.
    /// </summary>
    Task<T?> DeleteAsync<T>(ResourceType<T> type, string? ns, string name, V1DeleteOptions? options, CancellationToken cancellationToken)
        where T : class;
}
