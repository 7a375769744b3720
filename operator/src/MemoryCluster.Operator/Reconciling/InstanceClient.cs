using System.Globalization;
using MemoryCluster.Instance.Api;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Reconciling;

/// <summary>How the operator talks to the instance managers of a cluster.</summary>
public interface IInstanceClient
{
    /// <summary>Each pod's <c>/status</c>, read in parallel; a pod that does not answer in time is an observation with an error.</summary>
    Task<IReadOnlyList<InstanceObservation>> ReadAsync(ClusterNames names, int pods, CancellationToken cancellationToken);

    /// <summary>
    /// The committed Raft membership (<c>GET /members</c>) from the first of <paramref name="ordinals"/> whose manager
    /// answers (the Raft leader's first: it knows who caught up); null when none does.
    /// </summary>
    Task<MembersDocument?> MembersAsync(ClusterNames names, IReadOnlyList<int> ordinals, CancellationToken cancellationToken);

    /// <summary>
    /// Carries out <paramref name="action"/> through the managers, signed with <paramref name="clusterKey"/>; the manager's
    /// answer. A switchover goes to the primary's manager; a membership change to the first of <paramref name="ordinals"/>
    /// that answers (any manager forwards it to the Raft leader).
    /// </summary>
    Task<ManagerAnswer> ActAsync(ClusterNames names, InstanceAction action, string? primary, IReadOnlyList<int> ordinals, byte[] clusterKey, CancellationToken cancellationToken);
}

/// <summary>
/// The instance managers' client of a replica under leader election: reads pass through; an action (switchover,
/// membership change) asks <paramref name="holdsLease"/> first and is refused with
/// <see cref="Kube.Controller.LeaseLostException"/> when this replica no longer holds the Lease by its own clock.
/// </summary>
public sealed class LeaseGuardedInstanceClient(IInstanceClient inner, Func<bool> holdsLease) : IInstanceClient
{
    public Task<IReadOnlyList<InstanceObservation>> ReadAsync(ClusterNames names, int pods, CancellationToken cancellationToken) =>
        inner.ReadAsync(names, pods, cancellationToken);

    public Task<MembersDocument?> MembersAsync(ClusterNames names, IReadOnlyList<int> ordinals, CancellationToken cancellationToken) =>
        inner.MembersAsync(names, ordinals, cancellationToken);

    public Task<ManagerAnswer> ActAsync(ClusterNames names, InstanceAction action, string? primary, IReadOnlyList<int> ordinals, byte[] clusterKey, CancellationToken cancellationToken) =>
        holdsLease()
            ? inner.ActAsync(names, action, primary, ordinals, clusterKey, cancellationToken)
            : throw new Kube.Controller.LeaseLostException($"{action.GetType().Name} of {action.Pod}");
}

/// <summary>
/// The instance managers over HTTP through the typed <see cref="InstanceApiClient"/>: each pod at its stable DNS
/// name through the headless Service (or where <see cref="Address"/> says, for tests).
/// </summary>
public sealed class HttpInstanceClient(HttpClient http, Func<ClusterNames, int, Uri>? address = null) : IInstanceClient
{
    /// <summary>How long one <c>/status</c> may take before the pod counts as unreachable.</summary>
    public TimeSpan StatusTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public Func<ClusterNames, int, Uri> Address { get; } = address ?? ((names, ordinal) =>
        new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{names.PodHost(ordinal)}:{ClusterPorts.Manager}/")));

    public async Task<IReadOnlyList<InstanceObservation>> ReadAsync(ClusterNames names, int pods, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(names);
        var client = new InstanceApiClient(http);
        var reads = Enumerable.Range(0, pods).Select(async ordinal =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StatusTimeout);
            try
            {
                var status = await client.StatusAsync(Address(names, ordinal), timeout.Token).ConfigureAwait(false);
                return new InstanceObservation(names.Pod(ordinal), status);
            }
            catch (InstanceApiException e)
            {
                return new InstanceObservation(names.Pod(ordinal), null, e.Message);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return new InstanceObservation(names.Pod(ordinal), null, $"no answer within {StatusTimeout.TotalSeconds:0.#} s");
            }
        });
        return await Task.WhenAll(reads).ConfigureAwait(false);
    }

    public async Task<MembersDocument?> MembersAsync(ClusterNames names, IReadOnlyList<int> ordinals, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(ordinals);
        var client = new InstanceApiClient(http);
        foreach (var ordinal in ordinals)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StatusTimeout);
            try
            {
                return await client.MembersAsync(Address(names, ordinal), timeout.Token).ConfigureAwait(false);
            }
            catch (InstanceApiException)
            {
                // The next one.
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Too slow: the next one.
            }
        }

        return null;
    }

    public async Task<ManagerAnswer> ActAsync(ClusterNames names, InstanceAction action, string? primary, IReadOnlyList<int> ordinals, byte[] clusterKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(ordinals);
        var client = new InstanceApiClient(http, clusterKey);
        switch (action)
        {
            case Switchover switchover:
                var at = primary is null ? 0 : Ordinal(names, primary);
                return await client.SwitchoverAsync(Address(names, at), switchover.Pod, cancellationToken).ConfigureAwait(false);
            case AddMember add:
                var member = new AddMemberRequest(add.Id.Value, add.Pod, names.PodHost(add.Ordinal), ClusterPorts.Postgres, ClusterPorts.Raft, ClusterPorts.Manager);
                return await AskAnyAsync(names, ordinals, uri => client.AddMemberAsync(uri, member, cancellationToken)).ConfigureAwait(false);
            case RemoveMember remove:
                return await AskAnyAsync(names, ordinals, uri => client.RemoveMemberAsync(uri, remove.Id.Value, cancellationToken)).ConfigureAwait(false);
            default:
                return new ManagerAnswer(false, $"{action.GetType().Name} is not a call to the instance managers");
        }
    }

    /// <summary>The answer of the first manager that answers; a refusal naming every one that did not.</summary>
    private async Task<ManagerAnswer> AskAnyAsync(ClusterNames names, IReadOnlyList<int> ordinals, Func<Uri, Task<ManagerAnswer>> ask)
    {
        var failures = new List<string>();
        foreach (var ordinal in ordinals)
        {
            try
            {
                return await ask(Address(names, ordinal)).ConfigureAwait(false);
            }
            catch (InstanceApiException e)
            {
                failures.Add($"{names.Pod(ordinal)}: {e.Message}");
            }
        }

        return new ManagerAnswer(false, failures.Count == 0 ? "no manager answers; ask again" : $"no manager answered ({string.Join("; ", failures)}); ask again");
    }

    /// <summary>The ordinal of a pod of the cluster (its name is CLUSTER-ORDINAL).</summary>
    public static int Ordinal(ClusterNames names, string pod)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(pod);
        var prefix = names.Cluster + "-";
        return pod.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(pod.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal)
            ? ordinal
            : throw new ArgumentException($"{pod} is not a pod of {names.Cluster}", nameof(pod));
    }
}
