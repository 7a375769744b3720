using System.Globalization;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.Failover.Sim;

/// <summary>The world around the managers: the network, PostgreSQL's replication, the writers, the watchdogs, the faults and the invariants.</summary>
internal sealed partial class FailoverSimulator
{
    private enum Channel
    {
        Unknown = 0,
        Raft = 1,
        Http = 2,
    }

    /// <summary>Delivers <paramref name="deliver"/> after a network delay, unless a partition or loss drops it.</summary>
    private void Send(MemberId from, MemberId to, Channel channel, Action deliver)
    {
        if (_blocked.Contains((from, to)) || (channel == Channel.Http && _httpBlocked.Contains((from, to))) || (from != to && _random.NextDouble() < _loss))
        {
            return;
        }

        var delay = from == to ? 50 : 200 + _random.Next(_random.Next(40) == 0 ? 80_000 : 3_000);
        Schedule(_now + delay, new Event(EventKind.Deliver, Run: deliver));
    }

    /// <summary>PostgreSQL's own connections (replication, pg_basebackup, pg_rewind) between two members.</summary>
    private bool PgReachable(MemberId a, MemberId b) =>
        a == b || (!_blocked.Contains((a, b)) && !_blocked.Contains((b, a)) && !_pgBlocked.Contains((a, b)) && !_pgBlocked.Contains((b, a)));

    // ---------------------------------------------------------------- replication

    private void Stream()
    {
        foreach (var m in _members)
        {
            var pg = m.Pg;
            if (pg.PromotionDoneAt >= 0 && _now >= pg.PromotionDoneAt && pg.Running && !pg.Frozen && !pg.StartupStalled && pg.InRecovery)
            {
                pg.FinishPromotion(NewOrigin());
                TraceLine($"{m.Name}: promotion done: timeline {pg.DataTimeline} from {pg.Line}");
            }
        }

        foreach (var m in _members)
        {
            var pg = m.Pg;
            if (!pg.Running || pg.Frozen || !pg.InRecovery)
            {
                continue;
            }

            pg.AdvanceReplay(StreamEvery);
            if (pg.Upstream.IsNone)
            {
                pg.Streaming = false;
                continue;
            }

            var upstream = M(pg.Upstream).Pg;
            var refusedBefore = pg.Refusal;
            if (upstream.Answers(_now) && PgReachable(m.Id, pg.Upstream) && pg.StreamingRequested)
            {
                pg.StreamFrom(upstream);
            }
            else
            {
                pg.Streaming = false;
            }

            if (pg.Refusal is { } refusal && refusal != refusedBefore && m.ManagerUp && TimelineRefused.IsRefusal(refusal))
            {
                var line = refusal;
                OnManager(m, _now + 100, () => Step(m, now => new TimelineRefused(now, line)));
            }
        }

        // Synchronous commits: acknowledged once ANY k other members streaming from the primary have flushed them.
        foreach (var m in _members)
        {
            var pg = m.Pg;
            if (pg.Waiting.Count == 0 || !pg.Running || pg.Frozen)
            {
                continue;
            }

            var standbys = _members.Where(s => s != m && s.Pg.Running && s.Pg.Upstream == m.Id && s.Pg.Streaming && PgReachable(s.Id, m.Id)).ToList();
            for (var i = 0; i < pg.Waiting.Count; i++)
            {
                var commit = pg.Waiting[i];
                if (standbys.Count(s => s.Pg.Holds(commit)) >= pg.SyncRequired)
                {
                    Ack(commit);
                    pg.Waiting.RemoveAt(i--);
                }
            }
        }
    }

    // ---------------------------------------------------------------- writers: sessions on every member

    private void Write()
    {
        foreach (var m in _members)
        {
            var pg = m.Pg;
            if (!pg.Writable(_now))
            {
                continue;
            }

            var lsn = pg.Append(200);
            var commit = new Commit(++_nextCommit, pg.DataOrigin, lsn, m.Id);
            if (_options.Mode == ReplicationMode.Quorum && pg.SyncRequired > 0)
            {
                if (pg.Waiting.Count < 1000)
                {
                    pg.Waiting.Add(commit);
                }
            }
            else
            {
                Ack(commit);
            }
        }
    }

    private void Ack(Commit commit)
    {
        if (_options.Mode == ReplicationMode.Quorum && _newestAccepting is { } latest && latest != commit.WrittenOn && M(latest).Pg.Writable(_now) && CanAcknowledge(M(latest)) && !M(latest).Pg.Holds(commit))
        {
            // A commit acknowledged by a member other than the newest primary, which lacks it: lost on failover.
            Violation($"{M(commit.WrittenOn).Name} acknowledged commit {commit.Id} at {commit.Lsn} while {M(latest).Name}, the newer primary, accepts writes without it");
        }

        _acked.Add(commit);
        if (_writesExpectedAfter is { } after && _now > after)
        {
            _writesExpectedAfter = null;
        }
    }

    private long? _writesExpectedAfter;

    /// <summary>From now, some commit must be acknowledged within <paramref name="within"/>.</summary>
    private void ExpectWritesWithin(long within)
    {
        var from = _now + 1_000_000;
        _writesExpectedAfter = from;
        At(_now + within, () =>
        {
            if (_writesExpectedAfter == from)
            {
                Violation($"availability: no commit acknowledged within {within / 1_000_000} s of the fault: {Describe()}");
            }
        });
    }

    private long CountLost()
    {
        var primary = _members.FirstOrDefault(m => m.Pg.Writable(_now));
        return primary is null ? 0 : _acked.Count(c => !primary.Pg.Holds(c));
    }

    // ---------------------------------------------------------------- the watchdog process

    private void WatchdogCheck(SimMember m, Event ev)
    {
        if (!m.WatchdogUp)
        {
            return;
        }

        if (m.WatchdogPausedUntil > _now)
        {
            Schedule(m.WatchdogPausedUntil, ev);
            return;
        }

        var expired = m.WatchdogDeadline is { } d && m.LocalMs(_now) > d;
        if (expired && m.Pg.Running)
        {
            TraceLine($"{m.Name}: the watchdog fires (deadline {m.WatchdogDeadline}, clock {m.LocalMs(_now)})");
            PgExit(m, m.Pg.Kill, expected: false);
        }

        if (!m.ManagerUp && (m.WatchdogDeadline is null || expired))
        {
            m.WatchdogUp = false;
            return;
        }

        Schedule(_now + m.Micros(50), ev);
    }

    // ---------------------------------------------------------------- faults

    private SimMember Any() => _members[_random.Next(_members.Count)];

    private SimMember? Writable() => _members.FirstOrDefault(m => m.Pg.Writable(_now));

    private void InjectFault()
    {
        foreach (var m in _members)
        {
            m.SetRate(_now, DrawRate());
        }

        var kind = _random.Next(16);
        switch (kind)
        {
            case 0:
                TraceLine("fault: none");
                break;
            case 1:
                {
                    var m = Any();
                    if (m.Pg.Running)
                    {
                        TraceLine($"fault: {m.Name}'s postgres crashes");
                        PgExit(m, m.Pg.Kill, expected: false);
                    }

                    break;
                }

            case 2:
                CrashNode(Any(), 500_000 + _random.Next(10_000_000));
                break;
            case 3:
                Pause(Any(), 300_000 + _random.Next(8_000_000));
                break;
            case 4:
                Freeze(Any(), 500_000 + _random.Next(10_000_000));
                break;
            case 5:
                {
                    _blocked.Clear();
                    var side = _members.ToDictionary(m => m.Id, _ => _random.Next(2));
                    foreach (var a in _members)
                    {
                        foreach (var b in _members.Where(b => side[a.Id] != side[b.Id]))
                        {
                            _blocked.Add((a.Id, b.Id));
                        }
                    }

                    TraceLine("fault: partition " + string.Join(",", _members.Select(m => $"{m.Name}:{side[m.Id]}")));
                    break;
                }

            case 6:
                {
                    _blocked.Clear();
                    foreach (var a in _members)
                    {
                        foreach (var b in _members.Where(b => b != a && _random.Next(4) == 0))
                        {
                            _blocked.Add((a.Id, b.Id));
                        }
                    }

                    TraceLine("fault: asymmetric " + string.Join(",", _blocked.Select(l => $"{M(l.Item1).Name}>{M(l.Item2).Name}")));
                    break;
                }

            case 7:
                if (Writable() is { } cut)
                {
                    CutPostgres(cut);
                }

                break;
            case 8:
                if (Writable() is { } isolated)
                {
                    _blocked.Clear();
                    foreach (var other in _members.Where(o => o != isolated))
                    {
                        _blocked.Add((isolated.Id, other.Id));
                        _blocked.Add((other.Id, isolated.Id));
                    }

                    TraceLine($"fault: {isolated.Name} (the primary) isolated");
                }

                break;
            case 9:
                {
                    var m = Any();
                    m.Pg.ReplayRate = 200_000 + _random.Next(5_000_000);
                    TraceLine($"fault: {m.Name} replays slowly ({m.Pg.ReplayRate} B/s)");
                    break;
                }

            case 10:
                _loss = _random.NextDouble() * 0.3;
                TraceLine($"fault: message loss {_loss:0.00}");
                break;
            case 11:
                {
                    var m = Any();
                    if (m.ManagerUp)
                    {
                        TraceLine($"fault: {m.Name}'s manager crashes (postgres and the watchdog go on)");
                        m.ManagerUp = false;
                        m.Node = null;
                        m.Raft = null;
                        Schedule(_now + 300_000 + _random.Next(5_000_000), new Event(EventKind.Restart, m.Id));
                    }

                    break;
                }

            case 12:
                {
                    var m = Any();
                    if (m.ManagerUp && !m.Paused(_now) && m.Node is not null)
                    {
                        var (command, message, _) = m.Node.CheckSwitchover(_random.Next(2) == 0 ? null : _members[_random.Next(_members.Count)].Name);
                        TraceLine($"fault: a switchover is asked of {m.Name}: {message}");
                        if (command is not null)
                        {
                            _switchovers++;
                            DoPropose(m, new Propose(-1, command, "operator's switchover"));
                        }
                    }

                    break;
                }

            case 13:
                if (_members.FirstOrDefault(m => m.Pg.Writable(_now) && m.ManagerUp) is { } primary)
                {
                    Pause(primary, 1_000_000 + _random.Next(8_000_000));
                    if (_options.Mode == ReplicationMode.Quorum && _random.Next(3) == 0)
                    {
                        // A double fault only quorum mode survives: its PostgreSQL goes on, unfenced, until the pause ends.
                        TraceLine($"fault: {primary.Name}'s watchdog paused with it");
                        primary.WatchdogPausedUntil = primary.PausedUntil;
                    }
                }

                break;
            case 14:
                CrashNode(Writable() ?? Any(), 500_000 + _random.Next(10_000_000));
                break;
            default:
                _blocked.Clear();
                _pgBlocked.Clear();
                _loss = 0;
                TraceLine("fault: network healed");
                break;
        }
    }

    private void CrashNode(SimMember m, long downtime)
    {
        if (!m.ManagerUp && !m.Pg.Running)
        {
            return;
        }

        TraceLine($"fault: {m.Name}'s node crashes for {downtime / 1000} ms");
        m.ManagerUp = false;
        m.Node = null;
        m.Raft = null;
        m.WatchdogUp = false;
        m.Pg.Kill();
        Schedule(_now + downtime, new Event(EventKind.Restart, m.Id));
    }

    private void Pause(SimMember m, long duration)
    {
        if (!m.ManagerUp)
        {
            return;
        }

        TraceLine($"fault: {m.Name}'s manager paused (SIGSTOP) for {duration / 1000} ms");
        m.PausedUntil = Math.Max(m.PausedUntil, _now + duration);
    }

    private void Freeze(SimMember m, long duration)
    {
        if (!m.Pg.Running)
        {
            return;
        }

        TraceLine($"fault: {m.Name}'s postgres frozen (SIGSTOP) for {duration / 1000} ms");
        m.Pg.Frozen = true;
        var life = m.PgLife;
        Schedule(_now + duration, new Event(EventKind.Thaw, Run: () =>
        {
            if (m.PgLife == life && m.Pg.Running)
            {
                m.Pg.Frozen = false;
                TraceLine($"{m.Name}: postgres continued (SIGCONT)");
            }
        }));
    }

    private void CutPostgres(SimMember primary)
    {
        _pgBlocked.Clear();
        foreach (var other in _members.Where(o => o != primary))
        {
            _pgBlocked.Add((primary.Id, other.Id));
        }

        TraceLine($"fault: {primary.Name}'s PostgreSQL cut from every standby (Raft and HTTP still pass)");
    }

    private void Heal()
    {
        _healed = true;
        _healedAt = _now;
        _blocked.Clear();
        _pgBlocked.Clear();
        _httpBlocked.Clear();
        _loss = 0;
        TraceLine("heal");
        foreach (var m in _members)
        {
            m.Pg.ReplayRate = 200_000_000;
            m.ObserveLag = 0;
            m.Pg.StartupStalled = false;
            m.WatchdogPausedUntil = 0;
            if (m.Pg.Running && m.Pg.Frozen)
            {
                m.Pg.Frozen = false;
            }

            if (!m.ManagerUp)
            {
                StartManager(m);
            }
        }
    }

    // ---------------------------------------------------------------- named scenarios (the holes the review found)

    private void ScheduleScenario(string name)
    {
        switch (name)
        {
            case "replica-crash-then-primary-crash":
                // Only k standbys receive the primary's WAL (the others are cut from its PostgreSQL), so they alone
                // acknowledge the last commits; their PostgreSQL crashes and replays local WAL slowly; the primary dies
                // meanwhile. A position reported during that replay (or read before the crash and answered after it)
                // is below what they flushed and acknowledged.
                At(15_000_000, () =>
                {
                    var primary = Writable()!;
                    var receivers = _members.Where(m => m != primary).Take(_options.Members / 2).ToList();
                    foreach (var other in _members.Where(m => m != primary && !receivers.Contains(m)))
                    {
                        _pgBlocked.Add((primary.Id, other.Id));
                    }

                    TraceLine($"scenario: only {string.Join(", ", receivers.Select(r => r.Name))} receive {primary.Name}'s WAL");
                    // Half of the runs replay so slowly that no failover can be proven before the primary is back
                    // (20 s); the others replay within seconds, and the failover that follows must pick one of them.
                    var replayRate = _random.Next(2) == 0 ? 5_000 : 1_000_000 + _random.Next(2_000_000);
                    At(_now + 1_500_000, () =>
                    {
                        foreach (var replica in receivers)
                        {
                            replica.Pg.ReplayRate = replayRate;
                            TraceLine($"scenario: {replica.Name}'s postgres crashes and replays slowly");
                            PgExit(replica, replica.Pg.Kill, expected: false);
                        }

                        At(_now + 1_200_000, () => CrashNode(primary, 20_000_000));
                    });
                });
                break;
            case "stop-new-primary-after-promote":
                // The primary dies; the member promoted in its place is paused right after its promotion.
                At(15_000_000, () => CrashNode(Writable()!, 25_000_000));
                WhenNewPrimary(m => Pause(m, 12_000_000));
                break;
            case "lagging-replica-fork":
                // One replica keeps receiving WAL while the others stop receiving it, and no manager can read its
                // reports (HTTP only: Raft still passes); the primary dies and one of the others is promoted. The one
                // that kept up holds WAL past the new timeline's fork, and must be rewound rather than stay stuck.
                At(15_000_000, () =>
                {
                    var primary = Writable()!;
                    var ahead = _members.First(m => m != primary);
                    foreach (var other in _members.Where(o => o != ahead))
                    {
                        _httpBlocked.Add((ahead.Id, other.Id));
                        _httpBlocked.Add((other.Id, ahead.Id));
                    }

                    foreach (var other in _members.Where(o => o != primary && o != ahead))
                    {
                        _pgBlocked.Add((primary.Id, other.Id));
                    }

                    TraceLine($"scenario: only {ahead.Name} receives {primary.Name}'s WAL, and no one reads {ahead.Name}'s reports");
                    At(_now + 4_000_000, () => CrashNode(primary, 30_000_000));
                });
                break;
            case "primary-cut-from-standbys":
                // Quorum mode: the primary reaches the Raft leader but no standby; every commit waits. A healthy
                // majority exists elsewhere, so writes must resume there well before the fault heals.
                At(15_000_000, () =>
                {
                    CutPostgres(Writable()!);
                    ExpectWritesWithin(20_000_000);
                });
                break;
            case "slow-state-query":
                // Quorum mode: the replicas that will alone acknowledge the last commits answer every state query
                // 1.5 s after PostgreSQL read it (a loaded host); the others stop receiving the primary's WAL; then
                // the primary's PostgreSQL crashes and its manager reports the fence, so the leader decides at once.
                // Their positions were read before the primary stopped: they must not count as fresh.
                At(15_000_000, () =>
                {
                    var primary = Writable()!;
                    var slow = _members.Where(m => m != primary).Take(_options.Members / 2).ToList();
                    slow.ForEach(r => r.ObserveLag = 1_500_000);
                    TraceLine($"scenario: {string.Join(", ", slow.Select(r => r.Name))} answer state queries 1.5 s late");
                    At(_now + 2_000_000, () =>
                    {
                        foreach (var other in _members.Where(m => m != primary && !slow.Contains(m)))
                        {
                            _pgBlocked.Add((primary.Id, other.Id));
                        }

                        TraceLine($"scenario: only {string.Join(", ", slow.Select(r => r.Name))} receive {primary.Name}'s WAL");
                        At(_now + 500_000, () =>
                        {
                            TraceLine($"scenario: {primary.Name}'s postgres crashes");
                            PgExit(primary, primary.Pg.Kill, expected: false);
                        });
                    });
                });
                break;
            case "freeze-primary-and-watchdog":
                // Quorum mode (adversarial finding 1): the primary's manager and its watchdog are stopped together for
                // 15 s while its PostgreSQL goes on; the standbys streaming from it would go on acknowledging its
                // commits after the leader read their positions.
                At(15_000_000, () =>
                {
                    var primary = Writable()!;
                    TraceLine($"scenario: {primary.Name}'s manager and watchdog stopped together; its postgres goes on");
                    Pause(primary, 15_000_000);
                    primary.WatchdogPausedUntil = _now + 15_000_000;
                    ExpectWritesWithin(15_000_000);
                });
                break;
            case "freeze-switchover-target":
                // Adversarial finding 3: a switchover's target stops (its manager) right after the hand-over, before it
                // promotes; the old primary, stopped cleanly with every commit, must be able to take over.
                At(15_000_000, () =>
                {
                    var primary = Writable()!;
                    var target = _members.First(m => m != primary && m.Pg.Streaming);
                    var (command, message, _) = primary.Node!.CheckSwitchover(target.Name);
                    TraceLine($"scenario: a switchover to {target.Name} is asked of {primary.Name}: {message}");
                    if (command is not null)
                    {
                        _switchovers++;
                        DoPropose(primary, new Propose(-1, command, "scenario's switchover"));
                    }

                    _onPromoteBegin = m =>
                    {
                        if (m == target)
                        {
                            TraceLine($"scenario: {m.Name}'s manager stops right after the hand-over, before it promotes");
                            Pause(m, 25_000_000);
                            return true;
                        }

                        return false;
                    };
                    ExpectWritesWithin(15_000_000);
                });
                break;
            case "stall-promotion":
                // Adversarial finding 4: the primary's node dies; the member promoted in its place has its startup
                // process stopped, so the promotion never finishes; another replica holds the same WAL.
                At(15_000_000, () =>
                {
                    CrashNode(Writable()!, 30_000_000);
                    _onPromoteBegin = m =>
                    {
                        TraceLine($"scenario: {m.Name}'s startup process stops as its promotion begins");
                        m.Pg.StartupStalled = true;
                        return true;
                    };
                    ExpectWritesWithin(20_000_000);
                });
                break;
            default:
                throw new ArgumentException($"no scenario '{name}' (scenarios: {string.Join(", ", Scenarios)})", nameof(name));
        }
    }

    public static IReadOnlyList<string> Scenarios { get; } =
    [
        "replica-crash-then-primary-crash", "stop-new-primary-after-promote", "lagging-replica-fork", "primary-cut-from-standbys", "slow-state-query",
        "freeze-primary-and-watchdog", "freeze-switchover-target", "stall-promotion",
    ];

    /// <summary>Called as a member begins a promotion; returns true when done with (it is then forgotten).</summary>
    private Func<SimMember, bool>? _onPromoteBegin;

    private void At(long at, Action run) => Schedule(at, new Event(EventKind.Later, Run: run));

    private Action<SimMember>? _onNewPrimary;

    private void WhenNewPrimary(Action<SimMember> action) => _onNewPrimary = action;

    // ---------------------------------------------------------------- invariants

    private void CheckInvariants()
    {
        var writable = _members.Where(m => m.Pg.Writable(_now)).ToList();
        var accepting = writable.Where(CanAcknowledge).ToList();
        if (accepting.Count > 1)
        {
            Violation($"two members accept writes: {string.Join(", ", accepting.Select(m => $"{m.Name} (timeline {m.Pg.DataTimeline})"))}");
        }

        foreach (var m in writable)
        {
            if (_options.Watchdog && m.WatchdogDeadline is null)
            {
                Violation($"{m.Name} accepts writes while its watchdog is disarmed");
            }

            if (!_wasWritable.GetValueOrDefault(m.Id))
            {
                _wasWritable[m.Id] = true;
                TraceLine($"{m.Name}: accepts writes (timeline {m.Pg.DataTimeline}, {m.Pg.Line})");
                if (_wasPrimary is { } previous && previous != m.Id)
                {
                    _failovers++;
                    _onNewPrimary?.Invoke(m);
                    _onNewPrimary = null;
                }

                _wasPrimary = m.Id;
            }
        }

        foreach (var m in _members.Where(m => !m.Pg.Writable(_now)))
        {
            _wasWritable[m.Id] = false;
        }

        // IMPORTANT for the quorum invariant: a member starts to accept writes when it can acknowledge one (quorum mode:
        // k standbys stream from it), not when it leaves recovery: an old primary thawed after the others moved on is
        // writable but acknowledges nothing, and a new one acknowledges nothing before its standbys stream.
        foreach (var m in accepting)
        {
            if (!_wasAccepting.GetValueOrDefault(m.Id))
            {
                _wasAccepting[m.Id] = true;
                if (_options.Mode == ReplicationMode.Quorum)
                {
                    var missing = _acked.Where(c => !m.Pg.Holds(c)).ToList();
                    if (missing.Count > 0)
                    {
                        Violation($"{m.Name} accepts writes without {missing.Count} acknowledged commits, first id {missing[0].Id} at {missing[0].Lsn} written on {M(missing[0].WrittenOn).Name}");
                    }
                }

                _newestAccepting = m.Id;
            }
        }

        foreach (var m in _members.Where(m => !accepting.Contains(m)))
        {
            _wasAccepting[m.Id] = false;
        }

        if (_healed && _healthyAt < 0)
        {
            if (Healthy())
            {
                _healthySince = _healthySince < 0 ? _now : _healthySince;
                if (_now - _healthySince >= 1_000_000)
                {
                    _healthyAt = _healthySince;
                }
            }
            else
            {
                _healthySince = -1;
            }

            if (_now - _healedAt > _options.LivenessBound && _healthyAt < 0)
            {
                Violation($"liveness: {_options.LivenessBound / 1_000_000} s after the faults healed there is no primary taking writes with every replica streaming from it: {Describe()}");
                _healthyAt = _now;
            }
        }
    }

    private MemberId? _wasPrimary;

    private readonly Dictionary<MemberId, bool> _wasAccepting = [];

    private MemberId? _newestAccepting;

    /// <summary>
    /// A writable member can acknowledge a commit: in async mode always; in quorum mode only while at least k standbys
    /// stream from it (a commit it cannot acknowledge is not accepted: the client never hears it committed).
    /// </summary>
    private bool CanAcknowledge(SimMember m) =>
        _options.Mode == ReplicationMode.Async || m.Pg.SyncRequired == 0
        || _members.Count(s => s != m && s.Pg.Running && s.Pg.Upstream == m.Id && s.Pg.Streaming && PgReachable(s.Id, m.Id)) >= m.Pg.SyncRequired;

    /// <summary>One member takes writes and is ready; every other is a ready replica streaming from it.</summary>
    private bool Healthy()
    {
        var writable = _members.Where(m => m.Pg.Writable(_now)).ToList();
        if (writable.Count != 1 || writable[0].Node is not { } node || !node.Status().Ready)
        {
            return false;
        }

        return _members.Where(m => m != writable[0]).All(m => m.Node is { } n && n.Status() is { Ready: true, Role: InstanceRole.Replica } && m.Pg.Upstream == writable[0].Id && m.Pg.Streaming);
    }

    /// <summary>A member's report: its position must not go back on the same data and timeline once exact.</summary>
    private void CheckReported(SimMember m, PeerView view)
    {
        if (!view.PositionSettled || view.Line is null || view.Role is not (InstanceRole.Replica or InstanceRole.Primary))
        {
            return;
        }

        if (m.LastReported is { } last && last.DataIncarnation == m.DataIncarnation && last.Timeline == view.Line.Timeline.Value && view.FlushLsn < last.Flushed)
        {
            Violation($"{m.Name} reported WAL position {view.FlushLsn} on timeline {view.Line.Timeline}, below the {last.Flushed} it reported before on the same data");
        }

        m.LastReported = (view.Line.Timeline.Value, view.FlushLsn, m.DataIncarnation);
    }

    private string Describe() => string.Join("; ", _members.Select(m =>
    {
        var s = m.Node?.Status();
        return string.Create(CultureInfo.InvariantCulture,
            $"{m.Name}: manager {(m.ManagerUp ? m.Paused(_now) ? "paused" : "up" : "down")}, pg {(m.Pg.Running ? m.Pg.InRecovery ? "standby" : "primary" : "stopped")} tl {m.Pg.DataTimeline} flushed {m.Pg.Flushed} replayed {m.Pg.Replayed} upstream {(m.Pg.Upstream.IsNone ? "-" : M(m.Pg.Upstream).Name)} streaming {m.Pg.Streaming}{(m.Pg.Refusal is { } r ? " refusal: " + r : string.Empty)}, node: {s?.Role} ready {s?.Ready} follow {s?.Follow} activity '{s?.Activity}' error '{s?.LastError}' failover '{s?.Failover}'");
    }));
}
