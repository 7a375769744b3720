using System.Globalization;

namespace MemoryCluster.Instance.Host;

/// <summary>What to do with the Raft state found in the data directory at start.</summary>
internal enum RaftIdentityStep
{
    Unknown = 0,

    /// <summary>The state is this member's: use it.</summary>
    Keep = 1,

    /// <summary>No identity recorded yet (a first start, or state from before it was recorded): record this member's id.</summary>
    Record = 2,

    /// <summary>
    /// The state belongs to an earlier member of this data directory, removed since (ids are never reused, so a pod
    /// that comes back after a scale down joins under a new id): move it aside, never deleted, and join afresh. Its
    /// PostgreSQL data goes aside too: the primary dropped its slot when it was removed, so the WAL it would need to
    /// catch up may be gone; it clones the primary as every new replica does.
    /// </summary>
    Retire = 3,

    /// <summary>Another member's state and this member does not join: started with the wrong id or the wrong data.</summary>
    Refuse = 4,
}

/// <summary>
/// The Raft state in <c>raft/</c> belongs to one member id, recorded in <c>raft/id</c> at its first start. A manager
/// started under another id never uses it: as a joining member it moves the state and the PostgreSQL data aside
/// (<c>raft.retired-ID</c>, <c>pgdata.retired-ID</c>, never deleted) and starts afresh; otherwise it refuses to start.
/// Runs before any service starts (PostgreSQL is not running).
/// </summary>
internal static class RaftIdentity
{
    public const string FileName = "id";

    /// <summary>The decision, pure.</summary>
    public static RaftIdentityStep Decide(ulong? recorded, ulong id, bool join) =>
        recorded is null ? RaftIdentityStep.Record
        : recorded == id ? RaftIdentityStep.Keep
        : join ? RaftIdentityStep.Retire
        : RaftIdentityStep.Refuse;

    /// <summary>Reads the recorded id, decides, and acts before the Raft storage opens the folder; returns what it did.</summary>
    public static RaftIdentityStep Prepare(string raftDirectory, string dataDirectory, ulong id, bool join, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(raftDirectory);
        ArgumentNullException.ThrowIfNull(dataDirectory);
        ArgumentNullException.ThrowIfNull(log);
        var file = Path.Combine(raftDirectory, FileName);
        ulong? recorded = null;
        if (File.Exists(file))
        {
            var text = File.ReadAllText(file).Trim();
            recorded = ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
                ? value
                : throw new InvalidOperationException($"{file}: '{text}' is not a member id; the owner of this Raft state cannot be told");
        }

        var step = Decide(recorded, id, join);
        switch (step)
        {
            case RaftIdentityStep.Refuse:
                throw new InvalidOperationException(
                    $"{raftDirectory} holds the Raft state of member {recorded}, and this manager is member {id} and does not join; refusing to start (wrong id or wrong data directory)");
            case RaftIdentityStep.Retire:
                var aside = MoveAside(raftDirectory, recorded!.Value);
                var data = Directory.Exists(dataDirectory) ? MoveAside(dataDirectory, recorded.Value) : null;
                log($"{raftDirectory} held the Raft state of member {recorded}, removed from the cluster; moved it to {aside}{(data is null ? string.Empty : $" and its PostgreSQL data to {data}")}; joining afresh as member {id}");
                Directory.CreateDirectory(raftDirectory);
                File.WriteAllText(file, id.ToString(CultureInfo.InvariantCulture) + "\n");
                break;
            case RaftIdentityStep.Record:
                Directory.CreateDirectory(raftDirectory);
                File.WriteAllText(file, id.ToString(CultureInfo.InvariantCulture) + "\n");
                break;
        }

        return step;
    }

    private static string MoveAside(string directory, ulong member)
    {
        var aside = directory + string.Create(CultureInfo.InvariantCulture, $".retired-{member}");
        for (var n = 1; Directory.Exists(aside); n++)
        {
            aside = directory + string.Create(CultureInfo.InvariantCulture, $".retired-{member}.{n}");
        }

        Directory.Move(directory, aside);
        return aside;
    }
}
