using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MemoryCluster.Api.Crd;

/// <summary>The summaries of a compiler-generated XML documentation file, looked up by type or property.</summary>
public sealed partial class XmlDocumentation
{
    private readonly Dictionary<string, string> _summaries;

    public XmlDocumentation(XDocument document)
    {
        _summaries = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var member in document.Descendants("member"))
        {
            var name = member.Attribute("name")?.Value;
            var summary = member.Element("summary");
            if (name is not null && summary is not null)
            {
                _summaries[name] = Flatten(summary);
            }
        }
    }

    /// <summary>An empty documentation set: no descriptions.</summary>
    public static XmlDocumentation Empty { get; } = new(new XDocument(new XElement("doc")));

    public string? For(Type type) => _summaries.GetValueOrDefault("T:" + type.FullName);

    public string? For(PropertyInfo property) =>
        _summaries.GetValueOrDefault($"P:{property.DeclaringType!.FullName}.{property.Name}");

    private static string Flatten(XElement summary)
    {
        var text = new StringBuilder();
        foreach (var node in summary.Nodes())
        {
            switch (node)
            {
                case XText t:
                    text.Append(t.Value);
                    break;
                case XElement { Name.LocalName: "see" } see:
                    var target = see.Attribute("cref")?.Value ?? see.Attribute("langword")?.Value ?? string.Empty;
                    text.Append(target[(target.LastIndexOf('.') + 1)..]);
                    break;
                case XElement e:
                    text.Append(e.Value);
                    break;
                default:
                    break;
            }
        }

        return Whitespace().Replace(text.ToString(), " ").Trim();
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
