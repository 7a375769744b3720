using MemoryCluster.Instance.Node;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Tells the world this instance's role. In Kubernetes it labels the pod (<c>memorycluster.io/role</c>) so the -rw
/// and -ro Services select the right pods; the local cluster needs nothing.
/// </summary>
public interface IPodRoleLabeler
{
    /// <summary>Sets the label to <paramref name="role"/> (<c>primary</c> or <c>replica</c>), or removes it (null).</summary>
    Task SetRoleAsync(string? role, CancellationToken cancellationToken);
}

/// <summary>The role label of a member's pod, from its node status. Pure.</summary>
public static class PodRole
{
    /// <summary>
    /// <c>primary</c> only for a primary taking writes at the current epoch under its lease (also while its quorum commits wait for standbys: writes still go there); <c>replica</c> only for a
    /// replica ready for its role (streaming from the primary), so the -ro Service never sends reads to a replica that
    /// cannot follow; nothing otherwise (starting, fenced, diverged, rewinding, stopped).
    /// </summary>
    public static string? Of(NodeStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return status switch
        {
            { Role: InstanceRole.Primary, Ready: true } => "primary",

            // Quorum commits wait for a standby, but this is still where writes go: a client waits rather than finds no primary.
            { Role: InstanceRole.Primary, WaitingForStandbys: true } => "primary",
            { Role: InstanceRole.Replica, Ready: true } => "replica",
            _ => null,
        };
    }
}

/// <summary>
/// The labeler of a manager in a pod: a merge patch of its own pod's <c>memorycluster.io/role</c> label (null
/// removes it). The instance Role the operator makes allows exactly this: get and patch of the cluster's pods.
/// </summary>
public sealed class KubePodRoleLabeler(Kube.Client.IKubeApiClient client, string podNamespace, string podName) : IPodRoleLabeler
{
    public const string Label = "memorycluster.io/role";

    public async Task SetRoleAsync(string? role, CancellationToken cancellationToken)
    {
        var patch = new Kube.Client.MergePatch(new System.Text.Json.Nodes.JsonObject
        {
            ["metadata"] = new System.Text.Json.Nodes.JsonObject
            {
                ["labels"] = new System.Text.Json.Nodes.JsonObject { [Label] = role },
            },
        });
        try
        {
            await client.PatchAsync(Kube.Resources.ResourceTypes.Pod, podNamespace, podName, patch, null, cancellationToken).ConfigureAwait(false);
        }
        catch (Kube.Client.KubeApiException e)
        {
            throw new InvalidOperationException($"PATCH pod {podNamespace}/{podName}: {e.Message}", e);
        }
    }
}

/// <summary>The labeler of the local cluster: there is no pod to label.</summary>
public sealed class NoPodRoleLabeler : IPodRoleLabeler
{
    public Task SetRoleAsync(string? role, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Keeps the pod's role label on what this member is ready to serve (<see cref="PodRole.Of"/>). Checked on the manager's clock
/// every 250 ms (a read of the node's status); the label is written only on change, and again after a
/// failed write.
/// </summary>
internal sealed partial class RoleLabeler(NodeDriver driver, ManagerClock clock, IPodRoleLabeler labeler, ILogger<RoleLabeler> logger) : BackgroundService
{
    private const long CheckEveryMs = 250;

    private readonly SemaphoreSlim _changed = new(0, 1);
    private long _nextCheck;
    private string? _labelled;
    private bool _labelledOnce;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        clock.Subscribe(Check);
        try
        {
            while (true)
            {
                await _changed.WaitAsync(stoppingToken).ConfigureAwait(false);
                var role = Role();
                try
                {
                    await labeler.SetRoleAsync(role, stoppingToken).ConfigureAwait(false);
                    Volatile.Write(ref _labelled, role);
                    Volatile.Write(ref _labelledOnce, true);
                }
                catch (Exception e) when (e is HttpRequestException or IOException or InvalidOperationException)
                {
                    Log.Failed(logger, role ?? "(none)", e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>On the manager's clock: every 250 ms, wakes the writer when the label differs from the role.</summary>
    private long Check(long now)
    {
        if (now < _nextCheck)
        {
            return _nextCheck - now;
        }

        _nextCheck = now + CheckEveryMs;
        if (Volatile.Read(ref _labelledOnce) && Role() == Volatile.Read(ref _labelled))
        {
            return CheckEveryMs;
        }

        if (_changed.CurrentCount == 0)
        {
            try
            {
                _changed.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }

        return CheckEveryMs;
    }

    private string? Role() => PodRole.Of(driver.Read((node, _) => node.Status()));

    public override void Dispose()
    {
        _changed.Dispose();
        base.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(150, LogLevel.Warning, "labelling the pod as {Role} failed: {Error}")]
        public static partial void Failed(ILogger logger, string role, string error);
    }
}
