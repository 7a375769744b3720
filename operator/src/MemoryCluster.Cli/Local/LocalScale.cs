using System.Diagnostics;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;

namespace MemoryCluster.Cli.Local;

/// <summary>
/// <c>local scale</c>: changes the number of members of a running local cluster through the managers' membership
/// endpoints. Growing starts each new member's manager to join (it clones the primary with pg_basebackup, as every
/// replica does), adds it (a learner, promoted once its Raft log and PostgreSQL have caught up) and waits until it
/// votes and streams. Shrinking removes the highest ids first (after a switchover when the primary would go), stops
/// their managers and keeps their folders.
/// </summary>
internal sealed class LocalScale(LocalCluster cluster, TextWriter output)
{
    /// <summary>The members to remove to reach <paramref name="target"/>: the highest ids first.</summary>
    public static IReadOnlyList<Peer> Leaving(IReadOnlyList<Peer> members, int target) =>
        [.. members.OrderByDescending(m => m.Id).Take(Math.Max(0, members.Count - target))];

    public async Task<bool> GrowAsync(int target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var layout = cluster.Layout;
        var api = cluster.SigningApi();

        // Ids are never reused: the next after the highest the membership has ever held here (members and folders).
        var used = layout.Members.Select(m => m.Id).Concat(await RetiredOrPresentAsync(cancellationToken).ConfigureAwait(false));
        var grown = layout.Grow(target - layout.Members.Count, used.Max() + 1);
        var added = grown.Members.Skip(layout.Members.Count).ToList();
        var scaled = new LocalCluster(grown, output);
        scaled.StartManagers(joining: [.. added.Select(m => m.Id)]);
        output.WriteLine($"started {string.Join(", ", added.Select(m => m.Name))} to join; adding them one at a time");
        foreach (var member in added)
        {
            var request = new AddMemberRequest(member.Id, member.Name, member.Host, member.PgPort, member.RaftPort, member.HttpPort);
            var last = string.Empty;
            while (true)
            {
                if (watch.Elapsed > timeout)
                {
                    output.WriteLine($"{member.Name} did not become a voter within {timeout.TotalSeconds:0} s (last answer: {last})");
                    return false;
                }

                var answer = await AskAnyAsync(layout.Members, uri => api.AddMemberAsync(uri, request, cancellationToken)).ConfigureAwait(false);
                if (answer.Message != last)
                {
                    output.WriteLine($"  [{watch.Elapsed.TotalSeconds,5:0.0}s] {member.Name}: {answer.Message}");
                    last = answer.Message;
                }

                if (IsFinalRefusal(answer))
                {
                    return false;
                }

                if (answer.Done == true)
                {
                    break;
                }

                if (scaled.RunningPid(member) is null)
                {
                    output.WriteLine($"{member.Name}: its manager is not running; see {grown.LogFile(member)}");
                    return false;
                }

                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }
        }

        return await scaled.WaitHealthyAsync(timeout - watch.Elapsed, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> ShrinkAsync(int target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var layout = cluster.Layout;
        var api = cluster.SigningApi();
        var leaving = Leaving(layout.Members, target);
        var staying = layout.Members.Except(leaving).ToList();
        foreach (var member in leaving)
        {
            var last = string.Empty;
            while (true)
            {
                if (watch.Elapsed > timeout)
                {
                    output.WriteLine($"{member.Name} was not removed within {timeout.TotalSeconds:0} s (last answer: {last})");
                    return false;
                }

                var primary = (await cluster.StatusAsync(cancellationToken).ConfigureAwait(false))
                    .FirstOrDefault(s => s.Status is { Role: InstanceRole.Primary, Ready: true });
                if (primary.Member?.Id == member.Id)
                {
                    // IMPORTANT: the primary is never removed: it hands over to a member that stays first.
                    var to = (await cluster.StatusAsync(cancellationToken).ConfigureAwait(false))
                        .Where(s => staying.Contains(s.Member) && s.Status is { Role: InstanceRole.Replica, Ready: true, Streaming: true })
                        .OrderByDescending(s => s.Status!.FlushLsn?.Value ?? 0).Select(s => s.Member).FirstOrDefault();
                    if (to is null)
                    {
                        await Task.Delay(250, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    var switched = await AskAnyAsync(staying, uri => api.SwitchoverAsync(uri, to.Name, cancellationToken)).ConfigureAwait(false);
                    output.WriteLine($"  [{watch.Elapsed.TotalSeconds,5:0.0}s] {member.Name} is the primary: switchover to {to.Name}: {switched.Message}");
                    await WaitPrimaryAsync(to, timeout - watch.Elapsed, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var answer = await AskAnyAsync(staying, uri => api.RemoveMemberAsync(uri, member.Id, cancellationToken)).ConfigureAwait(false);
                if (answer.Message != last)
                {
                    output.WriteLine($"  [{watch.Elapsed.TotalSeconds,5:0.0}s] {member.Name}: {answer.Message}");
                    last = answer.Message;
                }

                if (answer.Done == true)
                {
                    break;
                }

                if (IsFinalRefusal(answer) && !answer.Message.Contains("primary", StringComparison.Ordinal))
                {
                    return false;
                }

                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }

            await cluster.StopManagersAsync(TimeSpan.FromSeconds(30), cancellationToken, [member]).ConfigureAwait(false);
            output.WriteLine($"{member.Name}: removed and stopped; its data is kept in {layout.InstanceDirectory(member)}");
        }

        var kept = new LocalCluster(layout.Keep(staying), output);
        return await kept.WaitHealthyAsync(timeout - watch.Elapsed, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A refusal that asking again will not change (as opposed to "no leader right now" or a forwarding failure).</summary>
    private static bool IsFinalRefusal(ManagerAnswer answer) =>
        !answer.Accepted && !answer.Message.Contains("ask again", StringComparison.Ordinal) && !answer.Message.Contains("forwarding", StringComparison.Ordinal) && !answer.Message.StartsWith("no manager", StringComparison.Ordinal);

    /// <summary>The ids the membership holds now (a member added by hand shows here) and those of earlier members' folders (mc-ID).</summary>
    private async Task<IEnumerable<ulong>> RetiredOrPresentAsync(CancellationToken cancellationToken)
    {
        var folders = Directory.EnumerateDirectories(cluster.Layout.Directory, "mc-*")
            .Select(d => ulong.TryParse(Path.GetFileName(d)[3..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : 0)
            .ToList();
        foreach (var member in cluster.Layout.Members)
        {
            try
            {
                return [.. folders, .. (await LocalCluster.Api.MembersAsync(member.HttpBase, cancellationToken).ConfigureAwait(false)).Members.Select(m => m.Id)];
            }
            catch (InstanceApiException)
            {
            }
        }

        return folders;
    }

    private static async Task<ManagerAnswer> AskAnyAsync(IEnumerable<Peer> members, Func<Uri, Task<ManagerAnswer>> ask)
    {
        foreach (var member in members)
        {
            try
            {
                return await ask(member.HttpBase).ConfigureAwait(false);
            }
            catch (InstanceApiException)
            {
            }
        }

        return new ManagerAnswer(false, "no manager answered; ask again");
    }

    private async Task WaitPrimaryAsync(Peer target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (await LocalCluster.StatusAsync(target, cancellationToken).ConfigureAwait(false) is { Role: InstanceRole.Primary, Ready: true })
            {
                return;
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }
}
