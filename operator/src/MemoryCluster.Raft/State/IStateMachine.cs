namespace MemoryCluster.Raft;

/// <summary>Outcome of applying one committed entry.</summary>
public enum ApplyOutcome
{
    Unknown = 0,

    /// <summary>The entry took effect.</summary>
    Applied = 1,

    /// <summary>A precondition of the command (e.g. a compare-and-set) did not hold; nothing changed.</summary>
    Conflict = 2,

    /// <summary>The command is malformed or not allowed in this state; nothing changed.</summary>
    Invalid = 3,
}

/// <summary>The result of one applied entry: its outcome, the state after it, and why it was refused (if it was).</summary>
/// <typeparam name="TState">The state machine's (immutable) state.</typeparam>
public sealed record ApplyResult<TState>(ApplyOutcome Outcome, TState State, string Reason = "");

/// <summary>
/// The replicated state machine, driven by the host on its single loop. Raft treats commands as opaque
/// bytes: the state machine decodes them. <see cref="Apply"/> must be deterministic, so every node that
/// applies the same entries reaches the same state.
/// </summary>
/// <typeparam name="TState">The state machine's (immutable) state.</typeparam>
public interface IStateMachine<TState>
{
    /// <summary>The state after the last applied entry (or restored snapshot).</summary>
    TState Current { get; }

    /// <summary>
    /// Applies one committed entry (commands, no-ops and configurations alike), deterministically. A
    /// command that cannot be decoded must be refused, never half-applied.
    /// </summary>
    ApplyResult<TState> Apply(Entry entry);

    /// <summary>Encodes <see cref="Current"/> for a snapshot.</summary>
    byte[] TakeSnapshot();

    /// <summary>Replaces the state with a snapshot's (data empty: only its configuration and index are known).</summary>
    void Restore(Snapshot snapshot);
}
