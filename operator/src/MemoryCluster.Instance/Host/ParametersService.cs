using System.Text.RegularExpressions;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Applies the user's parameters file (setting <c>parameters-file</c>; in a pod the ConfigMap's postgresql.conf, which
/// the kubelet updates some time after the ConfigMap changes). Every <see cref="Interval"/> on a loop of its own (never
/// in the node's way) it reads the file and, when its content changed, does what <see cref="ParameterPlanner"/> decides:
/// PostgreSQL checks the new copy (<c>postgres -C</c>), the copy PostgreSQL includes is replaced whole, and a running
/// PostgreSQL reloads. What only a restart applies is read from <c>pg_settings.pending_restart</c> and shown in
/// <c>/status</c>, for the operator to roll the pod. Once before PostgreSQL's first start too, so a new member starts
/// with the parameters in force. <paramref name="postgresPid"/>: the running postmaster's pid, null when none runs.
/// </summary>
internal sealed partial class ParametersService(
    InstanceOptions options,
    PgBinaries binaries,
    PgTools tools,
    PgClient client,
    Func<int?> postgresPid,
    TimeProvider time,
    ILogger logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(3);

    /// <summary>After a reload, pending restarts are read on every pass for this long (a reload reaches the backends asynchronously).</summary>
    private static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan QueryLimit = TimeSpan.FromSeconds(3);

    private readonly SemaphoreSlim _pass = new(1, 1);
    private IReadOnlyDictionary<string, ParameterContext> _catalogue = new Dictionary<string, ParameterContext>();
    private IReadOnlyDictionary<string, string> _inForce = new Dictionary<string, string>();
    private string? _inForceHash;
    private string? _handledHash;
    private bool _reloadOwed;
    private string? _fileHash;
    private string? _error;
    private IReadOnlyList<string> _ignored = [];
    private DateTimeOffset? _appliedAt;
    private DateTimeOffset _checkUntil;
    private int? _checkedPid;
    private IReadOnlyList<string> _pendingRestart = [];

    /// <summary>What <c>/status</c> shows under <c>parameters</c>; null when the manager has no parameters file.</summary>
    public ParametersDocument? Status => options.ParametersFile is null
        ? null
        : new ParametersDocument(_fileHash, _inForceHash, _pendingRestart.Count > 0, _pendingRestart, _ignored, _error, _appliedAt);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await PrepareAsync(cancellationToken).ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the catalogue and the copy in force, then makes one pass (also used by the tests).</summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (options.ParametersFile is not null)
        {
            Directory.CreateDirectory(options.ParametersDirectory);
            File.SetUnixFileMode(options.ParametersDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            binaries.GiveFileToPostgres(options.ParametersDirectory);
            _catalogue = ParameterPlanner.ParseCatalogue(await tools.DescribeConfigAsync(cancellationToken).ConfigureAwait(false));
            if (File.Exists(options.ParametersInForce))
            {
                var text = await File.ReadAllTextAsync(options.ParametersInForce, cancellationToken).ConfigureAwait(false);
                _inForce = ParametersText.Parse(text).Values;
                _inForceHash = ParametersText.Hash(text);
            }

            // Before the node starts PostgreSQL for the first time (the driver starts after this service).
            await PassAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.ParametersFile is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await PassAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or PgToolException)
                {
                    // The user's parameters never stop the manager: the copy in force stays, and /status says why.
                    Refused($"could not apply the parameters file: {e.Message}");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One pass: read the file, act on a change, read pending restarts when they may have changed (also used by the tests).</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        await _pass.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var text = ReadFile();
            _fileHash = text is null ? null : ParametersText.Hash(text);
            var running = postgresPid() is not null;

            if (_fileHash != _handledHash)
            {
                await ApplyAsync(text, running, cancellationToken).ConfigureAwait(false);
            }

            if (_reloadOwed && running)
            {
                // A copy written while PostgreSQL was down or starting, or whose reload failed (a reload is harmless).
                await ReloadAsync(cancellationToken).ConfigureAwait(false);
            }

            await ReadPendingRestartAsync(running, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _pass.Release();
        }
    }

    private string? ReadFile()
    {
        try
        {
            return File.ReadAllText(options.ParametersFile!);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private async Task ApplyAsync(string? text, bool running, CancellationToken cancellationToken)
    {
        var plan = ParameterPlanner.Plan(new ParameterInput(text, _inForce, _catalogue, running));
        _ignored = plan.Ignored;
        if (plan.Ignored.Count > 0 && _fileHash != _handledHash)
        {
            LogIgnored(logger, string.Join(", ", plan.Ignored));
        }

        switch (plan.Step)
        {
            case ParameterStep.Keep:
                _error = null;
                break;
            case ParameterStep.Refuse:
                Refused(string.Join("; ", plan.Problems));
                break;
            case ParameterStep.Write or ParameterStep.WriteAndReload:
                var copy = ParametersText.Render(plan.Values);
                var candidate = Path.Combine(options.ParametersDirectory, "candidate.conf");
                await File.WriteAllTextAsync(candidate, copy, cancellationToken).ConfigureAwait(false);
                binaries.GiveFileToPostgres(candidate);
                try
                {
                    await tools.CheckConfigAsync(options.ParametersDirectory, candidate, cancellationToken).ConfigureAwait(false);
                }
                catch (PgToolException e)
                {
                    File.Delete(candidate);
                    Refused("PostgreSQL refuses them: " + PostgresWords(e.Message));
                    break;
                }

                // Replaced whole: a PostgreSQL starting or reloading meanwhile reads the old copy or the new one.
                File.Move(candidate, options.ParametersInForce, overwrite: true);
                _inForce = plan.Values;
                _inForceHash = ParametersText.Hash(copy);
                _appliedAt = time.GetUtcNow();
                _error = null;
                _reloadOwed = true;
                if (plan.Step == ParameterStep.WriteAndReload)
                {
                    await ReloadAsync(cancellationToken).ConfigureAwait(false);
                }

                LogApplied(logger, string.Join(", ", plan.Changed), plan.Step == ParameterStep.WriteAndReload ? "reloaded" : "PostgreSQL reads them when it starts", plan.RestartNeeded.Count == 0 ? "none" : string.Join(", ", plan.RestartNeeded));
                break;
            default:
                throw new InvalidOperationException($"unexpected parameter step {plan.Step}");
        }

        _handledHash = _fileHash;
    }

    private void Refused(string why)
    {
        if (_error != why)
        {
            LogRefused(logger, why);
        }

        _error = why;
    }

    private async Task ReloadAsync(CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(QueryLimit);
        try
        {
            await client.ReloadAsync(limit.Token).ConfigureAwait(false);
            _reloadOwed = false;
            _checkUntil = time.GetUtcNow() + SettleTime;
        }
        catch (Exception e) when (IsQueryFailure(e, cancellationToken))
        {
            // Stopped meanwhile (its next start reads the copy), or not answering: the next pass tries again.
            LogReloadFailed(logger, e.Message);
        }
    }

    /// <summary>Pending restarts change only with a reload or a restart: read them after one, or while some are pending.</summary>
    private async Task ReadPendingRestartAsync(bool running, CancellationToken cancellationToken)
    {
        var pid = running ? postgresPid() : null;
        if (pid is null)
        {
            // Not running: its next start reads the copy in force, so nothing waits for a restart.
            _pendingRestart = [];
            _checkedPid = null;
            return;
        }

        if (pid == _checkedPid && _pendingRestart.Count == 0 && time.GetUtcNow() > _checkUntil)
        {
            return;
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(QueryLimit);
        try
        {
            var pending = await client.PendingRestartAsync(limit.Token).ConfigureAwait(false);
            if (!pending.SequenceEqual(_pendingRestart, StringComparer.Ordinal) && pending.Count > 0)
            {
                LogPendingRestart(logger, string.Join(", ", pending));
            }

            _pendingRestart = pending;
            _checkedPid = pid;
        }
        catch (Exception e) when (IsQueryFailure(e, cancellationToken))
        {
            // Starting or stopping: read again on the next pass.
            _checkedPid = null;
        }
    }

    private static bool IsQueryFailure(Exception e, CancellationToken cancellationToken) =>
        e is Npgsql.NpgsqlException or TimeoutException or IOException or InvalidOperationException
        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    /// <summary>PostgreSQL's complaint without its log prefixes and notes: "invalid value for parameter "work_mem": "x"".</summary>
    internal static string PostgresWords(string output)
    {
        var lines = output.Split('\n')
            .Select(l => LogPrefix().Replace(l.Trim(), string.Empty))
            .Where(l => l.Length > 0 && !l.Contains("skipping missing configuration file", StringComparison.Ordinal) && !l.StartsWith("postgres exited", StringComparison.Ordinal))
            .ToList();
        return lines.Count == 0 ? output.Trim() : string.Join("; ", lines);
    }

    [GeneratedRegex(@"^(postgres exited with code \d+: )?(\d{4}-\d\d-\d\d [0-9:.]+ \w+ \[\d+\] )?(LOG|FATAL|HINT|DETAIL|ERROR):\s+")]
    private static partial Regex LogPrefix();

    [LoggerMessage(Level = LogLevel.Information, Message = "parameters applied, changed: {Changed} ({How}); needing a restart: {Restart}")]
    private static partial void LogApplied(ILogger logger, string changed, string how, string restart);

    [LoggerMessage(Level = LogLevel.Warning, Message = "parameters file refused, the parameters in force stay: {Why}")]
    private static partial void LogRefused(ILogger logger, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "parameters the instance manager owns were left out of the parameters file: {Names}")]
    private static partial void LogIgnored(ILogger logger, string names);

    [LoggerMessage(Level = LogLevel.Information, Message = "parameters waiting for a restart of PostgreSQL: {Names}")]
    private static partial void LogPendingRestart(ILogger logger, string names);

    [LoggerMessage(Level = LogLevel.Warning, Message = "parameters: reload failed, tried again on the next pass: {Error}")]
    private static partial void LogReloadFailed(ILogger logger, string error);
}
