using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace MemoryCluster.Api;

/// <summary>
/// A Kubernetes resource quantity (<c>1Gi</c>, <c>500m</c>, <c>2</c>), kept as written. In JSON it is a string
/// or a number, like Kubernetes' int-or-string quantities.
/// </summary>
[JsonConverter(typeof(QuantityJsonConverter))]
public readonly partial record struct Quantity(string Text)
{
    /// <summary>The pattern Kubernetes publishes for quantities in its OpenAPI schema.</summary>
    public const string Pattern =
        @"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

    public override string ToString() => Text;

    /// <summary>The value in base units (bytes, cores), or null when the text is not a quantity.</summary>
    public decimal? Value => TryParse(Text, out var value) ? value : null;

    /// <summary>Parses a quantity into base units.</summary>
    public static bool TryParse(string? text, out decimal value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text) || !QuantityRegex().IsMatch(text))
        {
            return false;
        }

        var split = text.Length;
        while (split > 0 && !(char.IsDigit(text[split - 1]) || text[split - 1] == '.'))
        {
            split--;
        }

        var suffix = text[split..];
        var number = text[..split];
        var exponentAt = text.IndexOfAny(['e', 'E']);
        if (exponentAt > 0)
        {
            number = text[..exponentAt];
            suffix = text[exponentAt..];
        }

        if (!decimal.TryParse(number, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var mantissa))
        {
            return false;
        }

        decimal multiplier;
        if (suffix.Length > 1 && (suffix[0] == 'e' || suffix[0] == 'E'))
        {
            if (!int.TryParse(suffix[1..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exponent) || exponent is > 18 or < -9)
            {
                return false;
            }

            multiplier = Pow(10, exponent);
        }
        else
        {
            multiplier = suffix switch
            {
                "" => 1m,
                "n" => 0.000000001m,
                "u" => 0.000001m,
                "m" => 0.001m,
                "k" => 1_000m,
                "M" => 1_000_000m,
                "G" => 1_000_000_000m,
                "T" => 1_000_000_000_000m,
                "P" => 1_000_000_000_000_000m,
                "E" => 1_000_000_000_000_000_000m,
                "Ki" => 1024m,
                "Mi" => 1024m * 1024,
                "Gi" => 1024m * 1024 * 1024,
                "Ti" => 1024m * 1024 * 1024 * 1024,
                "Pi" => 1024m * 1024 * 1024 * 1024 * 1024,
                "Ei" => 1024m * 1024 * 1024 * 1024 * 1024 * 1024,
                _ => 0m,
            };
            if (multiplier == 0m)
            {
                return false;
            }
        }

        try
        {
            value = mantissa * multiplier;
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    private static decimal Pow(int @base, int exponent)
    {
        var result = 1m;
        for (var i = 0; i < Math.Abs(exponent); i++)
        {
            result = exponent > 0 ? result * @base : result / @base;
        }

        return result;
    }

    [GeneratedRegex(Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex QuantityRegex();
}

/// <summary>Reads a quantity from a JSON string or number; writes it as the string it was written as.</summary>
public sealed class QuantityJsonConverter : JsonConverter<Quantity>
{
    public override Quantity Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.String => new Quantity(reader.GetString() ?? string.Empty),
            JsonTokenType.Number => new Quantity(System.Text.Encoding.UTF8.GetString(reader.ValueSpan)),
            _ => throw new JsonException($"a quantity must be a string or a number, not {reader.TokenType}"),
        };

    public override void Write(Utf8JsonWriter writer, Quantity value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.Text);
}
