using System.Text.RegularExpressions;

namespace MemoryCluster.Api;

/// <summary>One broken rule: the field path and what the rule is.</summary>
/// <param name="Path">The field path, e.g. <c>spec.instances</c>.</param>
/// <param name="Message">The rule, in words a platform engineer can act on.</param>
/// <param name="RuleId">The CEL rule in the CRD that checks the same thing, if there is one.</param>
public sealed record ValidationError(string Path, string Message, string? RuleId = null)
{
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>
/// Validates a MemoryCluster the way the API server does with the CRD's schema and CEL rules, plus what
/// CEL cannot check. Pure: the same input always gives the same errors, in field order.
/// </summary>
public static partial class SpecValidator
{
    /// <summary>Longest cluster name: child objects and pod names append suffixes and must stay within 63.</summary>
    public const int MaxNameLength = 50;

    /// <summary>Smallest volume: PostgreSQL needs room for its catalogue and WAL segments.</summary>
    public const decimal MinStorageBytes = 64m * 1024 * 1024;

    /// <summary>
    /// Fields of <c>spec.replication</c> that the API no longer has, with what took their place. They land in
    /// <see cref="ReplicationSpec.Unmodeled"/> like any unknown field; naming them refuses a manifest that still
    /// sets them instead of letting the setting vanish without a word.
    /// </summary>
    private static readonly (string Name, string Replacement)[] RemovedReplicationFields =
    [
        ("leaseSeconds", "the primary lease is the instance manager's primary-lease-ms setting, default 2500 ms; see docs/failover.md \"Tuning\""),
        ("failoverDelaySeconds", "the failover delay follows from the instance manager's primary-lease-ms setting; see docs/failover.md \"Tuning\""),
    ];

    /// <summary>The paths of the removed fields this validator names with what replaced them (<see cref="RemovedReplicationFields"/>).</summary>
    public static IReadOnlyList<string> RemovedFieldPaths { get; } = [.. RemovedReplicationFields.Select(f => "spec.replication." + f.Name)];

    /// <summary>
    /// Every rule <paramref name="cluster"/> breaks; empty when it is valid. With <paramref name="old"/> (an
    /// update), the rules about changes are checked too.
    /// </summary>
    public static IReadOnlyList<ValidationError> Validate(MemoryClusterResource cluster, MemoryClusterResource? old = null)
    {
        var errors = new List<ValidationError>();
        ValidateName(cluster.Metadata.Name, errors);
        ValidateSpec(cluster.Spec, old?.Spec, errors);
        return errors;
    }

    /// <summary>Every rule <paramref name="spec"/> breaks, checking changes against <paramref name="old"/> when given.</summary>
    public static IReadOnlyList<ValidationError> ValidateSpec(MemoryClusterSpec spec, MemoryClusterSpec? old = null)
    {
        var errors = new List<ValidationError>();
        ValidateSpec(spec, old, errors);
        return errors;
    }

    private static void ValidateName(string? name, List<ValidationError> errors)
    {
        if (string.IsNullOrEmpty(name))
        {
            errors.Add(new("metadata.name", "must be set"));
        }
        else if (name.Length > MaxNameLength)
        {
            errors.Add(new("metadata.name", $"must be at most {MaxNameLength} characters (child objects append suffixes and Kubernetes names stop at 63)", RuleIds.NameLength));
        }
        else if (!Dns1035Label().IsMatch(name))
        {
            errors.Add(new("metadata.name", "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"));
        }
    }

    private static void ValidateSpec(MemoryClusterSpec spec, MemoryClusterSpec? old, List<ValidationError> errors)
    {
        if (spec.Instances is not (3 or 5))
        {
            errors.Add(new("spec.instances", "must be 3 or 5 (2-node clusters cannot hold a safe majority)", RuleIds.InstancesThreeOrFive));
        }

        ValidatePostgres(spec.Postgres, errors);
        ValidateStorage(spec.Storage, old?.Storage, errors);
        ValidateReplication(spec.Replication, errors);
        ValidateCompute(spec.Compute, errors);
        ValidateScheduling(spec.Scheduling, errors);
    }

    private static void ValidatePostgres(PostgresSpec postgres, List<ValidationError> errors)
    {
        if (postgres.Image is not null && postgres.Image.Trim().Length == 0)
        {
            errors.Add(new("spec.postgres.image", "must name an image holding PostgreSQL 15 and the memorycluster instance manager, or be left out for the operator's"));
        }
        else if (postgres.Image is not null && (postgres.Image.Length > 512 || postgres.Image.Any(char.IsWhiteSpace)))
        {
            errors.Add(new("spec.postgres.image", "must be an image reference of at most 512 characters without spaces"));
        }

        foreach (var (key, value) in postgres.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var path = $"spec.postgres.parameters[{key}]";
            if (!ParameterName().IsMatch(key))
            {
                errors.Add(new(path, "must be a PostgreSQL parameter name: letters, digits, '_' and '.', not starting with a digit or '.'"));
            }
            else if (Defaults.IsManagedParameter(key))
            {
                errors.Add(new(path, "is managed by the instance manager and cannot be set", RuleIds.ParametersNotManaged));
            }

            if (value.IndexOfAny(['\n', '\r', '\0']) >= 0)
            {
                errors.Add(new(path, "must be a single line (no newline or NUL characters)"));
            }
        }

        ValidateResources("spec.postgres.resources", postgres.Resources, errors);
    }

    private static void ValidateStorage(StorageSpec storage, StorageSpec? old, List<ValidationError> errors)
    {
        if (!Quantity.TryParse(storage.Size.Text, out var bytes))
        {
            errors.Add(new("spec.storage.size", $"must be a Kubernetes quantity such as 10Gi, not '{storage.Size.Text}'"));
        }
        else if (bytes < MinStorageBytes)
        {
            errors.Add(new("spec.storage.size", "must be at least 64Mi (PostgreSQL needs room for its catalogue and WAL)"));
        }
        else if (old is not null && Quantity.TryParse(old.Size.Text, out var oldBytes) && bytes < oldBytes)
        {
            errors.Add(new("spec.storage.size", $"cannot shrink from {old.Size.Text} to {storage.Size.Text} (volumes can only grow)"));
        }

        if (storage.StorageClassName is { } className && !Dns1123Subdomain().IsMatch(className))
        {
            errors.Add(new("spec.storage.storageClassName", "must be a DNS-1123 subdomain (the name of a StorageClass)"));
        }

        if (old?.StorageClassName is { } oldClass && storage.StorageClassName != oldClass)
        {
            errors.Add(new("spec.storage.storageClassName", $"is immutable once set (was '{oldClass}')", RuleIds.StorageClassImmutable));
        }

        if (storage.WhenDeleted is not (ClaimRetention.Retain or ClaimRetention.Delete))
        {
            errors.Add(new("spec.storage.whenDeleted", $"must be Retain or Delete, not '{storage.WhenDeleted}'"));
        }
    }

    private static void ValidateReplication(ReplicationSpec replication, List<ValidationError> errors)
    {
        if (replication.Mode is not (ReplicationModes.Async or ReplicationModes.Quorum))
        {
            errors.Add(new("spec.replication.mode", $"must be async or quorum, not '{replication.Mode}'"));
        }

        foreach (var (name, replacement) in RemovedReplicationFields)
        {
            if (replication.Unmodeled?.ContainsKey(name) == true)
            {
                errors.Add(new($"spec.replication.{name}", $"was removed from the API; delete it ({replacement})"));
            }
        }
    }

    private static void ValidateCompute(ComputeSpec compute, List<ValidationError> errors)
    {
        if (compute.Replicas is < 0 or > 16)
        {
            errors.Add(new("spec.compute.replicas", "must be between 0 and 16"));
        }

        if (compute.EmbeddingDimensions is < 1 or > 4096)
        {
            errors.Add(new("spec.compute.embeddingDimensions", "must be between 1 and 4096"));
        }

        var hnsw = compute.Hnsw;
        if (hnsw.M is < 2 or > 100)
        {
            errors.Add(new("spec.compute.hnsw.m", "must be between 2 and 100"));
        }

        if (hnsw.EfConstruction is < 1 or > 4096)
        {
            errors.Add(new("spec.compute.hnsw.efConstruction", "must be between 1 and 4096"));
        }
        else if (hnsw.EfConstruction < hnsw.M)
        {
            errors.Add(new("spec.compute.hnsw.efConstruction", $"must be at least m ({hnsw.EfConstruction} < {hnsw.M})", RuleIds.EfConstructionAtLeastM));
        }

        if (hnsw.EfSearch is < 1 or > 4096)
        {
            errors.Add(new("spec.compute.hnsw.efSearch", "must be between 1 and 4096"));
        }

        ValidateResources("spec.compute.resources", compute.Resources, errors);
    }

    private static void ValidateScheduling(SchedulingSpec scheduling, List<ValidationError> errors)
    {
        if (scheduling.AntiAffinity is not (AntiAffinityModes.Required or AntiAffinityModes.Preferred))
        {
            errors.Add(new("spec.scheduling.antiAffinity", $"must be required or preferred, not '{scheduling.AntiAffinity}'"));
        }

        if (!LabelKey().IsMatch(scheduling.TopologyKey))
        {
            errors.Add(new("spec.scheduling.topologyKey", "must be a node label key such as kubernetes.io/hostname"));
        }

        if (scheduling.TopologySpread is { } spread)
        {
            if (!LabelKey().IsMatch(spread.TopologyKey))
            {
                errors.Add(new("spec.scheduling.topologySpread.topologyKey", "must be a node label key such as topology.kubernetes.io/zone"));
            }

            if (spread.MaxSkew is < 1 or > 5)
            {
                errors.Add(new("spec.scheduling.topologySpread.maxSkew", "must be between 1 and 5"));
            }

            if (spread.WhenUnsatisfiable is not ("DoNotSchedule" or "ScheduleAnyway"))
            {
                errors.Add(new("spec.scheduling.topologySpread.whenUnsatisfiable", $"must be DoNotSchedule or ScheduleAnyway, not '{spread.WhenUnsatisfiable}'"));
            }
        }
    }

    private static void ValidateResources(string path, ResourceRequirements resources, List<ValidationError> errors)
    {
        foreach (var (section, values) in new[] { ("requests", resources.Requests), ("limits", resources.Limits) })
        {
            foreach (var (name, quantity) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (!Quantity.TryParse(quantity.Text, out var amount) || amount < 0)
                {
                    errors.Add(new($"{path}.{section}[{name}]", $"must be a non-negative Kubernetes quantity such as 500m or 1Gi, not '{quantity.Text}'"));
                }
            }
        }

        foreach (var (name, limit) in resources.Limits.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (resources.Requests.TryGetValue(name, out var request)
                && request.Value is { } requested && limit.Value is { } limited && requested > limited)
            {
                errors.Add(new($"{path}.requests[{name}]", $"must not exceed the limit ({request.Text} > {limit.Text})"));
            }
        }
    }

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1035Label();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1123Subdomain();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_.]*$", RegexOptions.CultureInvariant)]
    private static partial Regex ParameterName();

    [GeneratedRegex(@"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex LabelKey();
}
