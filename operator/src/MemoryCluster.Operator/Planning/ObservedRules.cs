using k8s.Models;
using MemoryCluster.Api;

namespace MemoryCluster.Operator.Planning;

/// <summary>
/// The rules about changes that need what exists, not the spec alone: a StatefulSet's volume claim templates are
/// immutable, so the storage class and size the cluster was made with stay. Pure. (The CRD's CEL rule checks the
/// storage class on update too; this also holds where CEL did not run.)
/// </summary>
public static class ObservedRules
{
    public static IReadOnlyList<ValidationError> Check(MemoryClusterResource cluster, V1StatefulSet? existing)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var claim = existing?.Spec?.VolumeClaimTemplates?.FirstOrDefault(t => t.Metadata?.Name == "data")?.Spec;
        if (claim is null)
        {
            return [];
        }

        var errors = new List<ValidationError>();
        var storage = cluster.Spec.Storage;
        if (claim.StorageClassName != storage.StorageClassName)
        {
            errors.Add(new ValidationError("spec.storage.storageClassName",
                $"cannot change once the volumes exist (they use {claim.StorageClassName ?? "the cluster default"}; the spec asks for {storage.StorageClassName ?? "the cluster default"})",
                RuleIds.StorageClassImmutable));
        }

        if (claim.Resources?.Requests?.TryGetValue("storage", out var size) == true && size.ToString() != storage.Size.Text)
        {
            errors.Add(new ValidationError("spec.storage.size",
                $"cannot change once the volumes exist (a StatefulSet's volume claims are immutable): they were made with {size}, the spec asks for {storage.Size.Text}"));
        }

        return errors;
    }
}
