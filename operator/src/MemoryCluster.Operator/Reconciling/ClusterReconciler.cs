using System.Security.Cryptography;
using System.Text;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Tls;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Operator.Reconciling;

/// <summary>Settings of the reconciler.</summary>
public sealed record ReconcilerOptions
{
    /// <summary>The field manager of every server-side apply: one owner for every field the operator sets.</summary>
    public string FieldManager { get; init; } = ClusterLabels.Manager;

    /// <summary>How often a cluster's instances are read again when nothing else changes.</summary>
    public TimeSpan StatusPollInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>While something is under way (bootstrap, scale, rolling update, failover): read again this often.</summary>
    public TimeSpan BusyPollInterval { get; init; } = TimeSpan.FromSeconds(2);

    public OperatorSettings Settings { get; init; } = OperatorSettings.Default;

    /// <summary>Certificate lifetimes and the renewal rule.</summary>
    public TlsPolicy Tls { get; init; } = TlsPolicy.Default;
}

/// <summary>What one reconcile wrote, for logs, metrics and the benchmark.</summary>
public sealed record ReconcileWrites(int Created, int Applied, int Deleted, bool StatusWritten, int Events, string? Action);

/// <summary>
/// The executor: reads the MemoryCluster and what it owns from the caches and the instances from their managers,
/// asks the planners what should be, and only acts: creates missing Secrets, applies objects that differ, deletes
/// what is no longer wanted, carries out one instance action, writes the status if it changed, records Events.
/// </summary>
public sealed partial class ClusterReconciler(
    IKubeApiClient client,
    OwnedObjects owned,
    IInstanceClient instances,
    EventRecorder events,
    ReconcilerOptions? options = null,
    TimeProvider? time = null,
    ILogger? logger = null) : IReconciler<MemoryClusterResource>
{
    private readonly ReconcilerOptions _options = options ?? new ReconcilerOptions();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private long _writes;

    /// <summary>Writes made so far (creates, applies, deletes, status writes, events, instance actions).</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Called after every reconcile with what it wrote.</summary>
    public Action<string, ReconcileWrites>? Observer { get; init; }

    public async Task<ReconcileResult> ReconcileAsync(string key, MemoryClusterResource? current, CancellationToken cancellationToken)
    {
        if (current is null || current.Metadata.DeletionTimestamp is not null)
        {
            // Deleted: the garbage collector removes what it owns through the owner references.
            return ReconcileResult.Done;
        }

        var names = ClusterNames.Of(current);
        var ns = names.Namespace;
        var set = owned.StatefulSets.GetTyped(ns, names.StatefulSet);
        var errors = SpecValidator.Validate(current).Concat(ObservedRules.Check(current, set)).ToList();
        var counts = new Counts();
        if (errors.Count > 0)
        {
            // Nothing but the status and a Warning: an invalid spec changes no object.
            var invalid = StatusPlanner.Plan(new StatusInput(current, errors, WorkloadObservation.None, [], null, _time.GetUtcNow()));
            await WriteStatusAsync(current, invalid, counts, cancellationToken).ConfigureAwait(false);
            Observer?.Invoke(key, counts.ToWrites(null));
            return ReconcileResult.Terminal("invalid spec: " + string.Join("; ", errors));
        }

        // The instances first: the workload planner needs them to size the StatefulSet, and the membership to scale it.
        var pods = Math.Max(current.Spec.Instances, set?.Spec?.Replicas ?? 0);
        var observations = set is null ? [] : await instances.ReadAsync(names, pods, cancellationToken).ConfigureAwait(false);
        var view = ClusterView.Of(current, observations);
        var answering = Answering(observations, view);
        var membership = answering.Count == 0 ? null : await instances.MembersAsync(names, answering, cancellationToken).ConfigureAwait(false);
        var identities = IdentityPlanner.Plan(names, new IdentityInput(
            pods,
            current.Spec.Instances,
            set?.Spec?.Replicas,
            current.Status,
            membership?.Members.ToDictionary(m => m.Name, m => new MemberId(m.Id), StringComparer.Ordinal),
            membership is null ? null : [.. (membership.Removed ?? []).Select(id => new MemberId(id))]));
        var workload = WorkloadPlanner.Plan(WorkloadInputOf(current, set, observations, view, membership, identities));

        var desired = ObjectPlanner.Render(current, _options.Settings, workload.Replicas, identities);

        // The CA first: a CA Secret that cannot be used stops the reconcile before anything else is written.
        if (await EnsureTlsAsync(names, desired, counts, cancellationToken).ConfigureAwait(false) is { } tlsProblem)
        {
            await RecordAsync(current, new PlannedEvent(EventTypes.Warning, "InvalidCASecret", "Certificates", tlsProblem), cancellationToken).ConfigureAwait(false);
            Observer?.Invoke(key, counts.ToWrites(null));
            return ReconcileResult.Terminal(tlsProblem);
        }

        await EnsureSecretsAsync(current, names, desired, counts, cancellationToken).ConfigureAwait(false);
        await ApplyAsync(current, desired, counts, cancellationToken).ConfigureAwait(false);

        string? acted = null;
        if (workload.Action is { } action)
        {
            acted = await ActAsync(current, names, action, view.NamedPrimary, answering, counts, cancellationToken).ConfigureAwait(false);
        }

        var compute = owned.Deployments.GetTyped(ns, names.Compute);
        var workloads = new WorkloadObservation(set?.Spec?.Replicas, compute?.Spec?.Replicas, compute is null ? null : compute.Status?.AvailableReplicas ?? 0);
        var plan = StatusPlanner.Plan(new StatusInput(current, [], workloads, observations, workload.Progress, _time.GetUtcNow()));

        // The identities the render gave the pods, recorded so that the next reconcile gives the same.
        plan = plan with { Status = plan.Status with { Members = identities.ToStatus(names), FoundingMembers = [.. identities.Founders.Select(f => (long)f.Value)] } };
        var events = plan.Events.ToList();
        events.AddRange(ScaleEvents(current.Status, workload.Progress, current.Spec.Instances));
        await WriteStatusAsync(current, plan with { Events = events }, counts, cancellationToken).ConfigureAwait(false);

        // After the status: the status tells the truth even when the answer cannot be written.
        if (workload.Answer is { } answer)
        {
            await AnswerAsync(current, names, answer, counts, cancellationToken).ConfigureAwait(false);
        }

        Observer?.Invoke(key, counts.ToWrites(acted));

        var busy = workload.Progress is not null || plan.Status.Phase is not Phases.Healthy || workload.Action is not null;
        return ReconcileResult.RequeueAfter(busy ? _options.BusyPollInterval : _options.StatusPollInterval);
    }

    /// <summary>A user's switchover request answered: its annotation removed, and a refusal recorded as a Warning Event.</summary>
    private async Task AnswerAsync(MemoryClusterResource cluster, ClusterNames names, RequestAnswer answer, Counts counts, CancellationToken cancellationToken)
    {
        await client.PatchAsync(ResourceTypes.MemoryCluster, names.Namespace, names.Cluster, ClusterAnnotations.SwitchoverPatch(null), null, cancellationToken).ConfigureAwait(false);
        counts.Applied++;
        Interlocked.Increment(ref _writes);
        if (answer.Refused)
        {
            await RecordAsync(cluster, new PlannedEvent(EventTypes.Warning, "SwitchoverRefused", "Switchover", answer.Message), cancellationToken).ConfigureAwait(false);
        }

        LogAnswered(_logger, names.Namespace, names.Cluster, answer.Message);
    }

    private WorkloadInput WorkloadInputOf(MemoryClusterResource cluster, V1StatefulSet? set, IReadOnlyList<InstanceObservation> observations, ClusterView view, MembersDocument? membership, MemberIdentities identities)
    {
        var ns = ClusterNames.Of(cluster).Namespace;
        var pods = observations.Select((o, ordinal) =>
        {
            var pod = owned.Pods.GetTyped(ns, o.Pod);
            string? revision = null;
            pod?.Metadata.Labels?.TryGetValue("controller-revision-hash", out revision);
            return new PodView(o.Pod, ordinal, pod is not null && pod.Metadata.DeletionTimestamp is null, revision, o.Status?.Ready == true, o.Status is not null,
                identities.Ids[ordinal], o.Status is { } s ? new MemberId(s.Id) : null, o.Status?.Parameters?.PendingRestartNames,
                // Not Ready only when the kubelet says so: a pod with no Ready condition yet has no kubelet reporting on it.
                PodReady: pod?.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready") is not { Status: not "True" });
        }).ToList();
        var members = membership?.Members.Select(m => new MemberView(m.Name, new MemberId(m.Id), m.Voter)).ToList();
        return new WorkloadInput(cluster.Spec.Instances, set?.Spec?.Replicas, set?.Status?.UpdateRevision, members, membership?.ChangePending == true, view.NamedPrimary, view.PendingSwitchover, pods,
            ClusterAnnotations.RequestedSwitchover(cluster.Metadata));
    }

    /// <summary>The ordinals whose managers answered, the Raft leader's first: whom to ask for the membership and its changes.</summary>
    private static List<int> Answering(IReadOnlyList<InstanceObservation> observations, ClusterView view) =>
        [.. observations.Select((o, ordinal) => (o, ordinal)).Where(x => x.o.Status is not null).OrderBy(x => x.o.Pod == view.RaftLeader ? 0 : 1).Select(x => x.ordinal)];

    private async Task EnsureSecretsAsync(MemoryClusterResource cluster, ClusterNames names, DesiredObjects desired, Counts counts, CancellationToken cancellationToken)
    {
        foreach (var request in desired.Secrets)
        {
            if (owned.Secrets.GetTyped(names.Namespace, request.Name) is not null)
            {
                continue;
            }

            var data = request.Fixed.ToDictionary(f => f.Key, f => Encoding.UTF8.GetBytes(f.Value));
            foreach (var (name, bytes) in request.Generated)
            {
                // IMPORTANT: generated once, from the cryptographic RNG, never logged; base64url text so a file or an env var holds it as is.
                data[name] = Encoding.ASCII.GetBytes(Base64Url(RandomNumberGenerator.GetBytes(bytes)));
            }

            // Made by an earlier reconcile whose event the cache has not seen yet (create answers AlreadyExists): never replaced.
            await CreateSecretAsync(names, NewSecret(names, request.Name, request.Type, desired.Objects.FirstOrDefault()?.Metadata.OwnerReferences, data), counts, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The cluster's CA (made once, its certificate renewed with the same key when due) and the server certificate
    /// issued from it (when missing, unusable or due). Returns why the CA Secret cannot be used, having written
    /// nothing; null otherwise.
    /// </summary>
    private async Task<string?> EnsureTlsAsync(ClusterNames names, DesiredObjects desired, Counts counts, CancellationToken cancellationToken)
    {
        var request = desired.Tls;
        var policy = _options.Tls;
        var now = _time.GetUtcNow();
        var owners = desired.Objects.FirstOrDefault()?.Metadata.OwnerReferences;
        var stored = owned.Secrets.GetTyped(names.Namespace, request.CaSecret);
        CertificateAuthority ca;
        if (stored is null)
        {
            // IMPORTANT: made once, the key from the cryptographic RNG, never logged; never made again while the Secret exists.
            ca = CertificateAuthority.Create($"{names.Namespace}/{names.Cluster} CA", now, policy.CaLifetime);
            if (!await CreateSecretAsync(names, CaSecret(names, request, ca, owners, resourceVersion: null), counts, cancellationToken).ConfigureAwait(false))
            {
                // Made by an earlier reconcile the cache has not seen: issue from that one next time, never from this.
                ca.Dispose();
                return null;
            }
        }
        else
        {
            try
            {
                ca = CertificateAuthority.FromPem(Text(stored, TlsRequest.CaKey), Text(stored, TlsRequest.CaPrivateKeyKey));
            }
            catch (TlsMaterialException e)
            {
                return $"Secret {request.CaSecret}: {e.Message}; nothing was changed. Restore it, or delete it to have a new CA made (every certificate is then issued again and clients must trust the new ca.crt)";
            }

            var renewal = CertificatePlanner.Ca(policy, ca.NotBefore, ca.NotAfter, now);
            if (renewal.Issue)
            {
                var renewed = ca.Renew(now, policy.CaLifetime);
                ca.Dispose();
                ca = renewed;
                await client.ReplaceAsync(ResourceTypes.Secret, CaSecret(names, request, ca, stored.Metadata.OwnerReferences ?? owners, stored.Metadata.ResourceVersion), cancellationToken).ConfigureAwait(false);
                counts.Applied++;
                Interlocked.Increment(ref _writes);
                LogCertificate(_logger, names.Namespace, names.Cluster, request.CaSecret, renewal.Reason);
            }
        }

        using (ca)
        {
            var server = owned.Secrets.GetTyped(names.Namespace, request.ServerSecret);
            var (facts, unreadable) = server is null
                ? (null, null)
                : ServerCertificateFacts.Read(Text(server, TlsRequest.CertificateKey), Text(server, TlsRequest.PrivateKeyKey), Text(server, TlsRequest.CaKey), ca, now);
            var decision = CertificatePlanner.Server(policy, request.Server, facts, unreadable, now);
            if (!decision.Issue)
            {
                return null;
            }

            var pair = ca.Issue(request.Server, now, policy.ServerLifetime);
            var secret = NewSecret(names, request.ServerSecret, TlsRequest.TlsSecretType, server?.Metadata.OwnerReferences ?? owners, new Dictionary<string, byte[]>
            {
                [TlsRequest.CertificateKey] = Encoding.ASCII.GetBytes(pair.CertificatePem),
                [TlsRequest.PrivateKeyKey] = Encoding.ASCII.GetBytes(pair.KeyPem),
                [TlsRequest.CaKey] = Encoding.ASCII.GetBytes(ca.CertificatePem),
            });
            if (server is null)
            {
                if (!await CreateSecretAsync(names, secret, counts, cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }
            }
            else
            {
                secret.Metadata.ResourceVersion = server.Metadata.ResourceVersion;
                await client.ReplaceAsync(ResourceTypes.Secret, secret, cancellationToken).ConfigureAwait(false);
                counts.Applied++;
                Interlocked.Increment(ref _writes);
            }

            LogCertificate(_logger, names.Namespace, names.Cluster, request.ServerSecret, decision.Reason);
            return null;
        }
    }

    private static V1Secret CaSecret(ClusterNames names, TlsRequest request, CertificateAuthority ca, IList<V1OwnerReference>? owners, string? resourceVersion)
    {
        var pem = ca.ToPem();
        var secret = NewSecret(names, request.CaSecret, "Opaque", owners, new Dictionary<string, byte[]>
        {
            [TlsRequest.CaKey] = Encoding.ASCII.GetBytes(pem.CertificatePem),
            [TlsRequest.CaPrivateKeyKey] = Encoding.ASCII.GetBytes(pem.KeyPem),
        });
        secret.Metadata.ResourceVersion = resourceVersion;
        return secret;
    }

    private static V1Secret NewSecret(ClusterNames names, string name, string type, IList<V1OwnerReference>? owners, Dictionary<string, byte[]> data) => new()
    {
        ApiVersion = "v1",
        Kind = "Secret",
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = names.Namespace,
            Labels = ClusterLabels.For(names, ClusterLabels.PostgresComponent),
            OwnerReferences = owners,
        },
        Type = type,
        Data = data,
    };

    /// <summary>Creates a Secret; false when it exists already (made by an earlier reconcile whose event the cache has not seen).</summary>
    private async Task<bool> CreateSecretAsync(ClusterNames names, V1Secret secret, Counts counts, CancellationToken cancellationToken)
    {
        try
        {
            await client.CreateAsync(ResourceTypes.Secret, secret, cancellationToken).ConfigureAwait(false);
            counts.Created++;
            Interlocked.Increment(ref _writes);
            LogSecretCreated(_logger, names.Namespace, names.Cluster, secret.Metadata.Name);
            return true;
        }
        catch (AlreadyExistsException)
        {
            return false;
        }
    }

    private static string? Text(V1Secret secret, string key) =>
        secret.Data is { } data && data.TryGetValue(key, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    private async Task ApplyAsync(MemoryClusterResource cluster, DesiredObjects desired, Counts counts, CancellationToken cancellationToken)
    {
        var ns = ClusterNames.Of(cluster).Namespace;
        var wanted = new HashSet<(string, string)>();
        foreach (var obj in desired.Objects)
        {
            var kind = owned.KindOf(obj);
            wanted.Add((obj.Kind, obj.Metadata.Name));
            if (ObjectDiff.Satisfied(kind.Get(ns, obj.Metadata.Name), ObjectDiff.Prepare(obj)))
            {
                continue;
            }

            await kind.ApplyAsync(client, obj, _options.FieldManager, cancellationToken).ConfigureAwait(false);
            counts.Applied++;
            Interlocked.Increment(ref _writes);
            LogApplied(_logger, ns, cluster.Metadata.Name, obj.Kind, obj.Metadata.Name);
        }

        if (cluster.Metadata.Uid is not { } uid)
        {
            return;
        }

        // What the cluster owns and the render no longer has (compute scaled to 0, the NetworkPolicy turned off).
        foreach (var kind in owned.Kinds)
        {
            foreach (var name in kind.OwnedBy(ns, uid))
            {
                if (!wanted.Contains((kind.Kind, name)))
                {
                    await kind.DeleteAsync(client, ns, name, cancellationToken).ConfigureAwait(false);
                    counts.Deleted++;
                    Interlocked.Increment(ref _writes);
                    LogDeleted(_logger, ns, cluster.Metadata.Name, kind.Kind, name);
                }
            }
        }
    }

    private async Task<string> ActAsync(MemoryClusterResource cluster, ClusterNames names, InstanceAction action, string? primary, IReadOnlyList<int> answering, Counts counts, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _writes);
        counts.Events++;
        if (action is DeletePod delete)
        {
            await owned.Pods.DeleteAsync(client, names.Namespace, delete.Pod, cancellationToken).ConfigureAwait(false);
            await RecordAsync(cluster, new PlannedEvent(EventTypes.Normal, "InstanceRestarted", "RollingUpdate", $"deleted {delete.Pod} to restart it ({delete.Why})"), cancellationToken).ConfigureAwait(false);
            return $"deleted pod {delete.Pod}";
        }

        var key = owned.Secrets.GetTyped(names.Namespace, names.ClusterKeySecret)?.Data is { } keyData && keyData.TryGetValue("key", out var keyBytes) ? keyBytes : null;
        if (key is null)
        {
            return $"{action}: waiting for Secret {names.ClusterKeySecret}";
        }

        var answer = await instances.ActAsync(names, action, primary, answering, key, cancellationToken).ConfigureAwait(false);
        var (reason, what) = action switch
        {
            Switchover s => ("SwitchoverRequested", $"switchover to {s.Pod} ({s.Reason})"),
            AddMember a => ("MemberAdded", $"{a.Pod} (member {a.Id}) joining the Raft membership"),
            RemoveMember r => ("MemberRemoved", $"{r.Pod} (member {r.Id}) leaving the Raft membership"),
            _ => (action.GetType().Name, action.ToString()),
        };
        LogActed(_logger, names.Namespace, names.Cluster, what, answer.Accepted ? (answer.Done == false ? "in progress" : "accepted") : "refused", answer.Message);

        // A membership change is asked again until done: an Event when it is done or refused, not for every step.
        var membershipStep = action is AddMember or RemoveMember;
        if (!membershipStep || answer.Done == true || !answer.Accepted)
        {
            var note = (action, answer.Done) switch
            {
                (AddMember a, true) => $"{a.Pod} (member {a.Id}) is a voter: {answer.Message}",
                (RemoveMember r, true) => $"{r.Pod} (member {r.Id}) left the Raft membership: {answer.Message}",
                _ => $"{what}: {answer.Message}",
            };
            await RecordAsync(cluster, new PlannedEvent(answer.Accepted ? EventTypes.Normal : EventTypes.Warning, reason, membershipStep ? "Scale" : "Instance", note), cancellationToken).ConfigureAwait(false);
        }

        return $"{what}: {(answer.Accepted ? "accepted" : "refused")}: {answer.Message}";
    }

    /// <summary>ScaleStarted when a scale begins, ScaleCompleted when it ends (from the phase the status had).</summary>
    private static IEnumerable<PlannedEvent> ScaleEvents(MemoryClusterStatus? old, Progress? progress, int instances)
    {
        var was = old?.Phase == Phases.Scaling || Conditions.Find(old?.Conditions, ConditionTypes.Progressing)?.Reason == ConditionReasons.Scaling;
        var now = progress?.Reason == ConditionReasons.Scaling;
        if (now && !was)
        {
            yield return new PlannedEvent(EventTypes.Normal, "ScaleStarted", "Scale", progress!.Message);
        }
        else if (was && !now)
        {
            yield return new PlannedEvent(EventTypes.Normal, "ScaleCompleted", "Scale", $"{instances} instances, all members of the Raft quorum");
        }
    }

    private async Task WriteStatusAsync(MemoryClusterResource cluster, StatusPlan plan, Counts counts, CancellationToken cancellationToken)
    {
        if (!StatusChanged(cluster.Status, plan.Status))
        {
            // Recorded only with a status change: a resync that changes nothing writes nothing.
            return;
        }

        await client.ReplaceStatusAsync(ResourceTypes.MemoryCluster, cluster with { Status = plan.Status }, cancellationToken).ConfigureAwait(false);
        counts.Status = true;
        Interlocked.Increment(ref _writes);
        foreach (var planned in plan.Events)
        {
            await RecordAsync(cluster, planned, cancellationToken).ConfigureAwait(false);
            counts.Events++;
        }
    }

    private async Task RecordAsync(MemoryClusterResource cluster, PlannedEvent planned, CancellationToken cancellationToken)
    {
        var regarding = new V1ObjectReference
        {
            ApiVersion = ApiGroup.ApiVersion,
            Kind = ApiGroup.Kind,
            Name = cluster.Metadata.Name,
            NamespaceProperty = cluster.Metadata.Namespace,
            Uid = cluster.Metadata.Uid,
        };
        try
        {
            await events.RecordAsync(regarding, planned.Type, planned.Reason, planned.Action, planned.Note, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _writes);
        }
        catch (KubeApiException e)
        {
            // An Event is worth a try, never a failed reconcile.
            LogEventFailed(_logger, cluster.Metadata.Namespace, cluster.Metadata.Name, planned.Reason, e.Message);
        }
    }

    /// <summary>Whether the new status differs from the stored one (in JSON, so a round trip through the API compares equal).</summary>
    internal static bool StatusChanged(MemoryClusterStatus? old, MemoryClusterStatus now) =>
        old is null || System.Text.Json.JsonSerializer.Serialize(old, ApiJson.Options) != System.Text.Json.JsonSerializer.Serialize(now, ApiJson.Options);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private sealed class Counts
    {
        public int Created { get; set; }

        public int Applied { get; set; }

        public int Deleted { get; set; }

        public bool Status { get; set; }

        public int Events { get; set; }

        public ReconcileWrites ToWrites(string? action) => new(Created, Applied, Deleted, Status, Events, action);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Namespace}/{Cluster}: switchover request answered: {Answer}")]
    private static partial void LogAnswered(ILogger logger, string @namespace, string cluster, string answer);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Namespace}/{Cluster}: created Secret {Secret}")]
    private static partial void LogSecretCreated(ILogger logger, string @namespace, string cluster, string secret);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Namespace}/{Cluster}: wrote certificate Secret {Secret}: {Reason}")]
    private static partial void LogCertificate(ILogger logger, string @namespace, string cluster, string secret, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Namespace}/{Cluster}: applied {Kind} {Name}")]
    private static partial void LogApplied(ILogger logger, string @namespace, string? cluster, string kind, string name);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Namespace}/{Cluster}: deleted {Kind} {Name}, no longer in the spec")]
    private static partial void LogDeleted(ILogger logger, string @namespace, string? cluster, string kind, string name);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Namespace}/{Cluster}: {What}: {Outcome}: {Answer}")]
    private static partial void LogActed(ILogger logger, string @namespace, string cluster, string what, string outcome, string answer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Namespace}/{Cluster}: could not record Event {Reason}: {Error}")]
    private static partial void LogEventFailed(ILogger logger, string? @namespace, string? cluster, string reason, string error);
}
