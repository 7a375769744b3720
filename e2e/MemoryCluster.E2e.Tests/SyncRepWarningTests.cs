using Npgsql;

namespace MemoryCluster.E2e.Tests;

public sealed class SyncRepWarningTests
{
    [Theory]
    [InlineData("01000", "canceling wait for synchronous replication due to user request")]
    [InlineData("57P01", "canceling the wait for synchronous replication and terminating connection due to administrator command")]
    public void PostgreSQL_warnings_about_a_cancelled_synchronous_replication_wait_make_an_insert_not_acknowledged(string sqlState, string message) =>
        Assert.True(SyncRepWarning.IsSyncRepWarning(new PostgresNotice("WARNING", "WARNING", sqlState, message)));

    [Theory]
    [InlineData("NOTICE", "00000", "relation \"writes\" already exists, skipping")]
    [InlineData("NOTICE", "00000", "synchronous replication is not a warning at this level")]
    public void Other_notices_do_not(string severity, string sqlState, string message) =>
        Assert.False(SyncRepWarning.IsSyncRepWarning(new PostgresNotice(severity, severity, sqlState, message)));
}
