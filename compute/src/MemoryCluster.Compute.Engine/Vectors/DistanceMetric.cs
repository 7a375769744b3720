namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>How the HNSW index measures distance between two vectors.</summary>
public enum DistanceMetric
{
    /// <summary>Not set; rejected by validation.</summary>
    Unknown = 0,

    /// <summary>Euclidean distance (not squared).</summary>
    L2 = 1,

    /// <summary>1 - cosine similarity. Vectors are normalised on insert, so this is 1 - dot product.</summary>
    Cosine = 2,

    /// <summary>1 - inner product (the hnswlib convention); meaningful for vectors of similar norm.</summary>
    InnerProduct = 3,
}
