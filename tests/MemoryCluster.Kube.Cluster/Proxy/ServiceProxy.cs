using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Cluster.Controllers;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Cluster.Proxy;

/// <summary>One Service port the proxy listens on, and where it sends connections.</summary>
public sealed record ProxyRule(string Address, int Port, IReadOnlyList<IPEndPoint> Backends);

/// <summary>
/// What kube-proxy's userspace mode did, decided from Services and EndpointSlices: each TCP port of each Service
/// with a cluster IP is a listener on that address and port, whose backends are the ready endpoints of the
/// Service's slices at the port of the same name.
/// </summary>
public static class ProxyTable
{
    public static IReadOnlyList<ProxyRule> Plan(IEnumerable<V1Service> services, IEnumerable<V1EndpointSlice> slices)
    {
        var bySlice = slices.Where(s => s.Metadata.Labels?.ContainsKey(EndpointSlicePlanner.ServiceNameLabel) == true)
            .GroupBy(s => (s.Metadata.NamespaceProperty, s.Metadata.Labels[EndpointSlicePlanner.ServiceNameLabel]))
            .ToDictionary(g => g.Key, g => g.ToList());
        var rules = new List<ProxyRule>();
        foreach (var service in services.OrderBy(s => s.Spec?.ClusterIP, StringComparer.Ordinal))
        {
            var ip = service.Spec?.ClusterIP;
            if (string.IsNullOrEmpty(ip) || ip == "None" || !IPAddress.TryParse(ip, out _))
            {
                continue;
            }

            var mine = bySlice.GetValueOrDefault((service.Metadata.NamespaceProperty, service.Metadata.Name)) ?? [];
            foreach (var port in (service.Spec!.Ports ?? []).Where(p => (p.Protocol ?? "TCP") == "TCP"))
            {
                var backends = mine
                    .SelectMany(slice => (slice.Endpoints ?? [])
                        .Where(e => e.Conditions?.Ready == true)
                        .SelectMany(e => slice.Ports?.Where(p => p.Name == port.Name && p.Port is not null)
                            .Select(p => new IPEndPoint(IPAddress.Parse(e.Addresses[0]), p.Port!.Value)) ?? []))
                    .OrderBy(e => e.ToString(), StringComparer.Ordinal)
                    .ToList();
                rules.Add(new ProxyRule(ip, port.Port, backends));
            }
        }

        return rules;
    }
}

/// <summary>
/// The Service proxy of the one-machine cluster: a TCP listener on every Service's cluster IP and port (loopback
/// addresses, as the API double hands them out), forwarding each connection to one of its ready endpoints, taken in
/// turn. When endpoints change, new connections go to the new ones; established connections are left alone, as
/// with kube-proxy. A connection to a Service with no ready endpoint is closed at once.
/// </summary>
public sealed partial class ServiceProxy
{
    private readonly Informer<V1Service> _services;
    private readonly Informer<V1EndpointSlice> _slices;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<(string, int), Listener> _listeners = new();
    private readonly Signal _changed = new();

    public ServiceProxy(IKubeApiClient client, ILoggerFactory? logging = null)
    {
        _services = new Informer<V1Service>(client, ResourceTypes.Service, new InformerOptions());
        _slices = new Informer<V1EndpointSlice>(client, ClusterTypes.EndpointSlice, new InformerOptions());
        _logger = (logging ?? NullLoggerFactory.Instance).CreateLogger("proxy");
        _services.Subscribe(_ => Changed());
        _slices.Subscribe(_ => Changed());
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var caches = new[] { _services.RunAsync(stop.Token), _slices.RunAsync(stop.Token) };
        try
        {
            await Task.WhenAll(_services.WaitForSyncAsync(stop.Token), _slices.WaitForSyncAsync(stop.Token)).ConfigureAwait(false);
            while (!stop.IsCancellationRequested)
            {
                Apply(ProxyTable.Plan(_services.List(), _slices.List()), stop.Token);
                await _changed.WaitAsync(TimeSpan.FromSeconds(5), stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var listener in _listeners.Values)
            {
                listener.Stop();
            }

            try
            {
                await Task.WhenAll(caches).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The caches end by cancellation.
            }
        }
    }

    private void Changed() => _changed.Set();

    private void Apply(IReadOnlyList<ProxyRule> rules, CancellationToken cancellationToken)
    {
        var wanted = rules.ToDictionary(r => (r.Address, r.Port));
        foreach (var (key, listener) in _listeners.Where(l => !wanted.ContainsKey(l.Key)).ToList())
        {
            listener.Stop();
            _listeners.TryRemove(key, out _);
            LogStopped(_logger, key.Item1, key.Item2);
        }

        foreach (var rule in rules)
        {
            if (_listeners.TryGetValue((rule.Address, rule.Port), out var listener))
            {
                listener.Backends = rule.Backends;
                continue;
            }

            var started = new Listener(new IPEndPoint(IPAddress.Parse(rule.Address), rule.Port), rule.Backends, _logger);
            try
            {
                started.Start(cancellationToken);
                _listeners[(rule.Address, rule.Port)] = started;
                LogListening(_logger, rule.Address, rule.Port, rule.Backends.Count);
            }
            catch (SocketException e)
            {
                started.Stop();
                LogListenFailed(_logger, rule.Address, rule.Port, e.Message);
            }
        }
    }

    private sealed class Listener(IPEndPoint endpoint, IReadOnlyList<IPEndPoint> backends, ILogger logger)
    {
        private readonly TcpListener _listener = new(endpoint);
        private readonly CancellationTokenSource _stop = new();
        private CancellationTokenSource? _linked;
        private int _next;

        public IReadOnlyList<IPEndPoint> Backends { get; set; } = backends;

        public void Start(CancellationToken cancellationToken)
        {
            _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Start();
            _linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            _ = AcceptAsync(_linked.Token);
        }

        public void Stop()
        {
            _stop.Cancel();
            _listener.Stop();
            _linked?.Dispose();
            _stop.Dispose();
        }

        private async Task AcceptAsync(CancellationToken cancellationToken)
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptSocketAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    return;
                }

                _ = ForwardAsync(client, cancellationToken);
            }
        }

        private async Task ForwardAsync(Socket client, CancellationToken cancellationToken)
        {
            using var _ = client;
            var choices = Backends;
            if (choices.Count == 0)
            {
                return;
            }

            var backend = choices[(int)((uint)Interlocked.Increment(ref _next) % (uint)choices.Count)];
            using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await upstream.ConnectAsync(backend, cancellationToken).ConfigureAwait(false);
                client.NoDelay = true;
                upstream.NoDelay = true;
                await using var a = new NetworkStream(client, ownsSocket: false);
                await using var b = new NetworkStream(upstream, ownsSocket: false);
                var up = PumpAsync(a, b, upstream, cancellationToken);
                var down = PumpAsync(b, a, client, cancellationToken);
                await Task.WhenAny(up, down).ConfigureAwait(false);
                await Task.WhenAll(up, down).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                LogForwardFailed(logger, endpoint.ToString(), backend.ToString(), e.Message);
            }
        }

        /// <summary>Copies one way; at the end of the stream, half-closes the other side so the peer sees it.</summary>
        private static async Task PumpAsync(Stream from, Stream to, Socket toSocket, CancellationToken cancellationToken)
        {
            try
            {
                await from.CopyToAsync(to, cancellationToken).ConfigureAwait(false);
                toSocket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                try
                {
                    toSocket.Shutdown(SocketShutdown.Both);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Already closed.
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "listening on {Address}:{Port} ({Backends} endpoints)")]
    private static partial void LogListening(ILogger logger, string address, int port, int backends);

    [LoggerMessage(Level = LogLevel.Information, Message = "stopped listening on {Address}:{Port}")]
    private static partial void LogStopped(ILogger logger, string address, int port);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot listen on {Address}:{Port}: {Error}")]
    private static partial void LogListenFailed(ILogger logger, string address, int port, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Service} -> {Backend}: {Error}")]
    private static partial void LogForwardFailed(ILogger logger, string service, string backend, string error);
}
