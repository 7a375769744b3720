using MemoryCluster.Compute.Store;
using MemoryCluster.Instance.Tests.Postgres;
using Npgsql;

namespace MemoryCluster.Compute.Tests;

/// <summary>One real PostgreSQL 15 server per test class; each test takes a fresh database of its own.</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private TestNode? _node;
    private int _databases;

    internal TestNode Node => _node ?? throw new InvalidOperationException("the server has not started");

    public async Task InitializeAsync()
    {
        _node = TestNode.Create("compute");
        await _node.Tools.InitDbAsync(_node.DataDirectory, CancellationToken.None);
        _node.WriteConfig(upstream: null);
        await _node.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_node is not null)
        {
            await _node.DisposeAsync();
        }
    }

    /// <summary>Creates an empty database and returns a connection string to it (the superuser over the socket).</summary>
    public async Task<string> NewDatabaseAsync()
    {
        var name = $"t{Interlocked.Increment(ref _databases)}";
        await Node.ExecuteAsync($"create database {name}");
        return ConnectionString(name);
    }

    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = Node.SocketDirectory, Port = Node.Port, Username = "postgres", Database = database }.ConnectionString;

    /// <summary>A migrated database behind a <see cref="Database"/> of <paramref name="maxConnections"/>.</summary>
    public async Task<Database> MigratedAsync(int maxConnections = 8)
    {
        var database = new Database(new DatabaseOptions("rw", await NewDatabaseAsync(), maxConnections));
        await MigrationRunner.MigrateAsync(database, Migration.Known, CancellationToken.None);
        return database;
    }
}
