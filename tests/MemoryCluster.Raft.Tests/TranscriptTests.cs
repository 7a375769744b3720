using System.Globalization;
using System.Text;
using MemoryCluster.Raft.Sim;

namespace MemoryCluster.Raft.Tests;

/// <summary>
/// Runs <c>testdata/*.txt</c>: blocks of <c>command</c>, a line <c>----</c>, then the expected output,
/// separated by a blank line. Set RAFT_REWRITE=DIR to write the actual outputs to DIR for review.
/// </summary>
public sealed class TranscriptTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "testdata"), "*.txt").Order())
        {
            data.Add(Path.GetFileName(f));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Transcript_matches_expected_output(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "testdata", file);
        var blocks = TranscriptBlock.Parse(File.ReadAllText(path));
        var cluster = new TestCluster();
        var rewritten = new StringBuilder();
        var failures = new List<string>();
        foreach (var block in blocks)
        {
            foreach (var comment in block.Comments)
            {
                rewritten.Append(comment).Append('\n');
            }

            Run(cluster, block.Command);
            var actual = cluster.TakeOutput();
            rewritten.Append(block.Command).Append("\n----\n").Append(actual).Append('\n');
            if (actual.TrimEnd('\n') != block.Expected.TrimEnd('\n'))
            {
                failures.Add($"{file}:{block.Line}: {block.Command}\n--- expected\n{block.Expected}\n--- actual\n{actual}");
            }
        }

        var rewriteDir = Environment.GetEnvironmentVariable("RAFT_REWRITE");
        if (!string.IsNullOrEmpty(rewriteDir))
        {
            File.WriteAllText(Path.Combine(rewriteDir, file), rewritten.ToString().TrimEnd('\n') + "\n");
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static void Run(TestCluster c, string command)
    {
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var args = words.Skip(1).ToArray();
        ulong N(int i) => ulong.Parse(args[i], CultureInfo.InvariantCulture);
        IEnumerable<ulong> Ids(IEnumerable<string> s) => s.Select(x => ulong.Parse(x, CultureInfo.InvariantCulture));
        switch (words[0])
        {
            case "nodes":
                c.Create(Ids(args));
                break;
            case "join":
                c.Join(N(0));
                break;
            case "tick":
                c.Tick(int.Parse(args[0], CultureInfo.InvariantCulture), args.Length > 1 ? Ids(args.Skip(1)).ToList() : null);
                break;
            case "settle":
                c.Settle(int.Parse(args[0], CultureInfo.InvariantCulture));
                break;
            case "campaign":
                c[N(0)].Campaign();
                c.Process(N(0));
                break;
            case "deliver":
                c.Deliver(args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100);
                break;
            case "max-append":
                c.MaxEntriesPerAppend = int.Parse(args[0], CultureInfo.InvariantCulture);
                break;
            case "propose":
                {
                    // propose NODE set VERSION VALUE | propose NODE flag VERSION on|off
                    var proposal = args[1] == "flag"
                        ? RegisterCommand.SetFlag(N(2), args[3] == "on")
                        : RegisterCommand.Set(N(2), N(3));
                    var (index, refusal) = c[N(0)].Propose(proposal.Encode());
                    c.Write(refusal == RaftRefusal.None ? $"index {index}\n" : $"refused {refusal}\n");
                    c.Process(N(0));
                    break;
                }

            case "read":
                c.Write($"{c[N(0)].ReadIndex(N(1))}\n");
                c.Process(N(0));
                break;
            case "transfer":
                c.Write($"{c[N(0)].TransferLeadership(new NodeId(N(1)))}\n");
                c.Process(N(0));
                break;
            case "membership":
                {
                    var type = args[1] switch
                    {
                        "add-learner" => MembershipChangeType.AddLearner,
                        "promote" => MembershipChangeType.PromoteLearner,
                        "remove" => MembershipChangeType.RemoveNode,
                        _ => MembershipChangeType.Unknown,
                    };
                    var (index, refusal) = c[N(0)].ProposeMembershipChange(new MembershipChange(type, new NodeId(N(2)), $"n{args[2]}"));
                    c.Write(refusal == RaftRefusal.None ? $"index {index}\n" : $"refused {refusal}\n");
                    c.Process(N(0));
                    break;
                }

            case "partition":
                {
                    var bar = Array.IndexOf(args, "|");
                    c.Partition(Ids(args.Take(bar)), Ids(args.Skip(bar + 1)));
                    break;
                }

            case "cut":
                c.Cut(N(0), N(1));
                break;
            case "heal":
                c.Heal();
                break;
            case "crash":
                c.Crash(N(0));
                break;
            case "restart":
                c.Restart(N(0));
                break;
            case "status":
                c.Write(c.Status(args.Length > 0 ? Ids(args) : null));
                break;
            case "log":
                c.Write(c.Log(N(0)));
                break;
            case "state":
                {
                    var s = c.StateOf(N(0)).Current;
                    c.Write($"version={s.Version} value={s.Value} flag={s.Flag} applied={s.AppliedIndex}\n");
                    break;
                }

            default:
                throw new InvalidOperationException($"unknown transcript command '{words[0]}'");
        }
    }

    private sealed record TranscriptBlock(int Line, IReadOnlyList<string> Comments, string Command, string Expected)
    {
        public static List<TranscriptBlock> Parse(string text)
        {
            var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
            var blocks = new List<TranscriptBlock>();
            var comments = new List<string>();
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i];
                if (line.Length == 0)
                {
                    continue;
                }

                if (line.StartsWith('#'))
                {
                    comments.Add(line);
                    continue;
                }

                if (i + 1 >= lines.Length || lines[i + 1] != "----")
                {
                    throw new FormatException($"line {i + 1}: expected '----' after '{line}'");
                }

                var start = i + 1;
                var expected = new StringBuilder();
                var j = i + 2;
                for (; j < lines.Length && lines[j].Length > 0; j++)
                {
                    expected.Append(lines[j]).Append('\n');
                }

                blocks.Add(new TranscriptBlock(start, comments.ToList(), line, expected.ToString()));
                comments.Clear();
                i = j;
            }

            return blocks;
        }
    }
}
