using MemoryCluster.Compute.Store;

namespace MemoryCluster.Compute.Tests.Store;

public sealed class MigrationPlannerTests
{
    private static readonly Migration[] Known = [new(1, "a", "create table a ()"), new(2, "b", "create table b ()"), new(3, "c", "create table c ()")];

    private static AppliedMigration Applied(Migration m) => new(m.Version, m.Name, m.Checksum);

    [Fact]
    public void An_empty_database_gets_every_migration_in_order()
    {
        var plan = Assert.IsType<MigrationPlan.Apply>(MigrationPlanner.Plan([], Known));
        Assert.Equal([1, 2, 3], plan.Pending.Select(m => m.Version));
    }

    [Fact]
    public void A_database_part_way_gets_the_rest_and_a_current_one_gets_none()
    {
        Assert.Equal([3], Assert.IsType<MigrationPlan.Apply>(MigrationPlanner.Plan([Applied(Known[0]), Applied(Known[1])], Known)).Pending.Select(m => m.Version));
        Assert.Empty(Assert.IsType<MigrationPlan.Apply>(MigrationPlanner.Plan(Known.Select(Applied).ToList(), Known)).Pending);
    }

    [Fact]
    public void A_database_migrated_by_a_newer_build_is_refused_with_the_version()
    {
        var refuse = Assert.IsType<MigrationPlan.Refuse>(MigrationPlanner.Plan([.. Known.Select(Applied), new AppliedMigration(4, "d", "x")], Known));
        Assert.Contains("migration 4 ('d'), newer than this build knows (up to 3)", refuse.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_migration_recorded_with_another_text_is_refused()
    {
        var refuse = Assert.IsType<MigrationPlan.Refuse>(MigrationPlanner.Plan([Applied(Known[0]), new AppliedMigration(2, "b", new string('0', 64))], Known));
        Assert.Contains("schema migration 2 ('b') was applied from a different text", refuse.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_hole_in_the_recorded_versions_is_refused()
    {
        var refuse = Assert.IsType<MigrationPlan.Refuse>(MigrationPlanner.Plan([Applied(Known[0]), Applied(Known[2])], Known));
        Assert.Contains("2 is missing", refuse.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_build_s_own_migrations_are_numbered_from_one_without_holes()
    {
        Assert.NotEmpty(Migration.Known);
        Assert.Equal(Enumerable.Range(1, Migration.Known.Count), Migration.Known.Select(m => m.Version));
        Assert.IsType<MigrationPlan.Apply>(MigrationPlanner.Plan([], Migration.Known));
    }
}
