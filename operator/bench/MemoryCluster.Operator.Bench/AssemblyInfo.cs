// Reads the instance managers' wire types (MemoryCluster.Instance), which run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
