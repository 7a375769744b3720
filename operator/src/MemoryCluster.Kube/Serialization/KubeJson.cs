using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MemoryCluster.Api;

namespace MemoryCluster.Kube.Serialization;

/// <summary>
/// JSON conventions of the Kubernetes API: those of <see cref="ApiJson.Options"/>, plus timestamps written as
/// <c>metav1.Time</c> (RFC 3339, whole seconds, <c>Z</c>) and read with 0–9 fractional digits.
/// </summary>
public static class KubeJson
{
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(ApiJson.Options);
        options.Converters.Add(new KubeTimeConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Parses an RFC 3339 timestamp with 0–9 fractional digits (Go writes up to 9, .NET reads 7).</summary>
    public static DateTimeOffset ParseTimestamp(string text)
    {
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            var digits = end - dot - 1;
            if (digits > 7)
            {
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
            else if (digits == 0)
            {
                text = string.Concat(text.AsSpan(0, dot), text.AsSpan(end));
            }
        }

        return DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
    }

    /// <summary>Writes <c>metav1.Time</c>: whole seconds, UTC.</summary>
    public static string FormatTime(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Writes <c>metav1.MicroTime</c>: exactly six fractional digits, UTC (the server rejects seven).</summary>
    public static string FormatMicroTime(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}

/// <summary><c>metav1.Time</c>: read 0–9 fractional digits, write whole seconds.</summary>
internal sealed class KubeTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        KubeJson.ParseTimestamp(reader.GetString() ?? throw new JsonException("a timestamp must be a string"));

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(KubeJson.FormatTime(value));
}

/// <summary><c>metav1.MicroTime</c>: read 0–9 fractional digits, write exactly six.</summary>
public sealed class MicroTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        KubeJson.ParseTimestamp(reader.GetString() ?? throw new JsonException("a timestamp must be a string"));

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(KubeJson.FormatMicroTime(value));
}
