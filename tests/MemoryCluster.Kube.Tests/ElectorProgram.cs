using System.Globalization;
using System.Runtime.InteropServices;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Controller;

namespace MemoryCluster.Kube.Tests;

/// <summary>
/// The test assembly's entry point (the test SDK's generated one is switched off). The test runner never calls it;
/// the cross-process leader election tests run this assembly again as
/// <c>dotnet MemoryCluster.Kube.Tests.dll elector URL IDENTITY LEASE_MS RENEW_MS RETRY_MS</c>: one
/// <see cref="LeaderElector"/> against the API double, printing <c>leading</c> and <c>stopped</c> lines with the time.
/// SIGTERM (a pod being stopped) and the end of stdin (the test process gone) stop it gracefully, releasing the lease.
/// </summary>
internal static class ElectorProgram
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not ["elector", var url, var identity, var lease, var renew, var retry])
        {
            await Console.Error.WriteLineAsync("usage: elector URL IDENTITY LEASE_MS RENEW_MS RETRY_MS").ConfigureAwait(false);
            return 2;
        }

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            Print("terminating", identity);
            stop.Cancel();
        });
        var stdin = new Thread(() =>
        {
            // Nothing is ever written to stdin: it ends when the test process that holds the pipe goes away.
            while (Console.In.ReadLine() is not null)
            {
            }

            stop.Cancel();
        })
        { IsBackground = true };
        stdin.Start();

        using var client = new KubeApiClient(new KubeClientSettings { Server = new Uri(url), RequestTimeout = TimeSpan.FromSeconds(5) });
        var elector = new LeaderElector(client, new LeaderElectionOptions
        {
            Namespace = "default",
            LeaseName = "memorycluster-operator",
            Identity = identity,
            LeaseDuration = TimeSpan.FromMilliseconds(Parse(lease)),
            RenewDeadline = TimeSpan.FromMilliseconds(Parse(renew)),
            RetryPeriod = TimeSpan.FromMilliseconds(Parse(retry)),
        });
        Print("campaigning", identity);
        while (!stop.IsCancellationRequested)
        {
            await elector.RunAsync(async ct =>
            {
                Print("leading", identity);
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct).ConfigureAwait(false);
                }
                finally
                {
                    Print("stopped", identity);
                }
            }, stop.Token).ConfigureAwait(false);
        }

        Print("exiting", identity);
        return 0;
    }

    private static int Parse(string text) => int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);

    // One line per event, with the wall clock: every process on the machine reads the same one.
    private static void Print(string what, string identity) =>
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what} {identity} {DateTimeOffset.UtcNow:O}"));
}
