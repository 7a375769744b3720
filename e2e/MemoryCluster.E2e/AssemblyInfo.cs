// The suite signals processes and changes network namespaces: it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
