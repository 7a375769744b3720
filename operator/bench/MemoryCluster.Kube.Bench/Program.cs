using MemoryCluster.Kube.TestServer;

if (args is ["serve", ..])
{
    // Development aid: run the API double for a bounded time and point kubectl at it.
    var seconds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 60;
    await using var server = await FakeApiServer.StartAsync(null, CancellationToken.None);
    var path = Path.Combine(Path.GetTempPath(), "memorycluster-double.kubeconfig");
    await File.WriteAllTextAsync(path, server.KubeconfigYaml(), CancellationToken.None);
    Console.WriteLine($"serving {server.Url} for {seconds} s; KUBECONFIG={path}");
    await Task.Delay(TimeSpan.FromSeconds(seconds));
    File.Delete(path);
    return 0;
}

return 0;
