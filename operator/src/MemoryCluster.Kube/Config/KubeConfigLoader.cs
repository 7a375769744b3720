using System.Security.Cryptography.X509Certificates;
using System.Text;
using YamlDotNet.Serialization;

namespace MemoryCluster.Kube.Config;

/// <summary>
/// Reads kubeconfig files (clusters, users, contexts, current-context) the way client-go does: a
/// <c>KUBECONFIG</c> path list is merged with the first file to define a name winning; relative paths resolve
/// against the file that holds them.
/// </summary>
public static class KubeConfigLoader
{
    /// <summary>Settings from <c>$KUBECONFIG</c>, else <c>~/.kube/config</c>.</summary>
    public static KubeClientSettings FromEnvironment(string? context = null, TimeProvider? time = null)
    {
        var list = Environment.GetEnvironmentVariable("KUBECONFIG");
        var paths = string.IsNullOrEmpty(list)
            ? [Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config")]
            : list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return Load(paths, context, time);
    }

    /// <summary>Merges <paramref name="paths"/> (missing files skipped) and resolves one context.</summary>
    public static KubeClientSettings Load(IReadOnlyList<string> paths, string? context = null, TimeProvider? time = null)
    {
        var clusters = new Dictionary<string, (ClusterEntry Entry, string Dir)>();
        var users = new Dictionary<string, (UserEntry Entry, string Dir)>();
        var contexts = new Dictionary<string, ContextEntry>();
        string? current = null;
        var deserializer = new DeserializerBuilder().IgnoreUnmatchedProperties().Build();
        foreach (var path in paths)
        {
            if (!File.Exists(path))
            {
                continue;
            }

            var dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
            var file = deserializer.Deserialize<KubeConfigFile?>(File.ReadAllText(path)) ?? new KubeConfigFile();
            foreach (var c in file.Clusters ?? [])
            {
                if (c.Name is not null && c.Cluster is not null)
                {
                    clusters.TryAdd(c.Name, (c.Cluster, dir));
                }
            }

            foreach (var u in file.Users ?? [])
            {
                if (u.Name is not null)
                {
                    users.TryAdd(u.Name, (u.User ?? new UserEntry(), dir));
                }
            }

            foreach (var c in file.Contexts ?? [])
            {
                if (c.Name is not null && c.Context is not null)
                {
                    contexts.TryAdd(c.Name, c.Context);
                }
            }

            if (string.IsNullOrEmpty(current))
            {
                current = file.CurrentContext;
            }
        }

        var name = context ?? current ?? throw new KubeConfigException("no current-context and no context given");
        if (!contexts.TryGetValue(name, out var ctx))
        {
            throw new KubeConfigException($"context '{name}' is not defined");
        }

        if (ctx.Cluster is null || !clusters.TryGetValue(ctx.Cluster, out var cluster))
        {
            throw new KubeConfigException($"cluster '{ctx.Cluster}' of context '{name}' is not defined");
        }

        var server = cluster.Entry.Server ?? throw new KubeConfigException($"cluster '{ctx.Cluster}' has no server");
        var authorities = new X509Certificate2Collection();
        var caPem = ReadData(cluster.Entry.CertificateAuthorityData, cluster.Entry.CertificateAuthority, cluster.Dir);
        if (caPem is not null)
        {
            authorities = TlsSettings.LoadAuthorities(caPem);
        }

        var user = ctx.User is not null && users.TryGetValue(ctx.User, out var u2) ? u2 : (new UserEntry(), cluster.Dir);
        return new KubeClientSettings
        {
            Server = new Uri(server),
            Namespace = string.IsNullOrEmpty(ctx.Namespace) ? "default" : ctx.Namespace,
            CertificateAuthorities = authorities,
            InsecureSkipTlsVerify = cluster.Entry.InsecureSkipTlsVerify ?? false,
            TlsServerName = cluster.Entry.TlsServerName,
            Credentials = CredentialsOf(user.Item1, user.Item2, time ?? TimeProvider.System),
        };
    }

    private static ICredentialProvider CredentialsOf(UserEntry user, string dir, TimeProvider time)
    {
        if (user.Exec is { Command: { } command } exec)
        {
            var resolved = command.Contains('/', StringComparison.Ordinal) && !Path.IsPathRooted(command)
                ? Path.GetFullPath(Path.Combine(dir, command))
                : command;
            var env = new Dictionary<string, string>();
            foreach (var e in exec.Env ?? [])
            {
                if (e.Name is not null)
                {
                    env[e.Name] = e.Value ?? string.Empty;
                }
            }

            return new ExecCredentialProvider(
                new ExecConfig(resolved, exec.Args ?? [], env, exec.ApiVersion ?? "client.authentication.k8s.io/v1"),
                time);
        }

        if (user.TokenFile is { } tokenFile && user.Token is null)
        {
            return new TokenFileCredentialProvider(Resolve(tokenFile, dir), InClusterConfig.DefaultTokenRefreshInterval, time);
        }

        var certPem = ReadData(user.ClientCertificateData, user.ClientCertificate, dir);
        var keyPem = ReadData(user.ClientKeyData, user.ClientKey, dir);
        var certificate = certPem is not null && keyPem is not null ? TlsSettings.LoadClientCertificate(certPem, keyPem) : null;
        return new StaticCredentialProvider(new Credential(user.Token, certificate, null));
    }

    private static string? ReadData(string? base64, string? path, string dir)
    {
        if (!string.IsNullOrEmpty(base64))
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(base64));
        }

        return string.IsNullOrEmpty(path) ? null : File.ReadAllText(Resolve(path, dir));
    }

    private static string Resolve(string path, string dir) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(dir, path));

    // The YAML shape of a kubeconfig file; YamlDotNet fills these, so they are mutable.
    internal sealed class KubeConfigFile
    {
        [YamlMember(Alias = "clusters")]
        public List<NamedCluster>? Clusters { get; set; }

        [YamlMember(Alias = "users")]
        public List<NamedUser>? Users { get; set; }

        [YamlMember(Alias = "contexts")]
        public List<NamedContext>? Contexts { get; set; }

        [YamlMember(Alias = "current-context")]
        public string? CurrentContext { get; set; }
    }

    internal sealed class NamedCluster
    {
        [YamlMember(Alias = "name")]
        public string? Name { get; set; }

        [YamlMember(Alias = "cluster")]
        public ClusterEntry? Cluster { get; set; }
    }

    internal sealed class ClusterEntry
    {
        [YamlMember(Alias = "server")]
        public string? Server { get; set; }

        [YamlMember(Alias = "certificate-authority")]
        public string? CertificateAuthority { get; set; }

        [YamlMember(Alias = "certificate-authority-data")]
        public string? CertificateAuthorityData { get; set; }

        [YamlMember(Alias = "insecure-skip-tls-verify")]
        public bool? InsecureSkipTlsVerify { get; set; }

        [YamlMember(Alias = "tls-server-name")]
        public string? TlsServerName { get; set; }
    }

    internal sealed class NamedUser
    {
        [YamlMember(Alias = "name")]
        public string? Name { get; set; }

        [YamlMember(Alias = "user")]
        public UserEntry? User { get; set; }
    }

    internal sealed class UserEntry
    {
        [YamlMember(Alias = "token")]
        public string? Token { get; set; }

        [YamlMember(Alias = "tokenFile")]
        public string? TokenFile { get; set; }

        [YamlMember(Alias = "client-certificate")]
        public string? ClientCertificate { get; set; }

        [YamlMember(Alias = "client-certificate-data")]
        public string? ClientCertificateData { get; set; }

        [YamlMember(Alias = "client-key")]
        public string? ClientKey { get; set; }

        [YamlMember(Alias = "client-key-data")]
        public string? ClientKeyData { get; set; }

        [YamlMember(Alias = "exec")]
        public ExecEntry? Exec { get; set; }
    }

    internal sealed class ExecEntry
    {
        [YamlMember(Alias = "apiVersion")]
        public string? ApiVersion { get; set; }

        [YamlMember(Alias = "command")]
        public string? Command { get; set; }

        [YamlMember(Alias = "args")]
        public List<string>? Args { get; set; }

        [YamlMember(Alias = "env")]
        public List<ExecEnv>? Env { get; set; }
    }

    internal sealed class ExecEnv
    {
        [YamlMember(Alias = "name")]
        public string? Name { get; set; }

        [YamlMember(Alias = "value")]
        public string? Value { get; set; }
    }

    internal sealed class NamedContext
    {
        [YamlMember(Alias = "name")]
        public string? Name { get; set; }

        [YamlMember(Alias = "context")]
        public ContextEntry? Context { get; set; }
    }

    internal sealed class ContextEntry
    {
        [YamlMember(Alias = "cluster")]
        public string? Cluster { get; set; }

        [YamlMember(Alias = "user")]
        public string? User { get; set; }

        [YamlMember(Alias = "namespace")]
        public string? Namespace { get; set; }
    }
}

/// <summary>A kubeconfig that does not say how to reach a cluster.</summary>
public sealed class KubeConfigException(string message) : Exception(message);

/// <summary>Configuration of a pod talking to its own cluster through its service account.</summary>
public static class InClusterConfig
{
    public const string DefaultServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>How often client-go re-reads the rotated service account token.</summary>
    public static readonly TimeSpan DefaultTokenRefreshInterval = TimeSpan.FromMinutes(1);

    public static bool IsInCluster() =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"));

    /// <summary>
    /// Builds settings from <c>KUBERNETES_SERVICE_HOST</c>/<c>_PORT</c> (IPv6 bracketed) and the service account
    /// files (token re-read every <paramref name="tokenRefreshInterval"/>, a minute unless given, and after a 401;
    /// CA; namespace).
    /// </summary>
    public static KubeClientSettings Load(
        string? host = null,
        string? port = null,
        string serviceAccountDirectory = DefaultServiceAccountDirectory,
        TimeProvider? time = null,
        TimeSpan? tokenRefreshInterval = null)
    {
        host ??= Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST")
            ?? throw new KubeConfigException("KUBERNETES_SERVICE_HOST is not set: not running in a cluster");
        port ??= Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_PORT") ?? "443";
        if (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('['))
        {
            host = "[" + host + "]";
        }

        var caPath = Path.Combine(serviceAccountDirectory, "ca.crt");
        var nsPath = Path.Combine(serviceAccountDirectory, "namespace");
        return new KubeClientSettings
        {
            Server = new Uri("https://" + host + ":" + port),
            Namespace = File.Exists(nsPath) ? File.ReadAllText(nsPath).Trim() : "default",
            CertificateAuthorities = File.Exists(caPath) ? TlsSettings.LoadAuthorities(File.ReadAllText(caPath)) : [],
            Credentials = new TokenFileCredentialProvider(
                Path.Combine(serviceAccountDirectory, "token"), tokenRefreshInterval ?? DefaultTokenRefreshInterval, time ?? TimeProvider.System),
        };
    }
}
