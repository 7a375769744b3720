using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Failover.Sim;

/// <summary>The host's state queries: what the real PostgresObserver does for the node, one query at a time.</summary>
internal sealed partial class FailoverSimulator
{
    private void ObserveLoop(SimMember m) =>
        OnManager(m, _now + m.Micros(m.Node!.ObserveIntervalMs), () =>
        {
            // As on a loaded host, one query in ten answers up to 2 s after PostgreSQL read the state it shows.
            Observe(m, _random.Next(10) == 0 ? _random.Next(2_000_000) : 0);
            ObserveLoop(m);
        });

    private void KickObserve(SimMember m)
    {
        if (!m.ObserveScheduled)
        {
            m.ObserveScheduled = true;
            OnManager(m, _now + 500, () =>
            {
                m.ObserveScheduled = false;
                Observe(m);
            });
        }
    }

    private void Observe(SimMember m, long answerAfter = 0)
    {
        var pg = m.Pg;
        if (!pg.Running || m.QueryInFlight)
        {
            return;
        }

        if (!pg.Answers(_now))
        {
            Step(m, now => new PostgresObserved(now, null, pg.Frozen ? "TimeoutException: the state query timed out" : "PostgresException: the database system is starting up"));
            return;
        }

        var standbys = _members
            .Where(s => s != m && s.Pg.Running && s.Pg.Upstream == m.Id && s.Pg.Streaming)
            .Select(s => new StandbyObservation(s.Name, "streaming", _options.Mode == ReplicationMode.Quorum ? "quorum" : "async", new Lsn((ulong)s.Pg.Flushed), new Lsn((ulong)s.Pg.Replayed), 0, ReplyAgeSeconds: 0))
            .ToList();
        var histories = pg.Histories.ToDictionary(h => new TimelineId(h.Key), h => h.Value);
        var observation = new PgObservation(
            pg.InRecovery,
            new TimelineId(pg.DataTimeline),
            pg.InRecovery ? Lsn.Zero : new Lsn((ulong)pg.Flushed),
            pg.InRecovery ? Lsn.Zero : new Lsn((ulong)pg.Flushed),
            pg.InRecovery && pg.StreamingRequested ? new Lsn((ulong)pg.Flushed) : null,
            new Lsn((ulong)pg.Replayed),
            !pg.InRecovery ? WalReceiverStatus.None : pg.Streaming ? WalReceiverStatus.Streaming : pg.Upstream.IsNone ? WalReceiverStatus.None : WalReceiverStatus.Waiting,
            pg.Streaming ? M(pg.Upstream).Name : null,
            standbys,
            histories,
            Sync: new QuorumSetting(pg.SyncRequired, [.. _members.Where(o => o != m).Select(o => o.Name)]));
        answerAfter += m.ObserveLag;
        if (answerAfter == 0)
        {
            Step(m, now => new PostgresObserved(now, observation, null, _options.BreakQueryDate ? null : now));
            return;
        }

        var started = m.LocalMs(_now);
        m.QueryInFlight = true;
        OnManager(m, _now + answerAfter, () =>
        {
            m.QueryInFlight = false;
            Step(m, now => new PostgresObserved(now, observation, null, _options.BreakQueryDate ? null : started));
        });
    }
}
