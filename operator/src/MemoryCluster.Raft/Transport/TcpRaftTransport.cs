using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;

namespace MemoryCluster.Raft;

/// <summary>Carries Raft messages between nodes. Sending never blocks and may drop (Raft tolerates loss).</summary>
public interface IRaftTransport : IAsyncDisposable
{
    /// <summary>Starts accepting messages for this node; <paramref name="receive"/> is called from I/O threads.</summary>
    Task StartAsync(Action<Message> receive, CancellationToken cancellationToken);

    void Send(Message message);

    /// <summary>Sets the addresses of the peers messages may be sent to.</summary>
    void UpdatePeers(IReadOnlyDictionary<NodeId, string> addresses);
}

/// <summary>Counters of the transport, Prometheus-style (monotonic).</summary>
public sealed class TransportCounters
{
    public long MessagesSent => Sent.Value;

    public long MessagesReceived => Received.Value;

    /// <summary>Messages dropped because a send queue was full or the peer unknown.</summary>
    public long MessagesDropped => Dropped.Value;

    /// <summary>Frames with a bad MAC, counter, size or content; the connection is closed.</summary>
    public long FramesRejected => RejectedFrames.Value;

    /// <summary>Connections whose handshake failed (wrong key, wrong target, timeout, garbage).</summary>
    public long HandshakesRejected => RejectedHandshakes.Value;

    public long Connects => Connections.Value;

    internal Counter Sent { get; } = new();

    internal Counter Received { get; } = new();

    internal Counter Dropped { get; } = new();

    internal Counter RejectedFrames { get; } = new();

    internal Counter RejectedHandshakes { get; } = new();

    internal Counter Connections { get; } = new();
}

/// <summary>Options of <see cref="TcpRaftTransport"/>.</summary>
public sealed record TcpRaftTransportOptions
{
    public required NodeId Id { get; init; }

    /// <summary>
    /// Where to listen, e.g. "127.0.0.1:7400" (port 0 picks a free port; see <see cref="TcpRaftTransport.LocalEndPoint"/>).
    /// A host name that is not an IP address (other than localhost) listens on all interfaces at that port.
    /// </summary>
    public required string ListenAddress { get; init; }

    /// <summary>The cluster key (at least 32 bytes) shared by every member.</summary>
    public required byte[] ClusterKey { get; init; }

    /// <summary>Connect and handshake timeout; keep it below the minimum election timeout.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>A write that takes longer drops the connection; keep it below the minimum election timeout.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(1);

    public int SendQueueCapacity { get; init; } = 1024;

    public int MaxFrameBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>Receives messages with their level, e.g. a refused connection (a warning). Never receives message contents.</summary>
    public Action<RaftLogLevel, string>? Log { get; init; }
}

/// <summary>
/// TCP transport with length-prefixed binary frames, authenticated by the cluster key: each connection
/// starts with a challenge-response handshake (fresh nonces from both ends) that derives a session key, and
/// every frame carries a counter and an HMAC-SHA256 over counter and payload. Bad frames are dropped,
/// counted, logged, and close the connection; they never reach the Raft core.
/// One outbound connection per peer, used only to send; inbound connections are only read.
/// </summary>
public sealed class TcpRaftTransport : IRaftTransport
{
    private static readonly byte[] HelloLabel = Encoding.ASCII.GetBytes("memorycluster-raft-hello-v1");
    private static readonly byte[] SessionLabel = Encoding.ASCII.GetBytes("memorycluster-raft-session-v1");
    private const int NonceBytes = 16;
    private const int MacBytes = 32;

    private readonly TcpRaftTransportOptions _options;
    private readonly ConcurrentDictionary<NodeId, Peer> _peers = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly Lock _tasksLock = new();
    private TcpListener? _listener;
    private Action<Message>? _receive;

    public TcpRaftTransport(TcpRaftTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ClusterKey.Length < 32)
        {
            throw new ArgumentException("The cluster key must be at least 32 bytes.", nameof(options));
        }

        _options = options;
        _listener = new TcpListener(ParseEndPoint(options.ListenAddress));
        _listener.Start();
        LocalEndPoint = (IPEndPoint)_listener.LocalEndpoint;
    }

    /// <summary>The bound address (known from construction, so a port-0 listener can be advertised).</summary>
    public IPEndPoint LocalEndPoint { get; }

    public TransportCounters Counters { get; } = new();

    public Task StartAsync(Action<Message> receive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(receive);
        cancellationToken.ThrowIfCancellationRequested();
        _receive = receive;
        Track(AcceptLoopAsync(_stop.Token));
        return Task.CompletedTask;
    }

    public void Send(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!_peers.TryGetValue(message.To, out var peer) || !peer.Queue.Writer.TryWrite(message))
        {
            Counters.Dropped.Add();
        }
    }

    public void UpdatePeers(IReadOnlyDictionary<NodeId, string> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        foreach (var (id, address) in addresses)
        {
            if (id == _options.Id || (_peers.TryGetValue(id, out var existing) && existing.Address == address))
            {
                continue;
            }

            var peer = new Peer(id, address, Channel.CreateBounded<Message>(new BoundedChannelOptions(_options.SendQueueCapacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,

                // The sender (the Raft loop) runs the pump's continuation itself: it frames and signs the message and
                // hands it to the socket, which does not block (a full buffer makes the pump wait, off the loop). One
                // thread hop less per message.
                AllowSynchronousContinuations = true,
            }));
            if (_peers.TryRemove(id, out var old))
            {
                old.Stop.Cancel();
            }

            _peers[id] = peer;
            Track(SendLoopAsync(peer, _stop.Token));
        }

        foreach (var gone in _peers.Keys.Where(k => !addresses.ContainsKey(k)).ToList())
        {
            if (_peers.TryRemove(gone, out var old))
            {
                old.Stop.Cancel();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Stop();
        _listener = null;
        Task[] tasks;
        lock (_tasksLock)
        {
            tasks = _tasks.ToArray();
        }

        try
        {
            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _options.Log?.Invoke(RaftLogLevel.Warning, "transport loops did not stop within 5 s");
        }

        foreach (var peer in _peers.Values)
        {
            peer.Stop.Dispose();
        }

        _stop.Dispose();
    }

    private void Track(Task task)
    {
        lock (_tasksLock)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            _tasks.Add(task);
        }
    }

    // ---------------------------------------------------------------- sending

    private async Task SendLoopAsync(Peer peer, CancellationToken stop)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, peer.Stop.Token);
        var ct = linked.Token;
        var (host, port) = SplitHostPort(peer.Address);
        var backoff = TimeSpan.FromMilliseconds(20);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var client = new TcpClient { NoDelay = true };
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    connect.CancelAfter(_options.ConnectTimeout);
                    await client.ConnectAsync(host, port, connect.Token).ConfigureAwait(false);
                    var stream = client.GetStream();
                    var sessionKey = await ClientHandshakeAsync(stream, peer.Id, connect.Token).ConfigureAwait(false);
                    Counters.Connections.Add();
                    backoff = TimeSpan.FromMilliseconds(20);
                    await PumpAsync(stream, sessionKey, peer, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException or TimeoutException)
            {
                // Reconnect with capped exponential backoff; queued messages wait (bounded, oldest dropped).
            }

            try
            {
                await Task.Delay(backoff, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
        }
    }

    private async Task PumpAsync(NetworkStream stream, byte[] sessionKey, Peer peer, CancellationToken ct)
    {
        ulong counter = 0;
        while (await peer.Queue.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (peer.Queue.Reader.TryRead(out var message))
            {
                var payload = ConfigCodec.EncodeMessage(message);
                var frame = new byte[4 + 8 + payload.Length + MacBytes];
                BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(8 + payload.Length + MacBytes));
                BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(4), ++counter);
                payload.CopyTo(frame.AsSpan(12));
                HMACSHA256.HashData(sessionKey, frame.AsSpan(4, 8 + payload.Length), frame.AsSpan(12 + payload.Length));
                var write = stream.WriteAsync(frame, ct);
                if (write.IsCompleted)
                {
                    await write.ConfigureAwait(false);
                }
                else
                {
                    // The socket's buffer is full: the write is bounded (a timer only then, not one per message, which
                    // woke the process's timer thread at every heartbeat); on timeout the connection is dropped.
                    await write.AsTask().WaitAsync(_options.WriteTimeout, ct).ConfigureAwait(false);
                }

                Counters.Sent.Add();
            }
        }
    }

    private async Task<byte[]> ClientHandshakeAsync(NetworkStream stream, NodeId to, CancellationToken ct)
    {
        var serverNonce = new byte[NonceBytes];
        await stream.ReadExactlyAsync(serverNonce, ct).ConfigureAwait(false);
        var clientNonce = RandomNumberGenerator.GetBytes(NonceBytes);
        var hello = new byte[8 + 8 + NonceBytes + MacBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(hello, _options.Id.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(hello.AsSpan(8), to.Value);
        clientNonce.CopyTo(hello.AsSpan(16));
        Mac(HelloLabel, _options.Id, to, serverNonce, clientNonce).CopyTo(hello.AsSpan(16 + NonceBytes));
        await stream.WriteAsync(hello, ct).ConfigureAwait(false);
        return Mac(SessionLabel, _options.Id, to, serverNonce, clientNonce);
    }

    // ---------------------------------------------------------------- receiving

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested && _listener is { } listener)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // A connection that failed before it was accepted must not stop the listener.
                _options.Log?.Invoke(RaftLogLevel.Warning, $"raft transport: accept failed: {e.SocketErrorCode}");
                continue;
            }

            Track(ReceiveLoopAsync(client, ct));
        }
    }

    private async Task ReceiveLoopAsync(TcpClient client, CancellationToken ct)
    {
        using (client)
        {
            client.NoDelay = true;
            var stream = client.GetStream();
            NodeId from;
            byte[] sessionKey;
            try
            {
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(ct);
                handshake.CancelAfter(_options.ConnectTimeout * 2);
                (from, sessionKey) = await ServerHandshakeAsync(stream, handshake.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException)
            {
                if (!ct.IsCancellationRequested)
                {
                    Counters.RejectedHandshakes.Add();
                    _options.Log?.Invoke(RaftLogLevel.Warning, $"raft transport: rejected connection from {client.Client.RemoteEndPoint}: {e.Message}");
                }

                return;
            }

            try
            {
                await ReadFramesAsync(stream, from, sessionKey, ct).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                Counters.RejectedFrames.Add();
                _options.Log?.Invoke(RaftLogLevel.Warning, $"raft transport: dropped connection from node {from}: {e.Message}");
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // The peer went away or we are stopping.
            }
        }
    }

    private async Task<(NodeId From, byte[] SessionKey)> ServerHandshakeAsync(NetworkStream stream, CancellationToken ct)
    {
        var serverNonce = RandomNumberGenerator.GetBytes(NonceBytes);
        await stream.WriteAsync(serverNonce, ct).ConfigureAwait(false);
        var hello = new byte[8 + 8 + NonceBytes + MacBytes];
        await stream.ReadExactlyAsync(hello, ct).ConfigureAwait(false);
        var from = new NodeId(BinaryPrimitives.ReadUInt64LittleEndian(hello));
        var to = new NodeId(BinaryPrimitives.ReadUInt64LittleEndian(hello.AsSpan(8)));
        var clientNonce = hello.AsSpan(16, NonceBytes).ToArray();
        var expected = Mac(HelloLabel, from, to, serverNonce, clientNonce);
        if (!CryptographicOperations.FixedTimeEquals(expected, hello.AsSpan(16 + NonceBytes)))
        {
            throw new InvalidDataException("handshake MAC mismatch (wrong cluster key?)");
        }

        if (to != _options.Id || from.IsNone)
        {
            throw new InvalidDataException($"handshake for node {to} from {from}, but this is node {_options.Id}");
        }

        return (from, Mac(SessionLabel, from, to, serverNonce, clientNonce));
    }

    private async Task ReadFramesAsync(NetworkStream stream, NodeId from, byte[] sessionKey, CancellationToken ct)
    {
        var header = new byte[4];
        ulong expectedCounter = 1;
        var mac = new byte[MacBytes];
        while (!ct.IsCancellationRequested)
        {
            await stream.ReadExactlyAsync(header, ct).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (length < 8 + MacBytes || length > _options.MaxFrameBytes)
            {
                throw new InvalidDataException($"frame length {length} out of range");
            }

            var body = new byte[length];
            await stream.ReadExactlyAsync(body, ct).ConfigureAwait(false);
            var signed = body.AsSpan(0, (int)length - MacBytes);
            HMACSHA256.HashData(sessionKey, signed, mac);
            if (!CryptographicOperations.FixedTimeEquals(mac, body.AsSpan((int)length - MacBytes)))
            {
                throw new InvalidDataException("frame MAC mismatch");
            }

            var counter = BinaryPrimitives.ReadUInt64LittleEndian(body);
            if (counter != expectedCounter)
            {
                throw new InvalidDataException($"frame counter {counter}, expected {expectedCounter} (replay or reorder)");
            }

            expectedCounter++;
            Message message;
            try
            {
                message = ConfigCodec.DecodeMessage(signed[8..]);
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"undecodable message: {e.Message}");
            }

            if (message.From != from || message.To != _options.Id)
            {
                throw new InvalidDataException($"message {message.From}->{message.To} on a connection from {from}");
            }

            Counters.Received.Add();
            _receive?.Invoke(message);
        }
    }

    private byte[] Mac(byte[] label, NodeId from, NodeId to, ReadOnlySpan<byte> serverNonce, ReadOnlySpan<byte> clientNonce)
    {
        var data = new byte[label.Length + 16 + (2 * NonceBytes)];
        label.CopyTo(data, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(label.Length), from.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(label.Length + 8), to.Value);
        serverNonce.CopyTo(data.AsSpan(label.Length + 16));
        clientNonce.CopyTo(data.AsSpan(label.Length + 16 + NonceBytes));
        return HMACSHA256.HashData(_options.ClusterKey, data);
    }

    internal static (string Host, int Port) SplitHostPort(string address)
    {
        var colon = address.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            throw new FormatException($"'{address}' is not host:port");
        }

        return (address[..colon].Trim('[', ']'), port);
    }

    internal static IPEndPoint ParseEndPoint(string address)
    {
        // A DNS name (e.g. a pod's name under a headless Service) is not bindable: listen on every interface.
        var (host, port) = SplitHostPort(address);
        var ip = IPAddress.TryParse(host, out var parsed) ? parsed : host == "localhost" ? IPAddress.Loopback : IPAddress.Any;
        return new IPEndPoint(ip, port);
    }

    private sealed record Peer(NodeId Id, string Address, Channel<Message> Queue)
    {
        public CancellationTokenSource Stop { get; } = new();
    }
}
