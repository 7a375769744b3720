// The operator reads the instance managers through their typed client (MemoryCluster.Instance), which runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
