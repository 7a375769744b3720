namespace MemoryCluster.Raft;

/// <summary>How much a message from the host, the storage or the transport matters; the caller maps it to its logger's levels.</summary>
public enum RaftLogLevel
{
    Unknown = 0,

    /// <summary>Detail for tracing a node's behaviour.</summary>
    Debug = 1,

    /// <summary>A normal event worth noting, e.g. this node became leader.</summary>
    Information = 2,

    /// <summary>Something went wrong but the node goes on, e.g. a torn log tail was truncated or a connection was refused.</summary>
    Warning = 3,

    /// <summary>The node stopped taking part, e.g. the host stopped because storage failed.</summary>
    Critical = 4,
}
