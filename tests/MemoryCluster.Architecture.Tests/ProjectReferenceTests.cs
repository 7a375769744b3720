using System.Xml.Linq;

namespace MemoryCluster.Architecture.Tests;

/// <summary>
/// Dependencies point one way (STYLE.md): the pure projects reference nothing of ours, and every shipped
/// project's references are a deliberate, listed decision.
/// </summary>
public sealed class ProjectReferenceTests
{
    /// <summary>What each shipped project may reference. A new project must be added here on purpose.</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["MemoryCluster.Api"] = [],
        ["MemoryCluster.Raft"] = [],
        ["MemoryCluster.Compute.Engine"] = [],
        ["MemoryCluster.Kube"] = ["MemoryCluster.Api"],
        // The operator reads and drives the instance managers through their one typed client (InstanceApiClient) and
        // its wire types, which live with the manager that serves them (issue: "the operator uses its typed client").
        ["MemoryCluster.Operator"] = ["MemoryCluster.Api", "MemoryCluster.Kube", "MemoryCluster.Instance"],
        ["MemoryCluster.Instance"] = ["MemoryCluster.Api", "MemoryCluster.Raft", "MemoryCluster.Kube"],
        ["MemoryCluster.Compute"] = ["MemoryCluster.Api", "MemoryCluster.Compute.Engine"],
        ["MemoryCluster.Cli"] =
        [
            "MemoryCluster.Api", "MemoryCluster.Kube", "MemoryCluster.Operator", "MemoryCluster.Raft",
            "MemoryCluster.Instance", "MemoryCluster.Compute", "MemoryCluster.Compute.Engine",
        ],
    };

    /// <summary>Projects that must build on the base library alone: no packages, no frameworks beyond .NET.</summary>
    private static readonly string[] BaseLibraryOnly = ["MemoryCluster.Api", "MemoryCluster.Raft"];

    public static TheoryData<string> ShippedProjects => [.. SourceProjects().Select(p => Path.GetFileNameWithoutExtension(p))];

    [Fact]
    public void The_pure_projects_exist() =>
        Assert.Superset(new HashSet<string>(["MemoryCluster.Api", "MemoryCluster.Cli"]), SourceProjects().Select(p => Path.GetFileNameWithoutExtension(p)).ToHashSet());

    [Theory]
    [MemberData(nameof(ShippedProjects))]
    public void Project_references_only_what_its_role_allows(string name)
    {
        Assert.True(Allowed.TryGetValue(name, out var allowed), $"{name} is not in the reference table: decide what it may reference");
        var references = ReferencesOf(PathOf(name));
        var forbidden = references.Except(allowed).ToList();
        Assert.True(forbidden.Count == 0, $"{name} references {string.Join(", ", forbidden)}, which its role does not allow");
    }

    [Theory]
    [InlineData("MemoryCluster.Api")]
    [InlineData("MemoryCluster.Raft")]
    public void Base_library_projects_reference_no_package_or_framework(string name)
    {
        Assert.Contains(name, BaseLibraryOnly);
        var project = XDocument.Load(PathOf(name));
        Assert.Empty(project.Descendants("ProjectReference"));
        Assert.Empty(project.Descendants("PackageReference"));
        Assert.Empty(project.Descendants("FrameworkReference"));
    }

    [Fact]
    public void Every_test_project_mirrors_a_source_project()
    {
        var sources = SourceProjects().Select(p => Path.GetFileNameWithoutExtension(p)).ToHashSet();
        foreach (var test in Directory.GetDirectories(Path.Combine(Root, "tests"), "*.Tests"))
        {
            var mirrored = Path.GetFileName(test)[..^".Tests".Length];
            Assert.True(
                sources.Contains(mirrored) || mirrored == "MemoryCluster.Architecture",
                $"tests/{Path.GetFileName(test)} mirrors no project under operator/src or compute/src");
        }
    }

    [Fact]
    public void No_project_pins_a_package_version_outside_the_central_file()
    {
        foreach (var project in Directory.GetFiles(Root, "*.csproj", SearchOption.AllDirectories).Where(p => !p.Contains("/bin/") && !p.Contains("/obj/")))
        {
            var versioned = XDocument.Load(project).Descendants("PackageReference").Where(r => r.Attribute("Version") is not null);
            Assert.True(!versioned.Any(), $"{project} sets a package version; pin it in Directory.Packages.props");
        }
    }

    private static string Root { get; } = FindRoot();

    private static IEnumerable<string> SourceProjects() =>
        Directory.GetFiles(Path.Combine(Root, "operator", "src"), "*.csproj", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(Path.Combine(Root, "compute", "src"), "*.csproj", SearchOption.AllDirectories));

    private static string PathOf(string name) => SourceProjects().Single(p => Path.GetFileNameWithoutExtension(p) == name);

    private static HashSet<string> ReferencesOf(string project) =>
        XDocument.Load(project).Descendants("ProjectReference")
            .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value.Replace('\\', '/')))
            .ToHashSet();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Operator.sln above {AppContext.BaseDirectory}");
    }
}
