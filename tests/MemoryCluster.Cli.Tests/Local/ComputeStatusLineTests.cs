using System.Text.Json;
using MemoryCluster.Cli.Local;

namespace MemoryCluster.Cli.Tests.Local;

public sealed class ComputeStatusLineTests
{
    private static readonly Uri Url = new("http://127.0.0.1:4000/");

    [Fact]
    public void The_compute_line_says_whether_it_runs_and_how_far_it_is()
    {
        Assert.Equal("compute:    not run in this cluster (local up --no-compute)\n", LocalCompute.StatusLine(false, false, null, null));
        Assert.Equal("compute:    not running (`local up` starts it)\n", LocalCompute.StatusLine(true, false, Url, null));
        Assert.Equal($"compute:    running at {Url}, not answering /status\n", LocalCompute.StatusLine(true, true, Url, null));

        var ready = JsonDocument.Parse("""{"phase":"following","ready":true,"seq":12,"triples":1234,"lastError":null}""").RootElement;
        Assert.Equal($"compute:    ready, feed commit 12, 1,234 triples, {Url}\n", LocalCompute.StatusLine(true, true, Url, ready));

        var failing = JsonDocument.Parse("""{"phase":"reconnecting","ready":false,"seq":12,"triples":5,"lastError":"connection refused"}""").RootElement;
        Assert.Equal($"compute:    reconnecting, feed commit 12, 5 triples, {Url} (last error: connection refused)\n", LocalCompute.StatusLine(true, true, Url, failing));
    }
}
