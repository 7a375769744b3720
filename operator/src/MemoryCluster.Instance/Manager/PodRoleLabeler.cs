namespace MemoryCluster.Instance.Manager;

/// <summary>
/// Tells the world this instance's role. In Kubernetes it labels the pod (<c>memorycluster.io/role</c>) so
/// the -rw and -ro Services select the right pods; the local cluster needs nothing.
/// </summary>
public interface IPodRoleLabeler
{
    Task SetRoleAsync(string role, CancellationToken cancellationToken);
}

/// <summary>The labeler of the local cluster: there is no pod to label.</summary>
public sealed class NoPodRoleLabeler : IPodRoleLabeler
{
    public Task SetRoleAsync(string role, CancellationToken cancellationToken) => Task.CompletedTask;
}
