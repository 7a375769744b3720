using MemoryCluster.Api.Meta;

namespace MemoryCluster.Api;

/// <summary>The condition types a MemoryCluster reports in <c>status.conditions</c>.</summary>
public static class ConditionTypes
{
    public const string Ready = "Ready";
    public const string Progressing = "Progressing";
    public const string Degraded = "Degraded";
    public const string QuorumHealthy = "QuorumHealthy";
    public const string PrimaryAvailable = "PrimaryAvailable";
    public const string ComputeReady = "ComputeReady";

    /// <summary>Every type, in the order they are shown.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Ready, Progressing, Degraded, QuorumHealthy, PrimaryAvailable, ComputeReady];
}

/// <summary>The reasons a MemoryCluster condition may carry (CamelCase, as Kubernetes requires).</summary>
public static class ConditionReasons
{
    public const string Reconciling = "Reconciling";
    public const string AllInstancesReady = "AllInstancesReady";
    public const string InstancesNotReady = "InstancesNotReady";
    public const string InvalidSpec = "InvalidSpec";
    public const string Bootstrapping = "Bootstrapping";
    public const string Scaling = "Scaling";
    public const string RollingUpdate = "RollingUpdate";
    public const string SwitchoverInProgress = "SwitchoverInProgress";
    public const string FailoverInProgress = "FailoverInProgress";
    public const string UpToDate = "UpToDate";
    public const string QuorumAvailable = "QuorumAvailable";
    public const string QuorumLost = "QuorumLost";
    public const string PrimaryElected = "PrimaryElected";
    public const string NoPrimary = "NoPrimary";
    public const string PrimaryFenced = "PrimaryFenced";
    public const string ReplicaLagging = "ReplicaLagging";
    public const string InstanceUnhealthy = "InstanceUnhealthy";
    public const string ComputeAvailable = "ComputeAvailable";
    public const string ComputeUnavailable = "ComputeUnavailable";
    public const string ComputeDisabled = "ComputeDisabled";
    public const string NotYetObserved = "NotYetObserved";
    public const string ReplicaDown = "ReplicaDown";
    public const string QuorumAtRisk = "QuorumAtRisk";
    public const string CommitsBlocked = "CommitsBlocked";
    public const string Healthy = "Healthy";
    public const string Idle = "Idle";
}

/// <summary>Pure helpers for a list of conditions, following Kubernetes' <c>meta.SetStatusCondition</c>.</summary>
public static class Conditions
{
    /// <summary>
    /// Returns <paramref name="conditions"/> with <paramref name="update"/> put in place of the condition of the
    /// same type. The last transition time is kept when the status does not change, and set to
    /// <paramref name="now"/> when it does (or when the condition is new).
    /// </summary>
    public static IReadOnlyList<Condition> Set(IReadOnlyList<Condition>? conditions, Condition update, DateTimeOffset now)
    {
        var result = new List<Condition>(conditions ?? []);
        var index = result.FindIndex(c => c.Type == update.Type);
        if (index < 0)
        {
            result.Add(update with { LastTransitionTime = now });
            return result;
        }

        var existing = result[index];
        var transition = existing.Status == update.Status ? existing.LastTransitionTime : now;
        result[index] = update with { LastTransitionTime = transition };
        return result;
    }

    /// <summary>The condition of the given type, or null.</summary>
    public static Condition? Find(IReadOnlyList<Condition>? conditions, string type) =>
        conditions?.FirstOrDefault(c => c.Type == type);
}
