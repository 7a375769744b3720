using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace MemoryCluster.Compute.Store;

/// <summary>
/// Reads how many physical connections each Npgsql pool holds from Npgsql's own meter (instrument
/// <c>db.client.connection.count</c>, one measurement per pool and state), the only place the pool publishes it.
/// </summary>
internal static class NpgsqlPoolProbe
{
    private static readonly Lock Gate = new();
    private static readonly ConcurrentDictionary<string, long> Counts = new(StringComparer.Ordinal);
    private static MeterListener? _listener;

    public static int Open(string pool)
    {
        lock (Gate)
        {
            if (_listener is null)
            {
                _listener = new MeterListener
                {
                    InstrumentPublished = (instrument, listener) =>
                    {
                        if (instrument.Meter.Name == "Npgsql" && instrument.Name.EndsWith("connection.count", StringComparison.Ordinal))
                        {
                            listener.EnableMeasurementEvents(instrument);
                        }
                    },
                };
                _listener.SetMeasurementEventCallback<int>((_, value, tags, _) => Record(value, tags));
                _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => Record(value, tags));
                _listener.Start();
            }

            Counts.Clear();
            _listener.RecordObservableInstruments();
            return (int)Counts.GetValueOrDefault(pool);
        }
    }

    private static void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? pool = null;
        foreach (var tag in tags)
        {
            if (tag.Key.EndsWith("pool.name", StringComparison.Ordinal))
            {
                pool = tag.Value as string;
            }
        }

        if (pool is not null)
        {
            Counts.AddOrUpdate(pool, value, (_, sum) => sum + value);
        }
    }
}
