using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Watches the mounted TLS files every <see cref="Interval"/> (the kubelet refreshes a Secret volume within about a
/// minute of the Secret's change) and, when one changed, copies it and reloads PostgreSQL: PostgreSQL 15 reads its SSL
/// files again on every reload, so a renewed certificate is served without a restart. A reload that cannot be made
/// (PostgreSQL stopped or starting) is not needed: the next start reads the copies. Runs only when TLS is configured.
/// </summary>
internal sealed partial class TlsReloader(InstanceOptions options, PgBinaries binaries, PostgresSupervisor supervisor, PgClient client, TimeProvider time, ILogger<TlsReloader> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (TlsFiles.For(options, binaries) is not { } files)
        {
            return;
        }

        using var timer = new PeriodicTimer(Interval, time);
        var pending = false;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    if (files.Sync())
                    {
                        Log.Changed(logger, options.Name);
                        pending = true;
                    }
                }
                catch (IOException e)
                {
                    // A Secret volume between two versions, or a file removed: the copies PostgreSQL reads stay as they are.
                    Log.ReadFailed(logger, options.Name, e.Message);
                }

                if (pending && supervisor.Running)
                {
                    try
                    {
                        await client.ReloadAsync(stoppingToken).ConfigureAwait(false);
                        pending = false;
                        Log.Reloaded(logger, options.Name);
                    }
                    catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
                    {
                        Log.ReloadFailed(logger, options.Name, e.Message);
                    }
                }
                else if (pending && !supervisor.Running)
                {
                    // Not running: its next start reads the new copies.
                    pending = false;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "{Instance}: the TLS files changed; copied for PostgreSQL")]
        public static partial void Changed(ILogger logger, string instance);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Instance}: PostgreSQL reloaded to serve the new certificate")]
        public static partial void Reloaded(ILogger logger, string instance);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Instance}: could not read the mounted TLS files (kept the copies PostgreSQL reads): {Error}")]
        public static partial void ReadFailed(ILogger logger, string instance, string error);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Instance}: could not reload PostgreSQL for the new certificate (tried again in 10 s): {Error}")]
        public static partial void ReloadFailed(ILogger logger, string instance, string error);
    }
}
