using System.Globalization;

namespace MemoryCluster.Compute.Bench;

/// <summary>Progress goes to stderr; stdout carries only the final JSON summary line.</summary>
internal static class Log
{
    public static void Line(string message)
        => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");

    /// <summary>Peak resident set size of this process (VmHWM), in bytes.</summary>
    public static long PeakRssBytes() => ReadStatus("VmHWM:");

    /// <summary>Current resident set size (VmRSS), in bytes.</summary>
    public static long RssBytes() => ReadStatus("VmRSS:");

    public static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        var rank = p * (sorted.Count - 1);
        var low = (int)Math.Floor(rank);
        var high = Math.Min(sorted.Count - 1, low + 1);
        return sorted[low] + ((rank - low) * (sorted[high] - sorted[low]));
    }

    private static long ReadStatus(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                var kb = line[key.Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }
}
