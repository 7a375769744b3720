using MemoryCluster.Raft.Sim;

namespace MemoryCluster.Raft.Tests;

public sealed class HostTests
{
    [Fact]
    public async Task A_host_whose_storage_fails_stops_says_so_at_critical_level_and_shows_the_fault()
    {
        var critical = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var members = new[] { new Member(new NodeId(1), "n1", true) };
        await using var host = new RaftHost<RegisterState>(
            new RaftHostOptions
            {
                Id = new NodeId(1),
                InitialMembers = members,
                Log = (level, text) =>
                {
                    if (level == RaftLogLevel.Critical)
                    {
                        critical.TrySetResult(text);
                    }
                },
            },
            new RegisterStateMachine(members),
            new FailingStorage(),
            new NoTransport());
        Assert.Null(host.Fault);

        // The single member campaigns on its own; persisting its vote is the first write, and it fails.
        await host.StartAsync(CancellationToken.None);
        var text = await critical.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Contains("stopped", text, StringComparison.Ordinal);
        Assert.IsType<IOException>(host.Fault);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => host.ProposeAsync(RegisterCommand.Set(0, 1).Encode(), CancellationToken.None));
        Assert.Same(host.Fault, refused.InnerException);
    }

    private sealed class FailingStorage : IRaftStorage
    {
        public PersistentState Load() => PersistentState.Empty;

        public void Save(HardState? hardState, IReadOnlyList<Entry> entries, Snapshot? snapshot) => throw new IOException("disk gone");

        public void Compact(Snapshot snapshot) => throw new IOException("disk gone");

        public void Dispose()
        {
        }
    }

    private sealed class NoTransport : IRaftTransport
    {
        public Task StartAsync(Action<Message> receive, CancellationToken cancellationToken) => Task.CompletedTask;

        public void Send(Message message)
        {
        }

        public void UpdatePeers(IReadOnlyDictionary<NodeId, string> addresses)
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
