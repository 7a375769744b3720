using System.Globalization;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// The instance's files: the data root and what the manager keeps there (the passfile, the fence record), the data
/// directory's configuration (the manager owns postgresql.conf and rewrites it for every role), and the objects a
/// new primary creates. Only I/O; every decision about when to use it is the node's.
/// </summary>
internal sealed class PostgresFiles(InstanceOptions options, PgBinaries binaries, MemberDirectory directory)
{
    public const string ReplicationUser = "replicator";
    public const string AppUser = "app";
    public const string SuperUser = "postgres";

    private readonly TlsFiles? _tls = TlsFiles.For(options, binaries);

    public PgBinaries Binaries => binaries;

    public string FenceFile => Path.Combine(options.DataRoot, "fenced-epoch");

    /// <summary>What <paramref name="directory"/> holds.</summary>
    public static DataKind DataKindOf(string directory) =>
        !File.Exists(Path.Combine(directory, "PG_VERSION")) ? DataKind.Missing
        : File.Exists(Path.Combine(directory, "standby.signal")) ? DataKind.Standby
        : DataKind.Primary;

    /// <summary>
    /// Prepares the data root at start: folders, the replication passfile, and no PostgreSQL left running by an
    /// earlier life of this manager (killed with SIGKILL): such a process is not supervised, so it is stopped first.
    /// </summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        CheckReachableByPostgres();
        Directory.CreateDirectory(options.DataRoot);
        Directory.CreateDirectory(options.SocketDirectory);
        Directory.CreateDirectory(options.RaftDirectory);
        var password = File.ReadAllText(options.ReplicationPasswordFile).Trim();
        File.WriteAllText(options.PassFile, $"*:*:*:{ReplicationUser}:{password.Replace(@"\", @"\\", StringComparison.Ordinal).Replace(":", @"\:", StringComparison.Ordinal)}\n");
        File.SetUnixFileMode(options.PassFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        binaries.GiveToPostgres(options.SocketDirectory);
        binaries.GiveFileToPostgres(options.PassFile);

        // With TLS configured PostgreSQL never starts without it: unreadable TLS files stop the manager here.
        _tls?.Sync();
        EnsureDataDirectory();
        if (ProcessFence.ProcessesIn(options.DataDirectory).Count > 0
            && !await ProcessFence.KillAllAsync(options.DataDirectory, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"processes from an earlier PostgreSQL still run in {options.DataDirectory} after SIGKILL; refusing to start");
        }

        // The data root must be enterable by the postgres user, who owns only what is inside it.
        File.SetUnixFileMode(options.DataRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
    }

    /// <summary>The fence record: the epoch at which this member last fenced itself as primary, and why; (zero, null) when none.</summary>
    public (Epoch Epoch, string? Reason) ReadFence()
    {
        if (!File.Exists(FenceFile))
        {
            return (Epoch.Zero, null);
        }

        var lines = File.ReadAllLines(FenceFile);
        if (lines.Length > 0 && ulong.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var epoch))
        {
            return (new Epoch(epoch), lines.Length > 1 ? lines[1] : "recorded before a restart");
        }

        throw new InvalidDataException($"{FenceFile}: expected the fenced epoch on its first line; delete the file only if this instance's PostgreSQL is known to be stopped");
    }

    /// <summary>Writes the fence record, replacing the file whole (a reader never sees half of it).</summary>
    public void RecordFence(Epoch epoch, string reason)
    {
        var temp = FenceFile + ".new";
        File.WriteAllText(temp, string.Create(CultureInfo.InvariantCulture, $"{epoch.Value}\n{reason.ReplaceLineEndings(" ")}\n"));
        File.Move(temp, FenceFile, overwrite: true);
    }

    /// <summary>
    /// PostgreSQL runs as another user when the manager is root; every folder above the data root must let that user
    /// in, or initdb fails with a message that does not say why. Refuse at start, naming the folder.
    /// </summary>
    private void CheckReachableByPostgres()
    {
        if (binaries.RunAs is null)
        {
            return;
        }

        for (var dir = new DirectoryInfo(options.DataRoot).Parent; dir is not null; dir = dir.Parent)
        {
            var mode = File.GetUnixFileMode(dir.FullName);
            if (!mode.HasFlag(UnixFileMode.OtherExecute))
            {
                throw new InvalidOperationException(
                    $"data-dir: PostgreSQL runs as '{binaries.RunAs}', which cannot enter {dir.FullName} (mode {Convert.ToString((int)mode, 8)}); allow it (chmod o+x {dir.FullName}) or choose a data-dir below a folder it can enter");
            }
        }
    }

    /// <summary>The data directory exists, belongs to the user PostgreSQL runs as and is private to it.</summary>
    public void EnsureDataDirectory()
    {
        Directory.CreateDirectory(options.DataDirectory);
        File.SetUnixFileMode(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        binaries.GiveFileToPostgres(options.DataDirectory);
    }

    /// <summary>An empty data directory, for a clone.</summary>
    public void EmptyDataDirectory()
    {
        if (Directory.Exists(options.DataDirectory))
        {
            Directory.Delete(options.DataDirectory, recursive: true);
        }

        EnsureDataDirectory();
    }

    /// <summary>Moves the data directory aside to a new <c>pgdata.diverged.N</c> (never one that exists: diverged data may hold writes no one else has).</summary>
    public string MoveAside(string kind = "diverged")
    {
        for (var n = 1; ; n++)
        {
            var aside = string.Create(CultureInfo.InvariantCulture, $"{options.DataDirectory}.{kind}.{n}");
            if (!Directory.Exists(aside) && !File.Exists(aside))
            {
                Directory.Move(options.DataDirectory, aside);
                return aside;
            }
        }
    }

    /// <summary>Writes postgresql.conf for the role (empties postgresql.auto.conf, writes pg_hba.conf and, for a standby, standby.signal).</summary>
    /// <param name="upstream">Whom a standby streams from (none: no one yet).</param>
    /// <param name="standby">A standby (standby.signal present) rather than a primary.</param>
    public void WriteConfig(MemberId upstream, bool standby)
    {
        // Quorum mode: every other member (learners too) may acknowledge; k counts the voters.
        var others = directory.Others.Select(p => p.Name).ToList();
        var voters = directory.Members.Count(p => directory.IsVoter(p.Id));
        var settings = new PostgresSettings(
            options.Self.PgPort,
            options.ListenAddress?.ToString() ?? options.Self.Host,
            options.SocketDirectory,
            options.Name,
            standby && !upstream.IsNone ? SourceFor(upstream) : null,

            // Written on standbys too (where it does nothing): a standby that is promoted requires synchronous
            // standbys from its very first commit, not from the reload after promotion.
            PostgresConfigFiles.SynchronousStandbyNames(options.Quorum, others, voters),
            options.ParametersFile is null ? null : options.ParametersInForce,
            _tls?.Copies);
        var data = options.DataDirectory;
        Write(Path.Combine(data, "postgresql.conf"), PostgresConfigFiles.PostgresqlConf(settings));
        Write(Path.Combine(data, "postgresql.auto.conf"), "# Not used: the instance manager owns postgresql.conf.\n");
        Write(Path.Combine(data, "pg_hba.conf"), PostgresConfigFiles.PgHbaConf(ReplicationUser, tls: _tls is not null));
        var signal = Path.Combine(data, "standby.signal");
        if (standby)
        {
            Write(signal, string.Empty);
        }
        else
        {
            File.Delete(signal);
        }
    }

    private void Write(string path, string text)
    {
        File.WriteAllText(path, text);
        binaries.GiveFileToPostgres(path);
    }

    /// <summary>Where this member streams from when it follows <paramref name="id"/>.</summary>
    public ReplicationSource SourceFor(MemberId id)
    {
        var peer = directory.Find(id.Value) ?? throw new InvalidOperationException($"member {id} is not in the membership");
        // With TLS, replication, pg_basebackup and pg_rewind verify the upstream's certificate and name (verify-full).
        return new ReplicationSource(peer.Host, peer.PgPort, ReplicationUser, options.PassFile, options.Name, SlotName(options.Name), _tls?.Copies.CaFile);
    }

    public static string SlotName(string instance) => instance.Replace('-', '_');

    /// <summary>
    /// On a new primary, first: a slot for every other member (the replicas repoint at it once its report shows them),
    /// none for a removed one. On a replica that follows the primary, the same slots kept for its promotion, advanced
    /// to its replay position.
    /// </summary>
    public async Task EnsureSlotsAsync(PgClient client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        await client.EnsureSlotsAsync(directory.Others.Select(p => SlotName(p.Name)).ToList(), dropOthers: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>On a new primary, once its slots exist: the roles, the rewind grants, the app database.</summary>
    public async Task EnsurePrimaryObjectsAsync(PgClient client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var password = File.ReadAllText(options.ReplicationPasswordFile).Trim();
        await client.EnsureRoleAsync(ReplicationUser, password, replication: true, cancellationToken).ConfigureAwait(false);
        if (options.SuperuserPasswordFile is { } superuserFile)
        {
            // The role exists since initdb; only its password (a SCRAM verifier, never the password itself) is set.
            await client.EnsureRoleAsync(SuperUser, File.ReadAllText(superuserFile).Trim(), replication: false, cancellationToken).ConfigureAwait(false);
        }

        await client.GrantRewindAsync(ReplicationUser, cancellationToken).ConfigureAwait(false);
        if (options.AppPasswordFile is { } appFile)
        {
            await client.EnsureRoleAsync(AppUser, File.ReadAllText(appFile).Trim(), replication: false, cancellationToken).ConfigureAwait(false);
            await client.EnsureDatabaseAsync(AppUser, AppUser, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The timelines pg_wal holds: the newest of which it has a WAL segment (the timeline its WAL reached), and every
    /// history file, parsed (cached by name and size: a history file never changes once written).
    /// </summary>
    public (TimelineId DataTimeline, IReadOnlyDictionary<TimelineId, WalLine> Histories) ReadTimelines()
    {
        var wal = Path.Combine(options.DataDirectory, "pg_wal");
        uint newest = 0;
        var histories = new Dictionary<TimelineId, WalLine>();
        foreach (var path in Directory.EnumerateFiles(wal))
        {
            var name = Path.GetFileName(path.AsSpan());
            if (name.Length == 24 && uint.TryParse(name[..8], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var segmentTimeline) && IsHex(name))
            {
                newest = Math.Max(newest, segmentTimeline);
            }
            else if (name.Length == 16 && name.EndsWith(".history", StringComparison.Ordinal) && uint.TryParse(name[..8], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var historyTimeline))
            {
                var timeline = new TimelineId(historyTimeline);
                histories[timeline] = History(path, timeline);
            }
        }

        return (new TimelineId(Math.Max(1, newest)), histories);
    }

    /// <summary>
    /// Before a promotion at <paramref name="epoch"/>: placeholder history files for every timeline id between the
    /// data's timeline and the epoch that pg_wal lacks, so that PostgreSQL, which takes the first id after the history
    /// files it finds, gives the new timeline the epoch's id. A placeholder names no parent, so PostgreSQL never
    /// switches to it (<see cref="TimelinePlaceholders"/>).
    /// </summary>
    public void WriteTimelinePlaceholders(Epoch epoch)
    {
        var (timeline, histories) = ReadTimelines();
        foreach (var id in TimelinePlaceholders.ToWrite(timeline, epoch, histories.Keys))
        {
            Write(Path.Combine(options.DataDirectory, "pg_wal", id.HistoryFileName), TimelinePlaceholders.Content);
        }
    }

    /// <summary>
    /// Before PostgreSQL starts as a standby: removes its replication slots. Slots belong to a primary (each makes it
    /// keep WAL for one member); a former primary restarted as a standby after a switchover, or rewound after a
    /// failover (pg_rewind leaves pg_replslot as it was), kept its own, inactive at a fixed position, and they held
    /// every WAL segment it received since in pg_wal, without end (seen: 721 MB from the switchover on, where the
    /// other standby kept 609 MB, all of it recycled). No standby here serves a cascade; once it follows the primary,
    /// a replica makes the slots the members will need should it be promoted, and keeps them advanced
    /// (<see cref="EnsureSlotsAsync"/>).
    /// </summary>
    public void RemoveReplicationSlots()
    {
        var slots = Path.Combine(options.DataDirectory, "pg_replslot");
        if (!Directory.Exists(slots))
        {
            return;
        }

        foreach (var slot in Directory.EnumerateDirectories(slots))
        {
            Directory.Delete(slot, recursive: true);
        }
    }

    /// <summary>Before PostgreSQL starts: removes the placeholders a promotion that never came left above the data's timeline (<see cref="TimelinePlaceholders.Stale"/>).</summary>
    public void RemoveStaleTimelinePlaceholders()
    {
        var wal = Path.Combine(options.DataDirectory, "pg_wal");
        if (!Directory.Exists(wal))
        {
            return;
        }

        var (timeline, histories) = ReadTimelines();
        var kinds = histories.Keys.ToDictionary(id => id, id => TimelinePlaceholders.IsPlaceholder(File.ReadAllText(Path.Combine(wal, id.HistoryFileName))));
        foreach (var id in TimelinePlaceholders.Stale(timeline, kinds))
        {
            File.Delete(Path.Combine(wal, id.HistoryFileName));
        }
    }

    private readonly Dictionary<string, (long Length, WalLine Line)> _historyCache = [];

    private WalLine History(string path, TimelineId timeline)
    {
        var length = new FileInfo(path).Length;
        lock (_historyCache)
        {
            if (_historyCache.TryGetValue(path, out var cached) && cached.Length == length)
            {
                return cached.Line;
            }

            var line = WalLine.FromHistoryFile(timeline, File.ReadAllText(path));
            _historyCache[path] = (length, line);
            return line;
        }
    }

    private static bool IsHex(ReadOnlySpan<char> name)
    {
        foreach (var c in name)
        {
            if (!char.IsAsciiHexDigitUpper(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
