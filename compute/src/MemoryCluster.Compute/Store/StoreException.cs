using Npgsql;

namespace MemoryCluster.Compute.Store;

/// <summary>
/// A database operation failed. It names the statement and carries PostgreSQL's SQLSTATE and message, never a
/// parameter value (Npgsql leaves the server's row details out unless <c>Include Error Detail</c> is set, which this
/// layer never sets); the original exception is the inner one.
/// </summary>
public sealed class StoreException : Exception
{
    public StoreException(string statement, string message, Exception? inner)
        : base($"{statement}: {message}", inner)
    {
        Statement = statement;
        SqlState = (inner as PostgresException)?.SqlState;
    }

    /// <summary>The name of the statement or operation that failed.</summary>
    public string Statement { get; }

    /// <summary>PostgreSQL's SQLSTATE when the server answered with an error; null for a connection failure.</summary>
    public string? SqlState { get; }

    /// <summary>The connection failed or the server is not (or no longer) the primary: trying again may succeed.</summary>
    public bool Transient => InnerException is NpgsqlException { IsTransient: true } || SqlState is "25006" or "57P01" or "57P02" or "57P03" or "08006" or "08003" or "08001";

    /// <summary>A unique or foreign-key constraint, or a check, refused the change.</summary>
    public bool Conflict => SqlState is "23505" or "23503" or "23514" or "40001";

    internal static StoreException From(string statement, Exception e) => e switch
    {
        StoreException s => s,
        PostgresException p => new StoreException(statement, $"{p.MessageText} (SQLSTATE {p.SqlState})", p),
        NpgsqlException n => new StoreException(statement, n.Message, n),
        TimeoutException t => new StoreException(statement, $"timed out: {t.Message}", t),
        _ => new StoreException(statement, e.Message, e),
    };
}
