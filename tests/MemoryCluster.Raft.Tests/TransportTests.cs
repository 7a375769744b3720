using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace MemoryCluster.Raft.Tests;

/// <summary>
/// Speaks the wire protocol by hand (an independent reading of docs/raft.md) to check that frames with a
/// bad MAC, a replayed counter or a forged sender are dropped, counted, and never reach the node.
/// </summary>
[Trait("Category", "Integration")]
[Collection(TimingSensitive.Name)]
public sealed class TransportTests
{
    private static byte[] Mac(byte[] key, string label, ulong from, ulong to, byte[] ns, byte[] nc)
    {
        var data = new List<byte>(Encoding.ASCII.GetBytes(label));
        data.AddRange(BitConverter.GetBytes(from));
        data.AddRange(BitConverter.GetBytes(to));
        data.AddRange(ns);
        data.AddRange(nc);
        return HMACSHA256.HashData(key, data.ToArray());
    }

    private static async Task<(TcpClient Client, NetworkStream Stream, byte[] SessionKey)> ConnectAsync(
        System.Net.IPEndPoint endPoint, byte[] key, ulong from, ulong to, CancellationToken ct)
    {
        var client = new TcpClient();
        await client.ConnectAsync(endPoint, ct);
        var stream = client.GetStream();
        var ns = new byte[16];
        await stream.ReadExactlyAsync(ns, ct);
        var nc = RandomNumberGenerator.GetBytes(16);
        var hello = new byte[48 + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(hello, from);
        BinaryPrimitives.WriteUInt64LittleEndian(hello.AsSpan(8), to);
        nc.CopyTo(hello, 16);
        Mac(key, "memorycluster-raft-hello-v1", from, to, ns, nc).CopyTo(hello, 32);
        await stream.WriteAsync(hello, ct);
        return (client, stream, Mac(key, "memorycluster-raft-session-v1", from, to, ns, nc));
    }

    private static byte[] Frame(byte[] sessionKey, ulong counter, Message message, bool tamper = false)
    {
        var payload = ConfigCodec.EncodeMessage(message);
        var frame = new byte[4 + 8 + payload.Length + 32];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(8 + payload.Length + 32));
        BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(4), counter);
        payload.CopyTo(frame, 12);
        HMACSHA256.HashData(sessionKey, frame.AsSpan(4, 8 + payload.Length), frame.AsSpan(12 + payload.Length));
        if (tamper)
        {
            frame[12] ^= 0x01;
        }

        return frame;
    }

    [Theory]
    [InlineData("tampered")]
    [InlineData("replayed")]
    [InlineData("forged-sender")]
    public async Task Bad_frames_after_a_valid_handshake_are_dropped_and_counted(string kind)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var received = new List<Message>();
        await using var transport = new TcpRaftTransport(new TcpRaftTransportOptions { Id = new NodeId(1), ListenAddress = "127.0.0.1:0", ClusterKey = key, ConnectTimeout = TimeSpan.FromSeconds(2) });
        await transport.StartAsync(m => { lock (received) { received.Add(m); } }, CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var (client, stream, sessionKey) = await ConnectAsync(transport.LocalEndPoint, key, from: 2, to: 1, cts.Token);
        using (client)
        {
            var good = new Message(MessageType.HeartbeatResponse, new NodeId(2), new NodeId(1), new Term(1), Context: 1);
            await stream.WriteAsync(Frame(sessionKey, 1, good), cts.Token);
            await LoopbackCluster.EventuallyAsync(() => { lock (received) { return received.Count == 1; } }, cts.Token);

            var bad = kind switch
            {
                "tampered" => Frame(sessionKey, 2, good with { Context = 2 }, tamper: true),
                "replayed" => Frame(sessionKey, 1, good),
                _ => Frame(sessionKey, 2, good with { From = new NodeId(3) }),
            };
            await stream.WriteAsync(bad, cts.Token);
            await LoopbackCluster.EventuallyAsync(() => transport.Counters.FramesRejected == 1, cts.Token);

            // The connection is closed after a bad frame: later frames on it are not read either.
            try
            {
                await stream.WriteAsync(Frame(sessionKey, 2, good with { Context = 3 }), cts.Token);
            }
            catch (IOException)
            {
                // Closed by the server already.
            }
        }

        await Task.Delay(100, cts.Token);
        lock (received)
        {
            Assert.Single(received);
        }

        Assert.Equal(1, transport.Counters.MessagesReceived);
    }

    [Fact]
    public async Task Handshake_for_another_node_is_refused()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        await using var transport = new TcpRaftTransport(new TcpRaftTransportOptions { Id = new NodeId(1), ListenAddress = "127.0.0.1:0", ClusterKey = key, ConnectTimeout = TimeSpan.FromSeconds(2) });
        await transport.StartAsync(_ => { }, CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var (client, _, _) = await ConnectAsync(transport.LocalEndPoint, key, from: 2, to: 7, cts.Token);
        using (client)
        {
            await LoopbackCluster.EventuallyAsync(() => transport.Counters.HandshakesRejected == 1, cts.Token);
        }
    }

    [Theory]
    [InlineData("127.0.0.1:7400", "127.0.0.1", 7400)]
    [InlineData("localhost:1", "127.0.0.1", 1)]
    [InlineData("demo-0.demo-hl.ns.svc:7400", "0.0.0.0", 7400)]
    [InlineData("[::1]:9", "::1", 9)]
    public void Listen_addresses_bind_to_an_ip_or_to_every_interface_for_a_name(string address, string ip, int port)
    {
        var endPoint = TcpRaftTransport.ParseEndPoint(address);
        Assert.Equal(ip, endPoint.Address.ToString());
        Assert.Equal(port, endPoint.Port);
        Assert.Throws<FormatException>(() => TcpRaftTransport.ParseEndPoint("no-port"));
    }
}
