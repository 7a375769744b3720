using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class ParameterPlannerTests
{
    private static readonly Dictionary<string, ParameterContext> Catalogue = new(StringComparer.Ordinal)
    {
        ["work_mem"] = ParameterContext.User,
        ["log_min_duration_statement"] = ParameterContext.Superuser,
        ["checkpoint_timeout"] = ParameterContext.Sighup,
        ["shared_buffers"] = ParameterContext.Postmaster,
        ["max_connections"] = ParameterContext.Postmaster,
        ["port"] = ParameterContext.Postmaster,
        ["synchronous_commit"] = ParameterContext.User,
    };

    /// <summary>One row: the file, the parameters in force, whether PostgreSQL runs; what the planner must answer.</summary>
    public sealed record Case(
        string Name,
        string? Text,
        string InForce,
        bool Running,
        string Step,
        string Changed = "",
        string Restart = "",
        string Ignored = "",
        string Problem = "")
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() =>
    [
        new("unchanged file: nothing to do", "work_mem = '8MB'\n", "work_mem=8MB", true, "Keep"),
        new("same values, other spelling and comments: nothing to do", "# tuned\nWORK_MEM 8MB   # per sort\n", "work_mem=8MB", true, "Keep"),
        new("a user parameter changed: write and reload, no restart", "work_mem = '16MB'\n", "work_mem=8MB", true, "WriteAndReload", "work_mem"),
        new("a sighup parameter added: reload", "work_mem = '8MB'\ncheckpoint_timeout = '10min'\n", "work_mem=8MB", true, "WriteAndReload", "checkpoint_timeout"),
        new("a postmaster parameter changed: written, reloaded, needs a restart", "shared_buffers = '256MB'\nwork_mem = '8MB'\n", "shared_buffers=128MB,work_mem=8MB", true, "WriteAndReload", "shared_buffers", "shared_buffers"),
        new("both kinds changed: only the postmaster one needs a restart", "shared_buffers = '256MB'\nwork_mem = '32MB'\n", "shared_buffers=128MB,work_mem=8MB", true, "WriteAndReload", "shared_buffers,work_mem", "shared_buffers"),
        new("a postmaster parameter removed: back to its default at the next restart", "work_mem = '8MB'\n", "max_connections=200,work_mem=8MB", true, "WriteAndReload", "max_connections", "max_connections"),
        new("PostgreSQL down: written only, its start reads it", "shared_buffers = '256MB'\n", "", false, "Write", "shared_buffers", "shared_buffers"),
        new("an extension's parameter (dotted) is taken as it is", "pg_stat_statements.max = '5000'\n", "", true, "WriteAndReload", "pg_stat_statements.max"),
        new("a managed parameter is left out, the rest applied", "port = '1'\nsynchronous_commit = 'off'\nwork_mem = '16MB'\n", "work_mem=8MB", true, "WriteAndReload", "work_mem", Ignored: "port,synchronous_commit"),
        new("only managed parameters: nothing changes", "synchronous_standby_names = '*'\n", "", true, "Keep", Ignored: "synchronous_standby_names"),
        new("an include directive is never followed", "include_dir = '/tmp'\n", "", true, "Keep", Ignored: "include_dir"),
        new("an unknown parameter refuses the whole file (PostgreSQL would)", "work_mem = '16MB'\nwork_mme = '1MB'\n", "work_mem=8MB", true, "Refuse", Problem: "work_mme: not a parameter of this PostgreSQL"),
        new("a line that cannot be read refuses the file", "work_mem = '16MB\n", "work_mem=8MB", true, "Refuse", Problem: "line 1: work_mem: the quoted value is not closed"),
        new("a value with a space must be quoted", "log_line = a b\n", "", true, "Refuse", Problem: "line 1: log_line: unexpected 'b' after the value"),
        new("the file is missing (being replaced): keep what is in force", null, "work_mem=8MB", true, "Keep"),
        new("an empty file removes every parameter", "", "work_mem=8MB", true, "WriteAndReload", "work_mem"),
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Changed_file_is_applied_as_the_table_says(Case @case)
    {
        var inForce = @case.InForce.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        var plan = ParameterPlanner.Plan(new ParameterInput(@case.Text, inForce, Catalogue, @case.Running));

        Assert.Equal(@case.Step, plan.Step.ToString());
        Assert.Equal(@case.Changed, string.Join(',', plan.Changed));
        Assert.Equal(@case.Restart, string.Join(',', plan.RestartNeeded));
        Assert.Equal(@case.Ignored, string.Join(',', plan.Ignored));
        if (@case.Problem.Length > 0)
        {
            Assert.Contains(plan.Problems, p => p.Contains(@case.Problem, StringComparison.Ordinal));
        }
        else
        {
            Assert.Empty(plan.Problems);
        }

        if (plan.Step is ParameterStep.Keep or ParameterStep.Refuse)
        {
            Assert.Same(inForce, plan.Values);
        }
        else
        {
            Assert.DoesNotContain(plan.Values.Keys, ParameterIsManaged);
        }
    }

    [Fact]
    public void Copy_written_by_the_manager_reads_back_to_the_same_values()
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal) { ["search_path"] = "\"$user\", public", ["x.quote"] = "it's \\ fine", ["work_mem"] = "8MB" };
        var parsed = ParametersText.Parse(ParametersText.Render(values));
        Assert.Empty(parsed.Errors);
        Assert.Equal(values.OrderBy(v => v.Key), parsed.Values.OrderBy(v => v.Key));
    }

    [Fact]
    public void Catalogue_is_read_from_describe_config()
    {
        var catalogue = ParameterPlanner.ParseCatalogue("work_mem\tuser\tResource Usage / Memory\tINTEGER\t4096\nshared_buffers\tpostmaster\tx\n\nmystery\tinternal\tx\n");
        Assert.Equal(ParameterContext.User, catalogue["work_mem"]);
        Assert.False(catalogue.ContainsKey("mystery"));
        Assert.Equal(2, catalogue.Count);
    }

    private static bool ParameterIsManaged(string name) => MemoryCluster.Api.Defaults.IsManagedParameter(name);
}
