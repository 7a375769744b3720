namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>A snapshot was refused: corrupt, truncated, of another version, or not matching the expected options.</summary>
public sealed class SnapshotException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SnapshotException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SnapshotException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public SnapshotException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
