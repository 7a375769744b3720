using System.Text.Json.Nodes;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.TestServer;

/// <summary>
/// Graceful deletion of pods, as the real API server does it: a pod bound to a node and still running is not
/// removed by DELETE but marked (<c>deletionTimestamp</c> = now + grace, <c>deletionGracePeriodSeconds</c>); the
/// node's agent stops its containers and deletes it again with grace 0. A pod on no node, or one that has ended,
/// goes at once.
/// </summary>
internal static class PodDeletion
{
    public const long DefaultGraceSeconds = 30;

    /// <summary>The grace period this DELETE gives, or null when the pod is removed at once.</summary>
    public static long? GracePeriod(JsonObject pod, JsonObject? options)
    {
        var node = (string?)pod["spec"]?["nodeName"];
        var phase = (string?)pod["status"]?["phase"];
        if (string.IsNullOrEmpty(node) || phase is "Succeeded" or "Failed")
        {
            return null;
        }

        var grace = Seconds(options?["gracePeriodSeconds"]) ?? Seconds(pod["spec"]?["terminationGracePeriodSeconds"]) ?? DefaultGraceSeconds;
        return grace <= 0 ? null : grace;
    }

    /// <summary>
    /// Marks the pod terminating within <paramref name="grace"/> seconds of <paramref name="now"/>; a pod already
    /// terminating only ever gets a shorter period. False when nothing changed.
    /// </summary>
    public static bool MarkTerminating(JsonObject meta, long grace, DateTimeOffset now)
    {
        if (Seconds(meta["deletionGracePeriodSeconds"]) is { } current && current <= grace)
        {
            return false;
        }

        meta["deletionTimestamp"] = KubeJson.FormatTime(now.AddSeconds(grace));
        meta["deletionGracePeriodSeconds"] = grace;
        return true;
    }

    private static long? Seconds(JsonNode? node) => node is JsonValue v && v.TryGetValue<long>(out var n) ? n : null;
}
