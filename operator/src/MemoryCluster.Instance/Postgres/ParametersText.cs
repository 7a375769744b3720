using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MemoryCluster.Instance.Postgres;

/// <summary>postgresql.conf lines read into names and values, or the lines that could not be read.</summary>
/// <param name="Values">Parameter name (lower case, as PostgreSQL compares them) to value; a name given twice keeps its last value, as in PostgreSQL.</param>
/// <param name="Errors">Each line that is not <c>name = value</c>, naming its number.</param>
internal sealed record ParsedParameters(IReadOnlyDictionary<string, string> Values, IReadOnlyList<string> Errors);

/// <summary>
/// Reads and writes the user's parameters in postgresql.conf syntax: <c>name = 'value'</c> (or <c>name value</c>, an
/// unquoted value, a trailing <c># comment</c>), quotes doubled or backslash-escaped inside a quoted value. Pure.
/// </summary>
internal static class ParametersText
{
    public static ParsedParameters Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var errors = new List<string>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var (name, value, error) = ParseLine(line);
            if (error is not null)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"line {number}: {error}"));
                continue;
            }

            values[name!] = value!;
        }

        return new ParsedParameters(values, errors);
    }

    /// <summary>The parameters as the manager writes its copy: one <c>name = 'value'</c> per line, in name order.</summary>
    public static string Render(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var text = new StringBuilder("# The user's parameters, checked and copied by the memorycluster instance manager; postgresql.conf includes this file.\n");
        foreach (var (name, value) in values.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            text.Append(name).Append(" = ").Append(PostgresConfigFiles.QuoteValue(value)).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>A short content hash (hex) to tell files apart cheaply and to show in /status.</summary>
    public static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];

    private static (string? Name, string? Value, string? Error) ParseLine(string line)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or '.'))
        {
            i++;
        }

        if (i == 0 || !(char.IsAsciiLetter(line[0]) || line[0] == '_'))
        {
            return (null, null, "expected a parameter name (letters, digits, '_' and '.') at the start");
        }

        var name = line[..i].ToLowerInvariant();
        var rest = line[i..].TrimStart();
        if (rest.StartsWith('='))
        {
            rest = rest[1..].TrimStart();
        }

        if (rest.Length == 0 || rest[0] == '#')
        {
            return (null, null, $"{name}: no value");
        }

        string value;
        string after;
        if (rest[0] == '\'')
        {
            var builder = new StringBuilder();
            var j = 1;
            var closed = false;
            while (j < rest.Length)
            {
                var c = rest[j];
                if (c == '\'' && j + 1 < rest.Length && rest[j + 1] == '\'')
                {
                    builder.Append('\'');
                    j += 2;
                }
                else if (c == '\'')
                {
                    closed = true;
                    j++;
                    break;
                }
                else if (c == '\\' && j + 1 < rest.Length)
                {
                    builder.Append(rest[j + 1]);
                    j += 2;
                }
                else
                {
                    builder.Append(c);
                    j++;
                }
            }

            if (!closed)
            {
                return (null, null, $"{name}: the quoted value is not closed");
            }

            value = builder.ToString();
            after = rest[j..].TrimStart();
        }
        else
        {
            var end = 0;
            while (end < rest.Length && !char.IsWhiteSpace(rest[end]) && rest[end] != '#')
            {
                end++;
            }

            value = rest[..end];
            after = rest[end..].TrimStart();
        }

        return after.Length == 0 || after[0] == '#'
            ? (name, value, null)
            : (null, null, $"{name}: unexpected '{after}' after the value (quote a value that has spaces)");
    }
}
