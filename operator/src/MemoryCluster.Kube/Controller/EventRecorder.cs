using System.Globalization;
using System.Text.Json.Nodes;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.Controller;

/// <summary>The two event types.</summary>
public static class EventTypes
{
    public const string Normal = "Normal";
    public const string Warning = "Warning";
}

/// <summary>
/// Writes events.k8s.io/v1 Events. A repeat of the same event (same object, type, reason, action and note) within
/// <see cref="SeriesWindow"/> updates the existing Event's <c>series</c> (count, lastObservedTime) instead of
/// creating another object.
/// </summary>
public sealed class EventRecorder(IKubeApiClient client, string reportingController, string reportingInstance, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string?, string?, string?, string, string, string, string), Series> _series = [];

    public TimeSpan SeriesWindow { get; init; } = TimeSpan.FromMinutes(6);

    public async Task<Eventsv1Event> RecordAsync(V1ObjectReference regarding, string type, string reason, string action, string note, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var key = (regarding.Uid, regarding.NamespaceProperty, regarding.Name, type, reason, action, note);
        Series? series;
        lock (_lock)
        {
            _series.TryGetValue(key, out series);
            if (series is not null && now - series.Last > SeriesWindow)
            {
                series = null;
            }
        }

        var ns = regarding.NamespaceProperty ?? "default";
        if (series is not null)
        {
            var count = series.Count + 1;
            var patch = new MergePatch(new JsonObject
            {
                ["series"] = new JsonObject { ["count"] = count, ["lastObservedTime"] = KubeJson.FormatMicroTime(now) },
            });
            try
            {
                var updated = await client.PatchAsync(ResourceTypes.Event, ns, series.Name, patch, null, cancellationToken).ConfigureAwait(false);
                lock (_lock)
                {
                    _series[key] = series with { Count = count, Last = now };
                }

                return updated;
            }
            catch (NotFoundException)
            {
                // The Event expired (the server deletes them after an hour): start a new one.
            }
        }

        var name = (regarding.Name ?? "event") + "." + now.UtcTicks.ToString("x", CultureInfo.InvariantCulture);
        var created = await client.CreateAsync(ResourceTypes.Event, new Eventsv1Event
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
            EventTime = now.UtcDateTime,
            ReportingController = reportingController,
            ReportingInstance = reportingInstance,
            Action = action,
            Reason = reason,
            Regarding = regarding,
            Note = note.Length > 1024 ? note[..1024] : note,
            Type = type,
        }, cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _series[key] = new Series(name, 1, now);
        }

        return created;
    }

    private sealed record Series(string Name, int Count, DateTimeOffset Last);
}
