using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using k8s;
using k8s.Models;
using MemoryCluster.Api;

namespace MemoryCluster.Kube.Serialization;

/// <summary>
/// JSON settings. <see cref="Options"/> are those of our own types (the MemoryCluster resource): those of
/// <see cref="ApiJson.Options"/>, plus timestamps written as <c>metav1.Time</c> (RFC 3339, whole seconds, <c>Z</c>)
/// and read with 0–9 fractional digits. The package's models use KubernetesJson's settings, and
/// <see cref="Models"/> where they have <c>metav1.MicroTime</c> fields.
/// </summary>
public static class KubeJson
{
    // The MicroTime fields of the kinds we write (Go's names), keyed by the package's model type.
    private static readonly Dictionary<Type, string[]> MicroTimeFields = new()
    {
        [typeof(V1LeaseSpec)] = ["acquireTime", "renewTime"],
        [typeof(Eventsv1Event)] = ["eventTime"],
        [typeof(Eventsv1EventSeries)] = ["lastObservedTime"],
        [typeof(Corev1Event)] = ["eventTime"],
        [typeof(Corev1EventSeries)] = ["lastObservedTime"],
    };

    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>
    /// KubernetesJson's settings, except that <c>metav1.MicroTime</c> fields are written with exactly six fractional
    /// digits. KubernetesJson writes every time without fractional digits when it falls on a whole second, and the
    /// API server parses a MicroTime with Go's <c>RFC3339Micro</c> layout, which requires the six digits: a Lease
    /// renewed, or an Event observed, on a whole second would be refused.
    /// </summary>
    public static JsonSerializerOptions Models { get; } = CreateModelOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(ApiJson.Options);
        options.Converters.Add(new KubeTimeConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    private static JsonSerializerOptions CreateModelOptions()
    {
        // AddJsonOptions is the package's one public way to its settings: we copy them and change nothing there.
        JsonSerializerOptions? shared = null;
        KubernetesJson.AddJsonOptions(o => shared = o);
        var options = new JsonSerializerOptions(shared!);
        var resolver = options.TypeInfoResolver ?? new DefaultJsonTypeInfoResolver();
        options.TypeInfoResolver = resolver.WithAddedModifier(info =>
        {
            if (!MicroTimeFields.TryGetValue(info.Type, out var fields))
            {
                return;
            }

            foreach (var property in info.Properties)
            {
                if (fields.Contains(property.Name, StringComparer.Ordinal))
                {
                    property.CustomConverter = property.PropertyType == typeof(DateTime?)
                        ? new NullableMicroTimeConverter()
                        : new MicroTimeConverter();
                }
            }
        });
        options.MakeReadOnly();
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

/// <summary><c>metav1.MicroTime</c> of the package's models: read 0–9 fractional digits, write exactly six.</summary>
internal sealed class MicroTimeConverter : JsonConverter<DateTime>
{
    public override DateTime Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        KubeJson.ParseTimestamp(reader.GetString() ?? throw new JsonException("a timestamp must be a string")).UtcDateTime;

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options) =>
        writer.WriteStringValue(KubeJson.FormatMicroTime(ToOffset(value)));

    /// <summary>A model's time: UTC unless it says it is local (the package reads every time as UTC).</summary>
    internal static DateTimeOffset ToOffset(DateTime value) =>
        value.Kind == DateTimeKind.Local ? new DateTimeOffset(value) : new DateTimeOffset(DateTime.SpecifyKind(value, DateTimeKind.Utc));
}

/// <summary>The same for optional fields (the Lease's times).</summary>
internal sealed class NullableMicroTimeConverter : JsonConverter<DateTime?>
{
    public override DateTime? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Null
            ? null
            : KubeJson.ParseTimestamp(reader.GetString() ?? throw new JsonException("a timestamp must be a string")).UtcDateTime;

    public override void Write(Utf8JsonWriter writer, DateTime? value, JsonSerializerOptions options)
    {
        if (value is { } v)
        {
            writer.WriteStringValue(KubeJson.FormatMicroTime(MicroTimeConverter.ToOffset(v)));
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}
