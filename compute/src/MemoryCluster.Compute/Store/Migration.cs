using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace MemoryCluster.Compute.Store;

/// <summary>One versioned schema change: its SQL runs once, in the transaction that records it.</summary>
public sealed record Migration(int Version, string Name, string Sql)
{
    /// <summary>The SQL text's SHA-256, recorded with the version: a recorded migration whose text changed is refused.</summary>
    public string Checksum { get; } = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Sql)));

    /// <summary>The migrations this build knows, in order, from the embedded <c>Store/Migrations/NNN_name.sql</c> files.</summary>
    public static IReadOnlyList<Migration> Known { get; } = Load();

    private static List<Migration> Load()
    {
        var assembly = typeof(Migration).Assembly;
        const string prefix = "MemoryCluster.Compute.Store.Migrations.";
        var list = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var file = resource[prefix.Length..^".sql".Length];
            var cut = file.IndexOf('_', StringComparison.Ordinal);
            var version = int.Parse(file[..cut], System.Globalization.CultureInfo.InvariantCulture);
            list.Add(new Migration(version, file[(cut + 1)..], Read(assembly, resource)));
        }

        return list;
    }

    private static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}

/// <summary>A migration as the database recorded it.</summary>
public sealed record AppliedMigration(int Version, string Name, string Checksum);

/// <summary>What to do with a database's schema: apply these, or refuse with a reason and change nothing.</summary>
public abstract record MigrationPlan
{
    private MigrationPlan()
    {
    }

    /// <summary>Apply these, in order (none: the schema is current).</summary>
    public sealed record Apply(IReadOnlyList<Migration> Pending) : MigrationPlan;

    /// <summary>The database's schema is not one this build may touch.</summary>
    public sealed record Refuse(string Reason) : MigrationPlan;
}

/// <summary>Decides which migrations to apply, from what the database recorded and what this build knows (pure).</summary>
public static class MigrationPlanner
{
    public static MigrationPlan Plan(IReadOnlyList<AppliedMigration> applied, IReadOnlyList<Migration> known)
    {
        for (var i = 0; i < known.Count; i++)
        {
            if (known[i].Version != i + 1)
            {
                return new MigrationPlan.Refuse($"this build's migrations are not numbered 1, 2, ...: {known[i].Version} is number {i + 1}");
            }
        }

        var byVersion = known.ToDictionary(m => m.Version);
        foreach (var a in applied.OrderBy(a => a.Version))
        {
            if (!byVersion.TryGetValue(a.Version, out var m))
            {
                return new MigrationPlan.Refuse(
                    $"the database has schema migration {a.Version} ('{a.Name}'), newer than this build knows (up to {known.Count}): run a compute image at least as new as the one that migrated it");
            }

            if (m.Checksum != a.Checksum)
            {
                return new MigrationPlan.Refuse(
                    $"schema migration {a.Version} ('{a.Name}') was applied from a different text (checksum {a.Checksum[..12]}, this build {m.Checksum[..12]}): the database was migrated by another build of the same version");
            }
        }

        var versions = applied.Select(a => a.Version).Order().ToList();
        for (var i = 0; i < versions.Count; i++)
        {
            if (versions[i] != i + 1)
            {
                return new MigrationPlan.Refuse($"the database recorded schema migrations {string.Join(", ", versions)}: {i + 1} is missing");
            }
        }

        return new MigrationPlan.Apply(known.Skip(versions.Count).ToList());
    }
}
