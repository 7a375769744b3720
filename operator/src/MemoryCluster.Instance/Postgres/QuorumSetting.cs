using System.Globalization;

namespace MemoryCluster.Instance.Postgres;

/// <summary>
/// A <c>synchronous_standby_names</c> value in the form the manager writes (<c>ANY k ("a", "b")</c>), as PostgreSQL
/// has it in force: k and the standby names. Parsed once, where the state query reads it.
/// </summary>
/// <param name="K">Standbys a commit waits for (0: the value is empty, no standby).</param>
/// <param name="Names">The standbys named.</param>
public sealed record QuorumSetting(int K, IReadOnlyList<string> Names)
{
    public static readonly QuorumSetting None = new(0, []);

    /// <summary>The setting, or null for a value in any other form (not ours: nothing is assumed of it).</summary>
    public static QuorumSetting? Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = value.Trim();
        if (text.Length == 0)
        {
            return None;
        }

        if (!text.StartsWith("ANY ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var rest = text[4..].TrimStart();
        var digits = rest.TakeWhile(char.IsAsciiDigit).Count();
        var list = rest[digits..].Trim();
        if (digits is 0 or > 5 || !list.StartsWith('(') || !list.EndsWith(')'))
        {
            return null;
        }

        var names = list[1..^1].Split(',').Select(n => n.Trim()).Select(n => n.Length >= 2 && n[0] == '"' && n[^1] == '"' ? n[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal) : n).ToList();
        return names.Any(n => n.Length == 0) ? null : new QuorumSetting(int.Parse(rest[..digits], NumberStyles.None, CultureInfo.InvariantCulture), names);
    }
}
