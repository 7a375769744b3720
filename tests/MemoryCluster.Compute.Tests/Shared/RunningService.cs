using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using MemoryCluster.Instance.Tests;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Compute.Tests;

/// <summary>A compute service running in this process against a test database, stopped on dispose.</summary>
internal sealed class RunningService : IAsyncDisposable
{
    public const string Token = "test-write-token";

    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private RunningService(Task run, Uri address, CapturingLogger log)
    {
        _run = run;
        Address = address;
        Log = log;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        Writer = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        Writer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
    }

    public Uri Address { get; }

    public CapturingLogger Log { get; }

    /// <summary>Without the token.</summary>
    public HttpClient Client { get; }

    /// <summary>With the write token.</summary>
    public HttpClient Writer { get; }

    public static async Task<RunningService> StartAsync(string readWrite, string? readOnly = null, Func<ComputeOptions, ComputeOptions>? tune = null)
    {
        var log = new CapturingLogger("compute");
        var options = new ComputeOptions { ReadWrite = readWrite, ReadOnly = readOnly, Listen = "http://127.0.0.1:0", WriteToken = System.Text.Encoding.UTF8.GetBytes(Token) };
        options = tune?.Invoke(options) ?? options;
        var started = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => ComputeHost.RunAsync(options, LoggerFactory.Create(b => b.AddProvider(new Provider(log))), started.SetResult, stop.Token));
        var first = await Task.WhenAny(started.Task, run, Task.Delay(TimeSpan.FromSeconds(60)));
        if (first != started.Task)
        {
            await stop.CancelAsync();
            throw new InvalidOperationException($"the compute service did not start: {(run.IsFaulted ? run.Exception!.Message : "timed out")}\n{log.Tail()}");
        }

        var service = new RunningService(run, started.Task.Result, log);
        service._stop.Token.Register(stop.Cancel);
        await service.WaitReadyAsync(TimeSpan.FromSeconds(60));
        return service;
    }

    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        while (true)
        {
            try
            {
                using var response = await Client.GetAsync("/readyz", limit.Token);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the compute service was not ready within {timeout.TotalSeconds} s\n{Log.Tail()}");
            }

            await Task.Delay(50, CancellationToken.None);
        }
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Client.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, object body, bool authorized = true)
    {
        using var response = await (authorized ? Writer : Client).PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Client.Dispose();
        Writer.Dispose();
        _stop.Dispose();
    }

    private sealed class Provider(CapturingLogger log) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => log;

        public void Dispose()
        {
        }
    }
}
