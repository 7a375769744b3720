namespace MemoryCluster.Raft;

/// <summary>
/// The persist-then-send contract in one place: persist, send, apply, advance. Used by
/// the host, the simulator and the tests.
/// </summary>
internal static class ReadyProcessor
{
    /// <summary>Handles every pending Ready; returns how many were handled (bounded).</summary>
    public static int Drain<TState>(
        RawNode node,
        IRaftStorage storage,
        IStateMachine<TState> stateMachine,
        Action<Message> send,
        Action<Entry, ApplyResult<TState>>? applied = null,
        Action<ReadState>? read = null)
    {
        var handled = 0;
        for (; handled < 1000 && node.HasReady; handled++)
        {
            var ready = node.GetReady();

            // 1. Persist (fsync) before anything that depends on it leaves this node.
            if (ready.MustPersist)
            {
                storage.Save(ready.HardState, ready.Entries, ready.Snapshot);
            }

            // 2. Send.
            foreach (var m in ready.Messages)
            {
                send(m);
            }

            // 3. Apply.
            if (ready.Snapshot is not null)
            {
                stateMachine.Restore(ready.Snapshot);
            }

            foreach (var entry in ready.CommittedEntries)
            {
                var result = stateMachine.Apply(entry);
                applied?.Invoke(entry, result);
            }

            foreach (var rs in ready.ReadStates)
            {
                read?.Invoke(rs);
            }

            // 4. Advance.
            node.Advance(ready);
        }

        return handled;
    }
}
