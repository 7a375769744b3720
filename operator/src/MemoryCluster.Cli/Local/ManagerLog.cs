using System.Globalization;
using System.Text.Json;

namespace MemoryCluster.Cli.Local;

/// <summary>A manager's log (JSON lines, PostgreSQL's own lines among them) as a person reads it. Pure.</summary>
internal static class ManagerLog
{
    /// <summary>
    /// One line as <c>TIME LEVEL SOURCE: message</c> (time in UTC as logged, the level in four letters, the logging
    /// class without its namespace); a line that is not a JSON log entry is returned as it is.
    /// </summary>
    public static string Readable(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (!line.StartsWith('{'))
        {
            return line;
        }

        try
        {
            using var entry = JsonDocument.Parse(line);
            var root = entry.RootElement;
            var time = root.TryGetProperty("Timestamp", out var t) && t.TryGetDateTimeOffset(out var at)
                ? at.UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)
                : "--:--:--.---";
            var level = root.TryGetProperty("LogLevel", out var l) ? Level(l.GetString()) : "????";
            var category = root.TryGetProperty("Category", out var c) ? c.GetString() ?? string.Empty : string.Empty;
            var source = category[(category.LastIndexOf('.') + 1)..];
            var message = root.TryGetProperty("Message", out var m) ? m.GetString() ?? string.Empty : string.Empty;
            var exception = root.TryGetProperty("Exception", out var e) && e.ValueKind == JsonValueKind.String ? "\n" + e.GetString() : string.Empty;
            return $"{time} {level} {source}: {message}{exception}";
        }
        catch (JsonException)
        {
            return line;
        }
    }

    /// <summary>
    /// A line of <c>kubectl logs --prefix</c> (<c>[pod/NAME/CONTAINER] LINE</c>) with its line made readable and the
    /// prefix kept; a line without that prefix as <see cref="Readable"/> makes it.
    /// </summary>
    public static string ReadablePrefixed(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var end = line.StartsWith('[') ? line.IndexOf("] ", StringComparison.Ordinal) : -1;
        return end < 0 ? Readable(line) : string.Concat(line.AsSpan(0, end + 2), Readable(line[(end + 2)..]));
    }

    private static string Level(string? level) => level switch
    {
        "Trace" => "TRCE",
        "Debug" => "DBUG",
        "Information" => "INFO",
        "Warning" => "WARN",
        "Error" => "FAIL",
        "Critical" => "CRIT",
        _ => "????",
    };
}
