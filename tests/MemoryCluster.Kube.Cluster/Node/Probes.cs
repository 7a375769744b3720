using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>
/// Runs a probe as the kubelet does: an HTTP GET to the pod's IP (200–399 passes; HTTPS without checking the
/// certificate), a TCP connection, or a command inside the container's namespaces as its user (exit 0 passes), each
/// within <c>timeoutSeconds</c> (default 1). A named port is the container's port of that name.
/// </summary>
public static class Probes
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        PooledConnectionLifetime = TimeSpan.Zero,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <param name="probe">The probe.</param>
    /// <param name="container">The container it belongs to (for named ports).</param>
    /// <param name="podIp">The pod's address.</param>
    /// <param name="pid">The container's first process, for exec probes.</param>
    /// <param name="user">The container's uid, gid and environment, for exec probes.</param>
    /// <param name="cancellationToken">Ends the probe (as a failure is never reported then).</param>
    public static async Task<bool> RunAsync(V1Probe probe, V1Container container, string podIp, int? pid, (long Uid, long Gid, IReadOnlyList<KeyValuePair<string, string>> Env) user, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(Math.Max(1, probe.TimeoutSeconds ?? 1)));
        try
        {
            if (probe.HttpGet is { } get)
            {
                var port = Port(get.Port?.Value, container) ?? throw new InvalidOperationException($"no port {get.Port?.Value}");
                var scheme = get.Scheme == "HTTPS" ? "https" : "http";
                var url = new Uri($"{scheme}://{get.Host ?? podIp}:{port}{(get.Path is { Length: > 0 } p ? (p.StartsWith('/') ? p : "/" + p) : "/")}");
                using var request = new HttpRequestMessage(HttpMethod.Get, url);
                foreach (var header in get.HttpHeaders ?? [])
                {
                    request.Headers.TryAddWithoutValidation(header.Name, header.Value);
                }

                request.Headers.UserAgent.ParseAdd("kube-probe/1.32");
                using var response = await Http.SendAsync(request, timeout.Token).ConfigureAwait(false);
                return (int)response.StatusCode is >= 200 and < 400;
            }

            if (probe.TcpSocket is { } tcp)
            {
                var port = Port(tcp.Port?.Value, container) ?? throw new InvalidOperationException($"no port {tcp.Port?.Value}");
                using var socket = new TcpClient();
                await socket.ConnectAsync(tcp.Host ?? podIp, port, timeout.Token).ConfigureAwait(false);
                return true;
            }

            if (probe.Exec is { } exec && pid is { } target)
            {
                var start = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in (string[])["--target", target.ToString(CultureInfo.InvariantCulture), "--mount", "--uts", "--pid", "--",
                    "setpriv", $"--reuid={user.Uid}", $"--regid={user.Gid}", "--clear-groups", "--", "env", "-i"])
                {
                    start.ArgumentList.Add(arg);
                }

                foreach (var (name, value) in user.Env)
                {
                    start.ArgumentList.Add(name + "=" + value);
                }

                start.ArgumentList.Add("--");
                foreach (var part in exec.Command ?? [])
                {
                    start.ArgumentList.Add(part);
                }

                using var process = Process.Start(start)!;
                var drain = Task.WhenAll(process.StandardOutput.ReadToEndAsync(timeout.Token), process.StandardError.ReadToEndAsync(timeout.Token));
                try
                {
                    await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                    await drain.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    throw;
                }

                return process.ExitCode == 0;
            }

            return false;
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or OperationCanceledException or InvalidOperationException or IOException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return false;
        }
    }

    /// <summary>A probe's port: a number, or the container port of that name.</summary>
    public static int? Port(string? value, V1Container container) =>
        int.TryParse(value, CultureInfo.InvariantCulture, out var number)
            ? number
            : container.Ports?.FirstOrDefault(p => p.Name == value)?.ContainerPort;
}
