using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.Config;

/// <summary>What a request authenticates with: a bearer token, a client certificate, or both.</summary>
public sealed record Credential(string? Token, X509Certificate2? ClientCertificate, DateTimeOffset? ExpiresAt);

/// <summary>Supplies credentials; <see cref="Invalidate"/> is called after a 401 so the next call fetches fresh ones.</summary>
public interface ICredentialProvider
{
    ValueTask<Credential> GetAsync(CancellationToken cancellationToken);

    void Invalidate();
}

/// <summary>A fixed token and/or client certificate, as written in a kubeconfig.</summary>
public sealed class StaticCredentialProvider(Credential credential) : ICredentialProvider
{
    public ValueTask<Credential> GetAsync(CancellationToken cancellationToken) => ValueTask.FromResult(credential);

    public void Invalidate()
    {
    }
}

/// <summary>
/// A token read from a file that is rotated under us (the service account token): re-read every
/// <paramref name="refreshInterval"/> and after a 401.
/// </summary>
public sealed class TokenFileCredentialProvider(string path, TimeSpan refreshInterval, TimeProvider time) : ICredentialProvider
{
    private readonly Lock _lock = new();
    private Credential? _cached;
    private DateTimeOffset _readAt;

    /// <summary>The longest a token read from the file is used before the file is read again.</summary>
    public TimeSpan RefreshInterval => refreshInterval;

    public async ValueTask<Credential> GetAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_cached is not null && time.GetUtcNow() - _readAt < refreshInterval)
            {
                return _cached;
            }
        }

        var token = (await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)).Trim();
        lock (_lock)
        {
            _cached = new Credential(token, null, null);
            _readAt = time.GetUtcNow();
            return _cached;
        }
    }

    public void Invalidate()
    {
        lock (_lock)
        {
            _cached = null;
        }
    }
}

/// <summary>The <c>exec</c> stanza of a kubeconfig user.</summary>
public sealed record ExecConfig(
    string Command,
    IReadOnlyList<string> Args,
    IReadOnlyDictionary<string, string> Env,
    string ApiVersion);

/// <summary>
/// Runs a client-go credential plugin (client.authentication.k8s.io ExecCredential), caches what it returns until
/// <c>expirationTimestamp</c>, and runs it again after a 401.
/// </summary>
public sealed class ExecCredentialProvider(ExecConfig config, TimeProvider time) : ICredentialProvider
{
    private static readonly TimeSpan PluginTimeout = TimeSpan.FromSeconds(60);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Credential? _cached;

    /// <summary>How many times the plugin has run (tests check caching and re-runs).</summary>
    public int Runs { get; private set; }

    public async ValueTask<Credential> GetAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_cached is { } c && (c.ExpiresAt is null || c.ExpiresAt > time.GetUtcNow()))
            {
                return c;
            }

            _cached = await RunAsync(cancellationToken).ConfigureAwait(false);
            return _cached;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Invalidate() => _cached = null;

    private async Task<Credential> RunAsync(CancellationToken cancellationToken)
    {
        Runs++;
        var start = new ProcessStartInfo(config.Command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var arg in config.Args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in config.Env)
        {
            start.Environment[name] = value;
        }

        start.Environment["KUBERNETES_EXEC_INFO"] = new JsonObject
        {
            ["apiVersion"] = config.ApiVersion,
            ["kind"] = "ExecCredential",
            ["spec"] = new JsonObject { ["interactive"] = false },
        }.ToJsonString();

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {config.Command}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(PluginTimeout);
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            var output = await stdout.ConfigureAwait(false);
            var errors = await stderr.ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"credential plugin {config.Command} exited with {process.ExitCode}: {errors.Trim()}");
            }

            return Parse(output);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    internal static Credential Parse(string output)
    {
        var status = JsonNode.Parse(output)?["status"] as JsonObject
            ?? throw new InvalidOperationException("credential plugin output has no status");
        var token = (string?)status["token"];
        var certPem = (string?)status["clientCertificateData"];
        var keyPem = (string?)status["clientKeyData"];
        var expires = (string?)status["expirationTimestamp"] is { } e ? KubeJson.ParseTimestamp(e) : (DateTimeOffset?)null;
        X509Certificate2? certificate = null;
        if (certPem is not null && keyPem is not null)
        {
            certificate = TlsSettings.LoadClientCertificate(certPem, keyPem);
        }

        if (token is null && certificate is null)
        {
            throw new JsonException("credential plugin returned neither a token nor a client certificate");
        }

        return new Credential(token, certificate, expires);
    }
}
