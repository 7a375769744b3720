using System.Globalization;
using System.Text;
using MemoryCluster.Compute.Engine.Graph;

namespace MemoryCluster.Compute.Bench;

/// <summary>Triples as TSV (subject, predicate, object), and WordNet's synset pointers turned into such a file.</summary>
internal static class GraphFiles
{
    public const string WordNetDir = "/usr/share/wordnet";

    private static readonly Dictionary<string, string> PointerNames = new(StringComparer.Ordinal)
    {
        ["!"] = "antonym",
        ["@"] = "hypernym",
        ["@i"] = "instance_hypernym",
        ["~"] = "hyponym",
        ["~i"] = "instance_hyponym",
        ["#m"] = "member_holonym",
        ["#s"] = "substance_holonym",
        ["#p"] = "part_holonym",
        ["%m"] = "member_meronym",
        ["%s"] = "substance_meronym",
        ["%p"] = "part_meronym",
        ["="] = "attribute",
        ["+"] = "derivation",
        [";c"] = "domain_topic",
        ["-c"] = "member_topic",
        [";r"] = "domain_region",
        ["-r"] = "member_region",
        [";u"] = "domain_usage",
        ["-u"] = "member_usage",
        ["*"] = "entailment",
        [">"] = "cause",
        ["^"] = "also_see",
        ["$"] = "verb_group",
        ["&"] = "similar_to",
        ["<"] = "participle",
        ["\\"] = "pertainym",
    };

    /// <summary>Writes every synset-to-synset pointer of WordNet's data.* files as a triple; returns the TSV path.</summary>
    public static string PrepareWordNet(string cacheDir)
    {
        var path = Path.Combine(cacheDir, "wordnet.tsv");
        if (File.Exists(path))
        {
            return path;
        }

        var temp = path + ".tmp";
        using (var writer = new StreamWriter(temp, false, new UTF8Encoding(false)))
        {
            foreach (var part in new[] { "noun", "verb", "adj", "adv" })
            {
                var file = Path.Combine(WordNetDir, "data." + part);
                if (!File.Exists(file))
                {
                    throw new FileNotFoundException("WordNet not found; install it with `apt-get install -y wordnet-base` or pass GRAPH=FILE.tsv.", file);
                }

                foreach (var line in File.ReadLines(file))
                {
                    if (line.StartsWith("  ", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    WriteSynset(writer, line);
                }
            }
        }

        File.Move(temp, path, overwrite: true);
        return path;
    }

    public static KnowledgeGraph Load(string path)
    {
        var graph = new KnowledgeGraph();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var first = line.IndexOf('\t', StringComparison.Ordinal);
            var second = first < 0 ? -1 : line.IndexOf('\t', first + 1);
            if (second < 0)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: expected subject<TAB>predicate<TAB>object.");
            }

            graph.AddEdge(line[..first], line[(first + 1)..second], line[(second + 1)..].TrimEnd('\r'));
        }

        graph.Compact();
        return graph;
    }

    private static void WriteSynset(StreamWriter writer, string line)
    {
        // offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [symbol offset pos source/target]... | gloss
        var fields = line.Split(' ');
        var subject = Node(fields[2], fields[0]);
        var words = int.Parse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var at = 4 + (2 * words);
        var pointers = int.Parse(fields[at], CultureInfo.InvariantCulture);
        at++;
        for (var i = 0; i < pointers; i++, at += 4)
        {
            var symbol = fields[at];
            var name = PointerNames.TryGetValue(symbol, out var known) ? known : "ptr" + symbol;
            writer.Write(subject);
            writer.Write('\t');
            writer.Write(name);
            writer.Write('\t');
            writer.Write(Node(fields[at + 2], fields[at + 1]));
            writer.Write('\n');
        }
    }

    private static string Node(string pos, string offset) => (pos == "s" ? "a" : pos) + ":" + offset;
}
