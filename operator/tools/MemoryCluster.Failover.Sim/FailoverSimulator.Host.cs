using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Raft;

namespace MemoryCluster.Failover.Sim;

/// <summary>The host glue: what the real manager's services do for the node, with simulated durations.</summary>
internal sealed partial class FailoverSimulator
{
    private void StartManager(SimMember m)
    {
        m.Incarnation++;
        m.QueryInFlight = false;
        m.ManagerUp = true;
        m.PausedUntil = 0;
        m.Action = null;
        m.ObserveScheduled = false;
        m.ProbeBusy = false;
        m.PendingReads.Clear();
        m.PendingProposals.Clear();
        m.LastRole = RaftRole.Unknown;
        m.LastTerm = Term.Zero;
        m.LastLeader = NodeId.None;
        m.LastState = null;
        m.PersistScheduled = false;
        TraceLine($"{m.Name}: manager starts (incarnation {m.Incarnation})");

        // Prepare: a PostgreSQL left running by an earlier life is killed; the deadline file starts disarmed.
        if (m.Pg.Running)
        {
            m.Pg.Kill();
        }

        m.WatchdogDeadline = null;
        if (!m.WatchdogUp && _options.Watchdog)
        {
            m.WatchdogUp = true;
            Schedule(_now + m.Micros(50), new Event(EventKind.Watchdog, m.Id));
        }

        var members = _members.Select(x => new Member(x.Id.ToNodeId(), x.Name, true)).ToList();
        var persisted = m.Storage.Load();
        m.Raft = new RawNode(
            new RaftOptions
            {
                Id = m.Id.ToNodeId(),
                ElectionTicks = 10,
                HeartbeatTicks = 2,
                ClockDriftBound = 1.1,
                InitialMembers = members,
                RandomSeed = unchecked((_options.Seed * 7919) + ((int)m.Id.Value * 104_729) + m.Incarnation),
            },
            persisted);
        m.StateMachine = new ControlStateMachine(members);
        if (persisted.Snapshot is not null)
        {
            m.StateMachine.Restore(persisted.Snapshot);
        }

        m.Node = new InstanceNode(_configs[(int)m.Id.Value - 1]);
        ObserveRaft(m, force: true);
        Step(m, now => new Started(now, m.Pg.Kind, m.FencedEpoch, m.FenceReason));
        var inc = m.Incarnation;
        Schedule(_now + m.Micros(NodeTickMs), new Event(EventKind.NodeTick, m.Id, inc));
        Schedule(_now + m.Micros(RaftTickMs), new Event(EventKind.RaftTick, m.Id, inc));
        ObserveLoop(m);
        foreach (var peer in _members.Where(p => p != m))
        {
            PollLoop(m, peer);
        }
    }

    /// <summary>The node's step, with this host's clock; its actions carried out in order.</summary>
    private IReadOnlyList<NodeAction> Step(SimMember m, Func<long, NodeInput> input)
    {
        var actions = m.Node!.Step(input(m.LocalMs(_now)));
        foreach (var action in actions)
        {
            Dispatch(m, action);
        }

        return actions;
    }

    private void Dispatch(SimMember m, NodeAction action)
    {
        switch (action)
        {
            case Note note:
                TraceLine($"{m.Name}: {note.Message}");
                break;
            case ArmWatchdog arm:
                m.WatchdogDeadline = arm.Deadline;
                break;
            case DisarmWatchdog:
                m.WatchdogDeadline = null;
                break;
            case PostgresAction pa:
                BeginAction(m, pa);
                break;
            case Fence fence:
                OnManager(m, _now + 200, () => DoFence(m, fence));
                break;
            case AbandonAction abandon:
                // As the supervisor: the action's wait ends at once, and it reports itself failed.
                OnManager(m, _now + m.Micros(1 + _random.Next(5)), () =>
                {
                    if (m.Action is { } running && running.Id == abandon.ActionId)
                    {
                        Complete(m, running, $"abandoned: {abandon.Why}");
                    }
                });
                break;
            case Probe:
                DoProbe(m);
                break;
            case RequestRenewal renew:
                DoRenew(m, renew);
                break;
            case Propose propose:
                DoPropose(m, propose);
                break;
            case TransferLeadership transfer:
                TraceLine($"{m.Name}: {transfer.Why}");
                m.Raft!.TransferLeadership(transfer.Target.ToNodeId());
                AfterRaft(m);
                break;
            case CampaignFirst campaign:
                m.Raft!.SetCampaignsFirst(campaign.First);
                break;
            case AnswerRenewal:
                break;
            case AnnounceFenced:
            case AnnounceDetach:
                // As PeerRpc: a signed notice to every other member, which then reads every report at once.
                foreach (var peer in _members.Where(p => p != m))
                {
                    Http(m, peer, () => peer.ManagerUp && peer.Node is not null, _ =>
                    {
                        foreach (var other in _members.Where(o => o != peer))
                        {
                            PollOnce(peer, other);
                        }
                    });
                }

                break;
            default:
                throw new InvalidOperationException($"the simulated host has no executor for {action.GetType().Name}");
        }
    }

    // ---------------------------------------------------------------- Raft

    private void AfterRaft(SimMember m)
    {
        if (m.Raft!.HasReady && !m.PersistScheduled)
        {
            m.PersistScheduled = true;
            Schedule(_now + 100 + _random.Next(1_500), new Event(EventKind.Persist, m.Id, m.Incarnation));
        }
    }

    private void ProcessReady(SimMember m)
    {
        var raft = m.Raft!;
        ReadyProcessor.Drain(raft, m.Storage, m.StateMachine!, msg => SendRaft(m, msg), (entry, result) => OnApplied(m, entry, result), rs => OnReadState(m, rs));
        foreach (var (context, pending) in m.PendingReads.Where(p => p.Value.Epoch.Value == ulong.MaxValue).ToList())
        {
            m.PendingReads.Remove(context);
        }

        ObserveRaft(m, force: false);
    }

    private void SendRaft(SimMember from, Message message)
    {
        var to = M(MemberId.FromNodeId(message.To));
        Send(from.Id, to.Id, Channel.Raft, () =>
        {
            if (!to.ManagerUp || to.Raft is null)
            {
                return;
            }

            // A paused manager reads its socket when it resumes.
            OnManager(to, _now, () =>
            {
                to.Raft!.Step(message);
                AfterRaft(to);
            });
        });
    }

    private void OnApplied(SimMember m, Entry entry, ApplyResult<ControlState> result)
    {
        if (m.PendingProposals.Remove(entry.Index, out var pending))
        {
            pending.Done(pending.Term == entry.Term && result.Outcome == ApplyOutcome.Applied,
                pending.Term != entry.Term ? "lost: replaced by another leader's entry" : result.Outcome == ApplyOutcome.Applied ? "applied" : $"refused: {result.Outcome} {result.Reason}");
        }

        var state = result.State;
        if (state.Epoch > _lastEpochSeen)
        {
            _lastEpochSeen = state.Epoch;
        }
    }

    private void OnReadState(SimMember m, ReadState read)
    {
        if (!m.PendingReads.Remove(read.RequestContext, out var pending))
        {
            return;
        }

        // The host answers once it has applied the read index (ReadyProcessor applies before it hands reads out).
        var state = m.StateMachine!.Current;
        var actions = Step(m, now => new RenewalRequested(now, pending.RequestId, pending.From, pending.Epoch, state, m.Raft!.HoldsLease, null));
        var answer = actions.OfType<AnswerRenewal>().FirstOrDefault(a => a.RequestId == pending.RequestId);
        TraceLine($"{m.Name}: renewal for {M(pending.From).Name} at epoch {pending.Epoch}: {(answer?.Granted == true ? "granted" : "refused: " + answer?.Why)} (term {m.Raft!.Term}, lease {m.Raft.HoldsLease})");
        pending.Reply(answer?.Granted ?? false, answer?.Why ?? "no answer", answer?.Epoch ?? pending.Epoch);
    }

    private void ObserveRaft(SimMember m, bool force)
    {
        var raft = m.Raft!;
        var state = m.StateMachine!.Current;
        if (!force && raft.Role == m.LastRole && raft.Term == m.LastTerm && raft.Leader == m.LastLeader && ReferenceEquals(state, m.LastState))
        {
            return;
        }

        if (raft.Term != m.LastTerm)
        {
            // Reads of an earlier term will not be answered: refuse them (the real host fails them the same way).
            foreach (var (context, pending) in m.PendingReads.ToList())
            {
                m.PendingReads.Remove(context);
                var actions = Step(m, now => new RenewalRequested(now, pending.RequestId, pending.From, pending.Epoch, null, raft.HoldsLease, "the term changed during the read"));
                var answer = actions.OfType<AnswerRenewal>().FirstOrDefault(a => a.RequestId == pending.RequestId);
                pending.Reply(false, answer?.Why ?? "term changed", pending.Epoch);
            }
        }

        m.LastRole = raft.Role;
        m.LastTerm = raft.Term;
        m.LastLeader = raft.Leader;
        m.LastState = state;
        // The host's figure: the core's tick count turned into this member's milliseconds (its Raft ticks are RaftTickMs apart on its clock).
        var priorLeasesEndedMs = raft.Role == RaftRole.Leader ? (long)(raft.Options.PriorLeasesEndedTicksBefore(raft.ElectionQuietTicks) * RaftTickMs) : 0;
        Step(m, now => new RaftObserved(now, m.View(raft.HoldsLease, priorLeasesEndedMs), state));
    }

    // ---------------------------------------------------------------- PostgreSQL actions

    private int NewOrigin() => ++_origins;

    private void BeginAction(SimMember m, PostgresAction action)
    {
        m.Action = action;
        var fences = m.Fences;
        switch (action)
        {
            case PostgresAction.InitDb:
                Later(m, action, 900, () =>
                {
                    m.Pg.InitDb(NewOrigin());
                    m.DataIncarnation++;
                    return null;
                });
                break;
            case PostgresAction.CloneFrom clone:
                Later(m, action, 300 + _random.Next(1200), () => CloneFrom(m, clone.From, moveAside: false));
                break;
            case PostgresAction.Reclone reclone:
                Later(m, action, 300 + _random.Next(1200), () => CloneFrom(m, reclone.From, moveAside: true));
                break;
            case PostgresAction.Rewind rewind:
                Later(m, action, 500 + _random.Next(2500), () =>
                {
                    var source = M(rewind.From);
                    if (!source.Pg.Answers(_now) || !PgReachable(m.Id, rewind.From))
                    {
                        return $"pg_rewind: could not connect to {source.Name}";
                    }

                    m.Pg.RewindFrom(source.Pg);
                    m.Pg.Upstream = rewind.From;
                    m.DataIncarnation++;
                    return null;
                });
                break;
            case PostgresAction.StartPrimary start:
                StartPostgres(m, action, standby: false, MemberId.None, start.NotAfter, fences);
                break;
            case PostgresAction.StartStandby start:
                StartPostgres(m, action, standby: true, start.Upstream, null, fences);
                break;
            case PostgresAction.Promote promote:
                if (_onPromoteBegin is { } hook && hook(m))
                {
                    _onPromoteBegin = null;
                }

                Promote(m, promote, fences);
                break;
            case PostgresAction.Stop stop:
                Later(m, action, 80 + _random.Next(120), () =>
                {
                    if (!m.Pg.Running)
                    {
                        return null;
                    }

                    // A fast shutdown ships every WAL record, the shutdown checkpoint's too, to the connected standbys
                    // before the postmaster exits; pg_controldata then shows where that checkpoint record starts.
                    var final = new Lsn((ulong)m.Pg.Flushed);
                    var connected = _members.Where(s => s != m && s.Pg.Upstream == m.Id && s.Pg.Streaming && PgReachable(s.Id, m.Id)).ToList();
                    PgExit(m, m.Pg.StopCleanly, expected: true);
                    foreach (var standby in connected)
                    {
                        standby.Pg.StreamFrom(m.Pg);
                    }

                    _stopFinal = stop.ForSwitchover ? final : null;
                    return null;
                });
                break;
            case PostgresAction.Repoint repoint:
                Later(m, action, 100 + _random.Next(150), () =>
                {
                    if (!m.Pg.Answers(_now))
                    {
                        return "reload: postgres does not answer";
                    }

                    m.Pg.Upstream = repoint.Upstream;
                    m.Pg.Streaming = false;
                    return null;
                });
                break;
            case PostgresAction.EnsureSlots when m.Pg.InRecovery:
                // A replica keeps slots for a promotion: made and advanced on a running standby.
                Later(m, action, 5 + _random.Next(20), () => m.Pg.Running && !m.Pg.Frozen ? null : "postgres is not running");
                break;
            case PostgresAction.EnsureSlots or PostgresAction.EnsurePrimaryObjects:
                var ms = action is PostgresAction.EnsureSlots ? 5 + _random.Next(20) : 20 + _random.Next(40);
                Later(m, action, ms, () => m.Pg.Writable(_now) ? null : "postgres does not accept writes");
                break;
            default:
                throw new InvalidOperationException($"no simulated executor for {action.GetType().Name}");
        }
    }

    private Lsn? _stopFinal;

    /// <summary>Runs <paramref name="work"/> after <paramref name="ms"/> of this host's time, then reports the action done (or failed with what it returned).</summary>
    private void Later(SimMember m, PostgresAction action, long ms, Func<string?> work) =>
        OnManager(m, _now + m.Micros(ms), () =>
        {
            if (m.Action?.Id != action.Id)
            {
                return;
            }

            _stopFinal = null;
            var error = work();
            Complete(m, action, error, _stopFinal);
        });

    private void Complete(SimMember m, PostgresAction action, string? error, Lsn? finalLsn = null)
    {
        if (m.Action?.Id != action.Id)
        {
            return;
        }

        m.Action = null;
        Step(m, now => new ActionDone(now, action.Id, error is null ? Outcome.Done : Outcome.Failed, error, m.Pg.Kind, finalLsn));
        KickObserve(m);
    }

    private string? CloneFrom(SimMember m, MemberId from, bool moveAside)
    {
        var source = M(from);
        if (!source.Pg.Answers(_now) || !PgReachable(m.Id, from))
        {
            return $"pg_basebackup: could not connect to {source.Name}";
        }

        if (moveAside)
        {
            m.Pg.MoveAside();
        }

        m.Pg.CloneFrom(source.Pg);
        m.Pg.Upstream = from;
        m.DataIncarnation++;
        return null;
    }

    /// <summary>
    /// As the real supervisor: some preparation, then (under the fence's gate) the check that no fence came and the
    /// lease covers this instant, then the start; a pause can land between the check and the start.
    /// </summary>
    private void StartPostgres(SimMember m, PostgresAction action, bool standby, MemberId upstream, long? notAfter, long fences)
    {
        OnManager(m, _now + m.Micros(5 + _random.Next(20)), () =>
        {
            if (m.Action?.Id != action.Id)
            {
                return;
            }

            if (Refused(m, notAfter, fences) is { } refusal)
            {
                Complete(m, action, refusal);
                return;
            }

            OnManager(m, _now + 100 + _random.Next(2_000), () =>
            {
                if (m.Action?.Id != action.Id)
                {
                    return;
                }

                if (m.Pg.Running)
                {
                    Complete(m, action, "postgres is already running");
                    return;
                }

                m.Pg.Upstream = standby ? upstream : MemberId.None;
                m.Pg.SyncRequired = _options.Mode == ReplicationMode.Quorum ? _options.Members / 2 : 0;
                m.PgLife++;
                m.Pg.Start(_now, m.Micros(100 + _random.Next(300)), standby, _random);
                TraceLine($"{m.Name}: postgres starts as {(standby ? "standby of " + (upstream.IsNone ? "no one" : M(upstream).Name) : "primary")}");
                WaitReady(m, action, m.PgLife, _now + m.Micros(60_000));
            });
        });
    }

    /// <summary>As the real host: polls until PostgreSQL answers a query, for a minute at most.</summary>
    private void WaitReady(SimMember m, PostgresAction action, int life, long giveUpAt) =>
        OnManager(m, Math.Max(_now + m.Micros(25), m.Pg.ReadyAt + 1), () =>
        {
            if (m.Action?.Id != action.Id)
            {
                return;
            }

            if (!m.Pg.Running || m.PgLife != life)
            {
                Complete(m, action, "postgres exited while starting");
            }
            else if (m.Pg.Answers(_now))
            {
                Complete(m, action, null);
            }
            else if (_now > giveUpAt)
            {
                Complete(m, action, "postgres did not accept connections within 60 s");
            }
            else
            {
                WaitReady(m, action, life, giveUpAt);
            }
        });

    private void Promote(SimMember m, PostgresAction.Promote action, long fences)
    {
        OnManager(m, _now + m.Micros(2 + _random.Next(8)), () =>
        {
            if (m.Action?.Id != action.Id)
            {
                return;
            }

            if (Refused(m, action.NotAfter, fences) is { } refusal)
            {
                Complete(m, action, refusal);
                return;
            }

            if (!m.Pg.Answers(_now) || !m.Pg.InRecovery)
            {
                Complete(m, action, "pg_promote: postgres does not answer or is not in recovery");
                return;
            }

            m.Pg.WriteTimelinePlaceholders(action.Epoch);
            m.Pg.SignalPromote(_now + m.Micros(100 + _random.Next(150)));
            WaitPromoted(m, action, m.PgLife, _now + m.Micros(60_000));
        });
    }

    private void WaitPromoted(SimMember m, PostgresAction action, int life, long giveUpAt) =>
        OnManager(m, _now + m.Micros(10), () =>
        {
            if (m.Action?.Id != action.Id)
            {
                return;
            }

            if (!m.Pg.Running || m.PgLife != life)
            {
                Complete(m, action, "postgres exited during the promotion");
            }
            else if (!m.Pg.InRecovery)
            {
                // The checkpoint after the promotion.
                OnManager(m, _now + m.Micros(20 + _random.Next(280)), () => Complete(m, action, m.Pg.Running ? null : "postgres exited during the checkpoint"));
            }
            else if (_now > giveUpAt)
            {
                Complete(m, action, "still in recovery 60 s after the promotion was signalled");
            }
            else
            {
                WaitPromoted(m, action, life, giveUpAt);
            }
        });

    private string? Refused(SimMember m, long? notAfter, long fences)
    {
        if (m.Fences != fences)
        {
            return "a fence came after the node asked for this; not starting";
        }

        return notAfter is { } limit && m.LocalMs(_now) >= limit ? "the primary lease ran out before this could begin" : null;
    }

    /// <summary>SIGKILL to everything in the data directory, the fence record written, then reported; the action in flight fails.</summary>
    private void DoFence(SimMember m, Fence fence)
    {
        m.Fences++;
        if (m.Pg.Running)
        {
            PgExit(m, m.Pg.Kill, expected: false);
        }

        if (fence.Record != Epoch.Zero)
        {
            m.FencedEpoch = fence.Record;
            m.FenceReason = fence.Why;
        }

        Step(m, now => new FenceDone(now, fence.Id, Outcome.Done, null, m.Pg.Kind));
        if (m.Action is { } action)
        {
            Complete(m, action, "cancelled by a fence");
        }
    }

    /// <summary>PostgreSQL stops (by <paramref name="stop"/>); the manager learns of the exit at once (it is its child).</summary>
    private void PgExit(SimMember m, Action stop, bool expected)
    {
        var life = m.PgLife;
        stop();
        TraceLine($"{m.Name}: postgres stops{(expected ? " cleanly" : " (killed)")}");
        if (m.ManagerUp)
        {
            var inc = m.Incarnation;
            OnManager(m, _now + 100, () =>
            {
                if (m.Incarnation == inc && m.ExitReported != life)
                {
                    m.ExitReported = life;
                    Step(m, now => new PostgresExited(now, expected ? 0 : -9));
                }
            });
        }
    }

    private void DoProbe(SimMember m)
    {
        if (m.ProbeBusy)
        {
            return;
        }

        m.ProbeBusy = true;
        var answers = m.Pg.Answers(_now) && !m.Pg.Frozen;
        var starting = m.Pg.Running && !m.Pg.Frozen && _now < m.Pg.ReadyAt;
        OnManager(m, _now + (answers || starting ? 500 + _random.Next(3_000) : m.Micros(1_000)), () =>
        {
            m.ProbeBusy = false;
            var healthy = m.Pg.Answers(_now) || (m.Pg.Running && !m.Pg.Frozen && _now < m.Pg.ReadyAt);
            Step(m, now => new ProbeDone(now, healthy, healthy && m.Pg.Answers(_now) ? m.Pg.InRecovery : null, healthy ? null : m.Pg.Running ? "query: timeout" : "postgres is not running"));
        });
    }

    // ---------------------------------------------------------------- between managers: reports, renewals, proposals

    private void PollLoop(SimMember m, SimMember peer) =>
        OnManager(m, _now + m.Micros(m.Node!.PeerPollIntervalMs), () =>
        {
            PollOnce(m, peer);
            PollLoop(m, peer);
        });

    /// <summary>One read of <paramref name="peer"/>'s report by <paramref name="m"/> (on m's manager).</summary>
    private void PollOnce(SimMember m, SimMember peer)
    {
        var askedAt = m.LocalMs(_now);
        var inc = m.Incarnation;
        var answered = false;
        var fresh = m.Node!.WantsFreshReports;
        Http(m, peer, () => peer.ManagerUp && peer.Node is not null, reply =>
        {
            if (fresh)
            {
                // As the real host: the peer queries its PostgreSQL before it answers.
                Observe(peer);
            }

            var view = peer.Node!.SelfView();
            // As the real host: the age at the time of the answer, on the peer's clock.
            var age = peer.Node.Status().StateAt is { } stateAt ? Math.Max(0, peer.LocalMs(_now) - stateAt) : 0;
            CheckReported(peer, view);
            reply(() =>
            {
                if (answered || m.Incarnation != inc)
                {
                    return;
                }

                answered = true;
                Step(m, now => new PeerObserved(now, view with { StateAt = askedAt - age }));
            });
        });
        OnManager(m, _now + m.Micros(HttpTimeoutMs), () =>
        {
            if (!answered && m.Incarnation == inc)
            {
                answered = true;
                Step(m, now => new PeerObserved(now, PeerView.Unreachable(peer.Id)));
            }
        });
    }

    private void DoRenew(SimMember m, RequestRenewal request)
    {
        var sentAt = m.LocalMs(_now);
        var leader = MemberId.FromNodeId(m.Raft!.Leader);
        var done = false;
        void Answer(bool granted, string why)
        {
            if (done)
            {
                return;
            }

            done = true;
            Step(m, now => new LeaseAnswered(now, request.Id, request.Epoch, sentAt, granted, why));
        }

        OnManager(m, _now + m.Micros((long)LeaseTimings.Default.RenewalTimeout.TotalMilliseconds), () => Answer(false, "asking the Raft leader: timed out"));
        if (leader.IsNone)
        {
            OnManager(m, _now + 100, () => Answer(false, "no Raft leader known"));
            return;
        }

        if (leader == m.Id)
        {
            Grant(m, m.Id, request.Epoch, (granted, why, _) => OnManager(m, _now + 50, () => Answer(granted, why)));
            return;
        }

        var target = M(leader);
        Http(m, target, () => target.ManagerUp, reply => Grant(target, m.Id, request.Epoch, (granted, why, _) => reply(() => Answer(granted, why))));
    }

    /// <summary>The leader's side: a ReadIndex (lease-based), then the node decides with the Raft lease sampled in the same step.</summary>
    private void Grant(SimMember leader, MemberId from, Epoch epoch, Action<bool, string, Epoch> reply)
    {
        var requestId = ++leader.NextRequest;
        var context = ++leader.NextReadContext;
        // Lease-based, as the manager reads (RaftHostOptions.LeaseReads): a leader holding its Raft lease answers at once.
        var refusal = leader.Raft!.ReadIndex(context, leaseConfirmed: true);
        if (refusal != RaftRefusal.None)
        {
            var actions = Step(leader, now => new RenewalRequested(now, requestId, from, epoch, null, leader.Raft.HoldsLease, $"read refused: {refusal}"));
            var answer = actions.OfType<AnswerRenewal>().FirstOrDefault(a => a.RequestId == requestId);
            reply(false, answer?.Why ?? refusal.ToString(), epoch);
            return;
        }

        leader.PendingReads[context] = (requestId, from, epoch, reply);
        AfterRaft(leader);
    }

    private void DoPropose(SimMember m, Propose propose)
    {
        var done = false;
        void Answer(bool applied, string why)
        {
            if (done)
            {
                return;
            }

            done = true;
            Step(m, now => new ProposalDone(now, propose.Id, applied, why));
        }

        if (propose.Command.Type == ControlCommandType.SetPrimary)
        {
            TraceLine($"{m.Name}: proposes {propose.Command.Type} {M(propose.Command.Node).Name} at epoch {propose.Command.ExpectedEpoch}: {propose.Why}");
        }

        OnManager(m, _now + m.Micros(ProposeTimeoutMs), () => Answer(false, "timed out"));
        var leader = MemberId.FromNodeId(m.Raft!.Leader);
        if (propose.OnlyAsLeaderInTerm is { } term)
        {
            // A failover this node decided as leader: proposed here, in that term, or not at all.
            if (m.Raft.Role == RaftRole.Leader && m.Raft.Term == term)
            {
                ProposeLocal(m, propose.Command, (applied, why) => OnManager(m, _now + 50, () => Answer(applied, why)));
            }
            else
            {
                OnManager(m, _now + 50, () => Answer(false, $"not the leader in term {term} any more"));
            }
        }
        else if (leader.IsNone)
        {
            OnManager(m, _now + 100, () => Answer(false, "no Raft leader right now"));
        }
        else if (leader == m.Id)
        {
            ProposeLocal(m, propose.Command, (applied, why) => OnManager(m, _now + 50, () => Answer(applied, why)));
        }
        else
        {
            var target = M(leader);
            Http(m, target, () => target.ManagerUp, reply => ProposeLocal(target, propose.Command, (applied, why) => reply(() => Answer(applied, why))));
        }
    }

    private void ProposeLocal(SimMember leader, ControlCommand command, Action<bool, string> done)
    {
        var (index, refusal) = leader.Raft!.Propose(command.Encode());
        if (refusal != RaftRefusal.None)
        {
            done(false, refusal.ToString());
            return;
        }

        leader.PendingProposals[index] = (leader.Raft.Term, done);
        AfterRaft(leader);
    }

    /// <summary>
    /// An HTTP request from <paramref name="client"/> to <paramref name="server"/>'s manager: delivered over the network
    /// (not at all across a partition), handled when the server's manager runs (later when it is paused), answered over
    /// the network. <paramref name="handle"/> gets a function to send the answer back with.
    /// </summary>
    private void Http(SimMember client, SimMember server, Func<bool> up, Action<Action<Action>> handle)
    {
        var clientIncarnation = client.Incarnation;
        Send(client.Id, server.Id, Channel.Http, () =>
        {
            if (!up())
            {
                return;
            }

            var serverIncarnation = server.Incarnation;
            OnManager(server, _now, () =>
            {
                if (server.Incarnation != serverIncarnation)
                {
                    return;
                }

                handle(answer => Send(server.Id, client.Id, Channel.Http, () =>
                {
                    if (client.ManagerUp && client.Incarnation == clientIncarnation)
                    {
                        OnManager(client, _now, answer);
                    }
                }));
            });
        });
    }
}
