// The instance manager supervises PostgreSQL with POSIX signals and file modes: it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
