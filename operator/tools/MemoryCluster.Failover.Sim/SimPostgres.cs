using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Failover.Sim;

/// <summary>
/// A stretch of WAL with one origin: written on the timeline created by <see cref="Origin"/> (a unique id per
/// promotion, where PostgreSQL only sees <see cref="Timeline"/>, which two promotions can share).
/// </summary>
internal readonly record struct WalRun(int Origin, uint Timeline, long From, long To);

/// <summary>A commit some primary wrote at <see cref="Lsn"/> on the timeline <see cref="Origin"/>.</summary>
internal readonly record struct Commit(long Id, int Origin, long Lsn, MemberId WrittenOn);

/// <summary>
/// What matters of one PostgreSQL server for failover, modelled after PostgreSQL 15: WAL flushed and replayed on a
/// line of timelines with history files; streaming replication that refuses a timeline that forked off before the
/// replay position (and, like PostgreSQL, cannot tell two timelines with the same id apart); promotion to a new
/// timeline (max known + 1); crash recovery that replays local WAL before the WAL receiver starts (until then
/// pg_last_wal_receive_lsn() is null); clean and immediate stops; pg_rewind and pg_basebackup.
/// </summary>
internal sealed class SimPostgres(MemberId id)
{
    public MemberId Id { get; } = id;

    /// <summary>The flushed WAL, contiguous from 0.</summary>
    public List<WalRun> Wal { get; private set; } = [];

    /// <summary>Timeline history files in pg_wal.</summary>
    public Dictionary<uint, WalLine> Histories { get; private set; } = [];

    public bool HasData { get; private set; }

    /// <summary>standby.signal present.</summary>
    public bool StandbySignal { get; set; }

    public bool Running { get; private set; }

    /// <summary>SIGSTOP: no progress, no answers, no writes, until continued.</summary>
    public bool Frozen { get; set; }

    /// <summary>The startup process alone is stopped (SIGSTOP): no replay, a promotion never finishes; queries answer.</summary>
    public bool StartupStalled { get; set; }

    public bool InRecovery { get; private set; }

    /// <summary>Until then (true time), a starting postmaster accepts no connections.</summary>
    public long ReadyAt { get; private set; }

    /// <summary>Promotion signalled, finishing at <see cref="PromotionDoneAt"/>.</summary>
    public long PromotionDoneAt { get; private set; } = -1;

    public long Replayed { get; private set; }

    /// <summary>A hot standby answers queries only once it has replayed this far (after pg_rewind: where the source was).</summary>
    public long MinRecoveryPoint { get; private set; }

    /// <summary>Streaming was requested in this postmaster's life (pg_last_wal_receive_lsn() is not null).</summary>
    public bool StreamingRequested { get; private set; }

    /// <summary>Whom primary_conninfo names (none: no one).</summary>
    public MemberId Upstream { get; set; }

    /// <summary>Connected and streaming from <see cref="Upstream"/> right now.</summary>
    public bool Streaming { get; set; }

    /// <summary>The replica refuses the upstream's timeline (forked before its replay position): it logs so.</summary>
    public string? Refusal { get; set; }

    /// <summary>How fast replay moves, bytes per simulated second (slow on a starved host).</summary>
    public long ReplayRate { get; set; } = 200_000_000;

    /// <summary>Synchronous standbys required (quorum mode: ⌊n/2⌋, ANY k of all others); 0 in async mode.</summary>
    public int SyncRequired { get; set; }

    /// <summary>Commits written here and waiting for synchronous standbys.</summary>
    public List<Commit> Waiting { get; } = [];

    public long Flushed => Wal.Count == 0 ? 0 : Wal[^1].To;

    /// <summary>The newest timeline of which pg_wal has a segment.</summary>
    public uint DataTimeline => Wal.Count == 0 ? 1 : Wal.Max(r => r.Timeline);

    public int DataOrigin => Wal.Count == 0 ? 0 : Wal[^1].Origin;

    /// <summary>Writable: running out of recovery, not frozen, not still starting.</summary>
    public bool Writable(long now) => Running && !InRecovery && !Frozen && now >= ReadyAt;

    public bool Answers(long now) => Running && !Frozen && now >= ReadyAt && (!InRecovery || Replayed >= MinRecoveryPoint);

    public WalLine Line => Histories.TryGetValue(DataTimeline, out var l) ? l : new WalLine(new TimelineId(DataTimeline), []);

    public DataKind Kind => !HasData ? DataKind.Missing : StandbySignal ? DataKind.Standby : DataKind.Primary;

    /// <summary>Whether this WAL holds <paramref name="commit"/> (same origin at that position).</summary>
    public bool Holds(Commit commit)
    {
        foreach (var run in Wal)
        {
            if (run.From < commit.Lsn && commit.Lsn <= run.To)
            {
                return run.Origin == commit.Origin;
            }
        }

        return false;
    }

    /// <summary>The origin of the WAL byte at <paramref name="lsn"/> (0 when beyond the end).</summary>
    public int OriginAt(long lsn)
    {
        foreach (var run in Wal)
        {
            if (run.From < lsn && lsn <= run.To)
            {
                return run.Origin;
            }
        }

        return 0;
    }

    public void InitDb(int origin)
    {
        Wal = [new WalRun(origin, 1, 0, 1000)];
        Histories = [];
        HasData = true;
        StandbySignal = false;
        Replayed = 1000;
        MinRecoveryPoint = 0;
    }

    /// <summary>pg_basebackup: a copy of the source's data and WAL.</summary>
    public void CloneFrom(SimPostgres source)
    {
        Wal = [.. source.Wal];
        Histories = new Dictionary<uint, WalLine>(source.Histories);
        HasData = true;
        StandbySignal = true;
        Replayed = source.Flushed;
        MinRecoveryPoint = source.Flushed;
    }

    public void MoveAside()
    {
        MinRecoveryPoint = 0;
        Wal = [];
        Histories = [];
        HasData = false;
        StandbySignal = false;
        Replayed = 0;
    }

    /// <summary>
    /// pg_rewind onto <paramref name="source"/>: like PostgreSQL, it compares timeline ids and history entries; on the
    /// same timeline id it decides there is nothing to do (even when the two differ); otherwise the data becomes the
    /// source's, to be replayed from the branch point.
    /// </summary>
    public void RewindFrom(SimPostgres source)
    {
        var sourceLine = source.Line;
        var mine = Line;
        if (mine.Timeline == sourceLine.Timeline)
        {
            // "source and target cluster are on the same timeline; no rewind required"
            StandbySignal = true;
            return;
        }

        var (relation, _) = sourceLine.Relate(mine, new Lsn((ulong)Flushed), new Lsn((ulong)Flushed));
        if (relation == LineRelation.OnLine)
        {
            // "no rewind required": the target's WAL is a prefix of the source's line.
            StandbySignal = true;
            return;
        }

        var branch = BranchPoint(mine, sourceLine);

        // pg_rewind copies the source's files while it goes on writing: the WAL copied may stop short of where the
        // source was at the end, which becomes the minimum recovery point; the rest has to be streamed.
        Wal = [.. source.Wal];
        Histories = new Dictionary<uint, WalLine>(source.Histories);
        StandbySignal = true;
        Replayed = Math.Min(branch, source.Flushed);
        MinRecoveryPoint = source.Flushed;
        if (source.Running && !source.InRecovery && Wal.Count > 0 && Wal[^1].To - Wal[^1].From > 400)
        {
            Wal[^1] = Wal[^1] with { To = Wal[^1].To - 400 };
        }
    }

    /// <summary>Where two lines part: the end of the last timeline they share.</summary>
    private static long BranchPoint(WalLine a, WalLine b)
    {
        long point = 0;
        for (var i = 0; i < Math.Min(a.Ancestors.Count, b.Ancestors.Count); i++)
        {
            if (a.Ancestors[i] != b.Ancestors[i])
            {
                return Math.Min((long)a.Ancestors[i].End.Value, (long)b.Ancestors[i].End.Value);
            }

            point = (long)a.Ancestors[i].End.Value;
        }

        var ea = a.Ancestors.Count > b.Ancestors.Count ? (long)a.Ancestors[b.Ancestors.Count].End.Value : long.MaxValue;
        var eb = b.Ancestors.Count > a.Ancestors.Count ? (long)b.Ancestors[a.Ancestors.Count].End.Value : long.MaxValue;
        return Math.Max(point, Math.Min(ea, eb) == long.MaxValue ? point : Math.Min(ea, eb));
    }

    /// <summary>Starts the postmaster: crash (or archive) recovery replays from somewhat before the end; no timeline change.</summary>
    public void Start(long now, long startDelay, bool standby, Random random)
    {
        Running = true;
        Frozen = false;
        StartupStalled = false;
        InRecovery = standby;
        StandbySignal = standby;
        ReadyAt = now + startDelay;
        PromotionDoneAt = -1;
        StreamingRequested = false;
        Streaming = false;
        Refusal = null;
        Waiting.Clear();

        // Restart from the last checkpoint: up to a few MB of local WAL to replay again.
        Replayed = Math.Max(WalStart, Flushed - random.Next(0, 8_000_000));
        if (!standby)
        {
            Replayed = Flushed;
        }
    }

    private long WalStart => Wal.Count == 0 ? 0 : Wal[0].From;

    /// <summary>Immediate death (SIGKILL of everything, or a crash): nothing more is written or shipped.</summary>
    public void Kill()
    {
        Running = false;
        Frozen = false;
        StartupStalled = false;
        Streaming = false;
        PromotionDoneAt = -1;
        Waiting.Clear();
    }

    /// <summary>A clean (fast) shutdown; the caller ships the final WAL to connected standbys first.</summary>
    public void StopCleanly()
    {
        // The shutdown checkpoint record.
        if (!InRecovery && Running)
        {
            Append(64);
        }

        Kill();
    }

    /// <summary>A primary writes <paramref name="bytes"/> of WAL; returns the end position.</summary>
    public long Append(long bytes)
    {
        var last = Wal[^1];
        Wal[^1] = last with { To = last.To + bytes };
        Replayed = Wal[^1].To;
        return Wal[^1].To;
    }

    public void SignalPromote(long doneAt) => PromotionDoneAt = doneAt;

    /// <summary>The manager's placeholders: history files for the ids between the data's timeline and the epoch; each names no parent (TimelinePlaceholders), so nothing ever follows one.</summary>
    public void WriteTimelinePlaceholders(Epoch epoch)
    {
        for (var id = DataTimeline + 1; id < epoch.Value; id++)
        {
            Histories.TryAdd(id, new WalLine(new TimelineId(id), []));
        }
    }

    /// <summary>Promotion completes: replay of everything flushed, then a new timeline (the newest known + 1) forks at the end.</summary>
    public void FinishPromotion(int origin)
    {
        Replayed = Flushed;

        // As PostgreSQL: the first timeline id after the consecutive history files from the current one.
        var newTimeline = DataTimeline + 1;
        while (Histories.ContainsKey(newTimeline))
        {
            newTimeline++;
        }

        var line = Line;
        var ancestors = new List<TimelineSwitch>(line.Ancestors) { new(line.Timeline, new Lsn((ulong)Flushed)) };
        Histories[newTimeline] = new WalLine(new TimelineId(newTimeline), ancestors);
        Wal.Add(new WalRun(origin, newTimeline, Flushed, Flushed));
        InRecovery = false;
        StandbySignal = false;
        PromotionDoneAt = -1;
        Upstream = MemberId.None;
        Streaming = false;
    }

    /// <summary>Replay moves on (a starved host replays slowly); once all local WAL is replayed, streaming is requested.</summary>
    public void AdvanceReplay(long elapsedMicros)
    {
        if (!Running || Frozen || StartupStalled || !InRecovery)
        {
            return;
        }

        Replayed = Math.Min(Flushed, Replayed + Math.Max(1, ReplayRate * elapsedMicros / 1_000_000));
        if (Replayed >= Flushed && !Upstream.IsNone)
        {
            StreamingRequested = true;
        }
    }

    /// <summary>
    /// One round of streaming from <paramref name="upstream"/> (connected over the network): PostgreSQL's checks, then
    /// the WAL the upstream has beyond this replica's position arrives.
    /// </summary>
    public void StreamFrom(SimPostgres upstream)
    {
        if (!Running || Frozen || !InRecovery || Replayed < Flushed && !StreamingRequested)
        {
            Streaming = false;
            return;
        }

        StreamingRequested = true;
        var theirs = upstream.Line;
        var mine = Line;

        // The walreceiver fetches the upstream's history files it lacks.
        foreach (var (tli, line) in upstream.Histories)
        {
            Histories.TryAdd(tli, line);
        }

        long from;
        if (theirs.Timeline == mine.Timeline)
        {
            // Same timeline id: PostgreSQL streams on from where this WAL ends, whatever the origins.
            from = Flushed;
        }
        else
        {
            var end = theirs.EndOf(mine.Timeline);
            if (end is null)
            {
                Refusal = $"could not receive data from WAL stream: ERROR:  requested timeline {mine.Timeline} is not in this server's history";
                Streaming = false;
                return;
            }

            if (Replayed > (long)end.Value.Value)
            {
                Refusal = $"new timeline {theirs.Timeline} forked off current database system timeline {mine.Timeline} before current recovery point";
                Streaming = false;
                return;
            }

            // Switch at the branch point: anything flushed past it on the old timeline is replaced.
            from = Math.Min(Flushed, (long)end.Value.Value);
        }

        Refusal = null;
        if (upstream.Flushed < from)
        {
            // The upstream is behind this replica on the same timeline id: nothing to stream ("requested starting
            // point is ahead of the WAL flush position").
            Streaming = false;
            return;
        }

        Streaming = true;
        if (upstream.Flushed == from && from == Flushed)
        {
            return;
        }

        // Keep this WAL up to `from`, then the upstream's WAL from `from` on.
        var kept = new List<WalRun>();
        foreach (var run in Wal)
        {
            if (run.From >= from)
            {
                break;
            }

            kept.Add(run.To > from ? run with { To = from } : run);
        }

        foreach (var run in upstream.Wal)
        {
            if (run.To <= from)
            {
                continue;
            }

            var piece = run.From < from ? run with { From = from } : run;
            if (kept.Count > 0 && kept[^1].Origin == piece.Origin && kept[^1].Timeline == piece.Timeline && kept[^1].To == piece.From)
            {
                kept[^1] = kept[^1] with { To = piece.To };
            }
            else
            {
                kept.Add(piece);
            }
        }

        Wal = kept;
        Replayed = Math.Min(Replayed, Flushed);
    }
}
