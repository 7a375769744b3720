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

/// <summary>The labeler of the local cluster: there is no pod to label.</summary>
public sealed class NoPodRoleLabeler : IPodRoleLabeler
{
    public Task SetRoleAsync(string? role, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Keeps the pod's role label on what this member is ready to serve: <c>primary</c> for a primary taking writes at
/// the current epoch, <c>replica</c> for a replica in recovery, nothing otherwise. Checked every 250 ms (a read of
/// the node's status), written only on change.
/// </summary>
internal sealed partial class RoleLabeler(NodeDriver driver, IPodRoleLabeler labeler, TimeProvider time, ILogger<RoleLabeler> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string? labelled = null;
        var first = true;
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var status = driver.Read((node, _) => node.Status());
                string? role = status switch
                {
                    { Role: InstanceRole.Primary, Ready: true } => "primary",
                    { Role: InstanceRole.Replica } => "replica",
                    _ => null,
                };
                if (role == labelled && !first)
                {
                    continue;
                }

                try
                {
                    await labeler.SetRoleAsync(role, stoppingToken).ConfigureAwait(false);
                    labelled = role;
                    first = false;
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

    private static partial class Log
    {
        [LoggerMessage(150, LogLevel.Warning, "labelling the pod as {Role} failed: {Error}")]
        public static partial void Failed(ILogger logger, string role, string error);
    }
}
