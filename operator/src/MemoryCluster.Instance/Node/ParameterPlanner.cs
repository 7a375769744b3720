using MemoryCluster.Api;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Node;

/// <summary>When PostgreSQL takes a new value of a parameter (<c>pg_settings.context</c>).</summary>
internal enum ParameterContext
{
    Unknown = 0,

    /// <summary>Only at server start: a change waits for a restart (<c>pg_settings.pending_restart</c>).</summary>
    Postmaster,

    /// <summary>On a configuration reload.</summary>
    Sighup,

    /// <summary>On a reload, for sessions started after it.</summary>
    SuperuserBackend,

    /// <summary>On a reload, for sessions started after it.</summary>
    Backend,

    /// <summary>On a reload (and per session, by a superuser).</summary>
    Superuser,

    /// <summary>On a reload (and per session, by anyone).</summary>
    User,
}

/// <summary>What to do with the user's parameters file.</summary>
internal enum ParameterStep
{
    Unknown = 0,

    /// <summary>Nothing changed: leave the copy in force and PostgreSQL alone.</summary>
    Keep,

    /// <summary>The file cannot be used as it is: keep the copy in force, report the problems.</summary>
    Refuse,

    /// <summary>Write the new copy (after PostgreSQL has checked it); PostgreSQL is not running, so its next start reads it.</summary>
    Write,

    /// <summary>Write the new copy (after PostgreSQL has checked it) and reload PostgreSQL's configuration.</summary>
    WriteAndReload,
}

/// <summary>What the parameter planner reads.</summary>
/// <param name="Text">The parameters file now; null when it is missing (a ConfigMap being replaced, or none mounted yet).</param>
/// <param name="InForce">The parameters of the copy PostgreSQL includes now.</param>
/// <param name="Catalogue">Every parameter this PostgreSQL knows and when it takes a new value (<c>postgres --describe-config</c>).</param>
/// <param name="Running">PostgreSQL runs (a reload reaches it).</param>
internal sealed record ParameterInput(
    string? Text,
    IReadOnlyDictionary<string, string> InForce,
    IReadOnlyDictionary<string, ParameterContext> Catalogue,
    bool Running);

/// <summary>The planner's answer.</summary>
/// <param name="Step">What to do.</param>
/// <param name="Values">The parameters to be in force (managed ones left out); for Keep and Refuse, those in force now.</param>
/// <param name="Changed">Names added, changed or removed against those in force, in order.</param>
/// <param name="RestartNeeded">Of those, the ones PostgreSQL takes only at a restart.</param>
/// <param name="Ignored">Names in the file that the manager owns (refused by the operator's validation; a hand-edited ConfigMap may still hold them).</param>
/// <param name="Problems">Why the file is refused.</param>
internal sealed record ParameterPlan(
    ParameterStep Step,
    IReadOnlyDictionary<string, string> Values,
    IReadOnlyList<string> Changed,
    IReadOnlyList<string> RestartNeeded,
    IReadOnlyList<string> Ignored,
    IReadOnlyList<string> Problems);

/// <summary>
/// Decides what a changed parameters file means (pure, table-tested). The manager's own settings can never be
/// overridden: they are left out of the copy (and come after it in postgresql.conf). A file that PostgreSQL would refuse
/// as a whole (a line it cannot read, a parameter it does not know) is refused, so the copy in force is always one that
/// PostgreSQL starts with; a value PostgreSQL refuses is caught by its own check before the copy is written.
/// </summary>
internal static class ParameterPlanner
{
    public static ParameterPlan Plan(ParameterInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Text is null)
        {
            return new ParameterPlan(ParameterStep.Keep, input.InForce, [], [], [], []);
        }

        var parsed = ParametersText.Parse(input.Text);
        var problems = new List<string>(parsed.Errors);
        var ignored = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in parsed.Values.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            if (Defaults.IsManagedParameter(name))
            {
                // IMPORTANT: never in the copy: synchronous_standby_names, primary_conninfo and the like keep the manager's values.
                ignored.Add(name);
            }
            else if (!input.Catalogue.ContainsKey(name) && !name.Contains('.', StringComparison.Ordinal))
            {
                // A dotted name is an extension's (a placeholder until the extension loads); any other unknown name
                // would make PostgreSQL refuse the whole configuration on a reload, and refuse to start.
                problems.Add($"{name}: not a parameter of this PostgreSQL");
            }
            else
            {
                values[name] = value;
            }
        }

        if (problems.Count > 0)
        {
            return new ParameterPlan(ParameterStep.Refuse, input.InForce, [], [], ignored, problems);
        }

        var changed = values.Keys.Union(input.InForce.Keys)
            .Where(n => !(values.TryGetValue(n, out var now) && input.InForce.TryGetValue(n, out var before) && now == before))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (changed.Count == 0)
        {
            return new ParameterPlan(ParameterStep.Keep, input.InForce, [], [], ignored, []);
        }

        var restart = changed.Where(n => input.Catalogue.TryGetValue(n, out var context) && context == ParameterContext.Postmaster).ToList();
        return new ParameterPlan(input.Running ? ParameterStep.WriteAndReload : ParameterStep.Write, values, changed, restart, ignored, []);
    }

    /// <summary>A <c>pg_settings.context</c> (or <c>postgres --describe-config</c>) word; Unknown for internal and anything new.</summary>
    public static ParameterContext ContextOf(string word) => word switch
    {
        "postmaster" => ParameterContext.Postmaster,
        "sighup" => ParameterContext.Sighup,
        "superuser-backend" => ParameterContext.SuperuserBackend,
        "backend" => ParameterContext.Backend,
        "superuser" => ParameterContext.Superuser,
        "user" => ParameterContext.User,
        _ => ParameterContext.Unknown,
    };

    /// <summary>The catalogue from <c>postgres --describe-config</c> (tab-separated: name, context, ...).</summary>
    public static IReadOnlyDictionary<string, ParameterContext> ParseCatalogue(string describeConfig)
    {
        ArgumentNullException.ThrowIfNull(describeConfig);
        var catalogue = new Dictionary<string, ParameterContext>(StringComparer.Ordinal);
        foreach (var line in describeConfig.Split('\n'))
        {
            var fields = line.Split('\t');
            if (fields.Length > 1 && fields[0].Length > 0 && ContextOf(fields[1]) is var context and not ParameterContext.Unknown)
            {
                catalogue[fields[0].ToLowerInvariant()] = context;
            }
        }

        return catalogue;
    }
}
