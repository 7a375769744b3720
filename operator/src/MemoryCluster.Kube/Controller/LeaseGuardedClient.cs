using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Controller;

/// <summary>A write refused because this replica no longer holds the leader Lease by its own clock.</summary>
public sealed class LeaseLostException(string verb)
    : InvalidOperationException($"{verb} refused: this replica no longer holds the leader Lease (its last renewal began longer ago than the renew deadline)");

/// <summary>
/// The client of the guarded work under leader election: reads and watches pass through; every write asks
/// <paramref name="holdsLease"/> first (<see cref="LeaderElector.HoldsLease"/>) and is refused with
/// <see cref="LeaseLostException"/> when it says no. Without it, a leader frozen past its lease (SIGSTOP, a stalled
/// node) runs on when it thaws: its informers deliver what changed meanwhile, and a reconcile can write before its
/// renew loop has seen the Lease gone (seen in e2e-kube scenario 6). A request already sent when the process froze
/// is beyond any client's reach; the writes of the operator that matter carry resourceVersions or are
/// idempotent applies.
/// </summary>
public sealed class LeaseGuardedClient(IKubeApiClient inner, Func<bool> holdsLease) : IKubeApiClient
{
    public Task<T> GetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken cancellationToken)
        where T : class => inner.GetAsync(type, ns, name, cancellationToken);

    public Task<KubeList<T>> ListAsync<T>(ResourceType<T> type, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class => inner.ListAsync(type, ns, options, cancellationToken);

    public IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceType<T> type, string? ns, WatchOptions options, CancellationToken cancellationToken)
        where T : class => inner.WatchAsync(type, ns, options, cancellationToken);

    public Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class
    {
        Guard("create");
        return inner.CreateAsync(type, obj, cancellationToken);
    }

    public Task<T> ReplaceAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class
    {
        Guard("replace");
        return inner.ReplaceAsync(type, obj, cancellationToken);
    }

    public Task<T> ReplaceStatusAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class
    {
        Guard("status replace");
        return inner.ReplaceStatusAsync(type, obj, cancellationToken);
    }

    public Task<T> PatchAsync<T>(ResourceType<T> type, string? ns, string name, Patch patch, string? subresource, CancellationToken cancellationToken)
        where T : class
    {
        Guard("patch");
        return inner.PatchAsync(type, ns, name, patch, subresource, cancellationToken);
    }

    public Task<ApplyResult<T>> ApplyAsync<T>(ResourceType<T> type, T obj, string fieldManager, bool force, string? subresource, CancellationToken cancellationToken)
        where T : class
    {
        Guard("apply");
        return inner.ApplyAsync(type, obj, fieldManager, force, subresource, cancellationToken);
    }

    public Task<T?> DeleteAsync<T>(ResourceType<T> type, string? ns, string name, V1DeleteOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        Guard("delete");
        return inner.DeleteAsync(type, ns, name, options, cancellationToken);
    }

    private void Guard(string verb)
    {
        if (!holdsLease())
        {
            throw new LeaseLostException(verb);
        }
    }
}
