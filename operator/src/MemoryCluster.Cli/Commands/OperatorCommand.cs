using System.CommandLine;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Cli.Manifests;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Operator.Hosting;
using MemoryCluster.Operator.Planning;
using MemoryCluster.Operator.Reconciling;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// <c>memorycluster operator</c>: the Kubernetes operator. <c>operator run</c> reconciles MemoryClusters;
/// <c>operator render</c> prints every object the planner would apply for a MemoryCluster, with no cluster needed.
/// </summary>
internal static class OperatorCommand
{
    public static Command Create()
    {
        var command = new Command("operator", "The Kubernetes operator: 'operator run' reconciles MemoryClusters into what they own; 'operator render' prints what it would apply.");
        command.Add(RunCommand());
        command.Add(RenderCommand());
        return command;
    }

    private static Command RunCommand()
    {
        var watchNamespace = new Option<string?>("--watch-namespace") { Description = "Namespace to watch; empty or unset: every namespace." };
        var leaderElect = new Option<bool>("--leader-elect") { Description = "Reconcile only while holding the leader Lease (run two or more replicas)." };
        var leaseNamespace = new Option<string?>("--lease-namespace") { Description = "Namespace of the leader Lease (default: $POD_NAMESPACE, else the kubeconfig's namespace)." };
        var identity = new Option<string?>("--identity") { Description = "This replica's name in the Lease (default: $POD_NAME, else the host name)." };
        var metricsPort = new Option<int>("--metrics-port") { Description = "Port of /metrics.", DefaultValueFactory = _ => 8080 };
        var healthPort = new Option<int>("--health-port") { Description = "Port of /healthz and /readyz.", DefaultValueFactory = _ => 8081 };
        var computeImage = new Option<string>("--compute-image") { Description = "Image of the compute pods.", DefaultValueFactory = _ => OperatorSettings.Default.ComputeImage };
        var instanceImage = new Option<string>("--instance-image") { Description = "Image of the instance pods of a MemoryCluster that names none (spec.postgres.image unset).", DefaultValueFactory = _ => OperatorSettings.Default.InstanceImage };
        var bindPodIp = new Option<bool>("--bind-pod-ip") { Description = "Have every process of the pods listen on its pod IP only, for clusters whose pods share one network namespace." };
        var listenAddress = new Option<string?>("--listen-address") { Description = "Address the metrics and health ports listen on (default: every address)." };
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "kubeconfig file (default: in-cluster when run in a pod, else $KUBECONFIG or ~/.kube/config)." };
        var context = new Option<string?>("--context") { Description = "kubeconfig context (default: its current-context)." };
        var instanceUrl = new Option<string?>("--instance-url")
        {
            Description = "Where each instance manager's API is, as a template with {namespace}, {cluster}, {pod} and {ordinal} (default: http://{pod}.{cluster}-hl.{namespace}.svc:8000/, the headless Service; set it when the operator runs outside the cluster network).",
        };
        var command = new Command("run", "Run the operator: watch MemoryClusters and reconcile them (Ctrl-C or SIGTERM stops it, releasing the Lease).")
        {
            watchNamespace, leaderElect, leaseNamespace, identity, metricsPort, healthPort, computeImage, instanceImage, bindPodIp, listenAddress, kubeconfig, context, instanceUrl,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            KubeClientSettings settings;
            if (result.GetValue(kubeconfig) is { } path && !File.Exists(path))
            {
                Console.Error.WriteLine($"memorycluster operator run: --kubeconfig {path}: no such file");
                return 2;
            }

            try
            {
                settings = result.GetValue(kubeconfig) is { } file
                    ? KubeConfigLoader.Load([file], result.GetValue(context))
                    : InClusterConfig.IsInCluster() && result.GetValue(context) is null ? InClusterConfig.Load() : KubeConfigLoader.FromEnvironment(result.GetValue(context));
            }
            catch (KubeConfigException e)
            {
                Console.Error.WriteLine($"memorycluster operator run: {e.Message}");
                return 2;
            }

            var listen = System.Net.IPAddress.Any;
            if (result.GetValue(listenAddress) is { Length: > 0 } text && !System.Net.IPAddress.TryParse(text, out listen))
            {
                Console.Error.WriteLine($"memorycluster operator run: --listen-address {text}: not an IP address");
                return 2;
            }

            using var loggers = LoggerFactory.Create(b => b.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            }).SetMinimumLevel(LogLevel.Information).AddFilter("Microsoft", LogLevel.Warning));
            using var client = new KubeApiClient(settings, logger: loggers.CreateLogger<KubeApiClient>());
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var options = new OperatorOptions
            {
                WatchNamespace = string.IsNullOrEmpty(result.GetValue(watchNamespace)) ? null : result.GetValue(watchNamespace),
                LeaderElect = result.GetValue(leaderElect),
                LeaseNamespace = result.GetValue(leaseNamespace) ?? Environment.GetEnvironmentVariable("POD_NAMESPACE") ?? settings.Namespace ?? "default",
                Identity = result.GetValue(identity) ?? Environment.GetEnvironmentVariable("POD_NAME") ?? Environment.MachineName,
                MetricsPort = result.GetValue(metricsPort),
                HealthPort = result.GetValue(healthPort),
                ListenAddress = listen!,
                Reconciler = new ReconcilerOptions { Settings = OperatorSettings.Default with { ComputeImage = result.GetValue(computeImage)!, InstanceImage = result.GetValue(instanceImage)!, BindPodIp = result.GetValue(bindPodIp) } },
            };
            var template = result.GetValue(instanceUrl);
            Func<ClusterNames, int, Uri>? address = template is null ? null : (names, ordinal) => InstanceUrl(template, names, ordinal);
            if (template is not null && !InstanceUrl(template, new ClusterNames("demo", "default"), 0).IsAbsoluteUri)
            {
                Console.Error.WriteLine($"memorycluster operator run: --instance-url {template}: not an absolute URL");
                return 2;
            }

            var host = new OperatorHost(client, new HttpInstanceClient(http, address), options, loggers);
            try
            {
                await host.RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Stopped by a signal: the Lease is released.
            }

            return 0;
        });
        return command;
    }

    /// <summary>The <c>--instance-url</c> template filled in for one pod; always ends with a slash.</summary>
    internal static Uri InstanceUrl(string template, ClusterNames names, int ordinal)
    {
        var text = template
            .Replace("{namespace}", names.Namespace, StringComparison.Ordinal)
            .Replace("{cluster}", names.Cluster, StringComparison.Ordinal)
            .Replace("{pod}", names.Pod(ordinal), StringComparison.Ordinal)
            .Replace("{ordinal}", ordinal.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        return new Uri(text.EndsWith('/') ? text : text + "/", UriKind.RelativeOrAbsolute);
    }

    private static Command RenderCommand()
    {
        var files = new Option<string[]>("--filename", "-f") { Description = "MemoryCluster manifest files ('-' for standard input).", Arity = ArgumentArity.OneOrMore, Required = true };
        var computeImage = new Option<string>("--compute-image") { Description = "Image of the compute pods (the operator's setting; the chart's values name it).", DefaultValueFactory = _ => OperatorSettings.Default.ComputeImage };
        var instanceImage = new Option<string>("--instance-image") { Description = "Image of the instance pods when spec.postgres.image is unset (the operator's setting; the chart's values name it).", DefaultValueFactory = _ => OperatorSettings.Default.InstanceImage };
        var bindPodIp = new Option<bool>("--bind-pod-ip") { Description = "Render pods whose processes listen on their pod IP only (the operator's setting; the chart's bindPodIP)." };
        var command = new Command("render", "Print, as YAML, every object the operator would apply for each MemoryCluster in the files; no cluster needed.") { files, computeImage, instanceImage, bindPodIp };
        command.SetAction(result => Render(result.GetValue(files)!, OperatorSettings.Default with { ComputeImage = result.GetValue(computeImage)!, InstanceImage = result.GetValue(instanceImage)!, BindPodIp = result.GetValue(bindPodIp) }, Console.In, Console.Out, Console.Error));
        return command;
    }

    internal static int Render(IReadOnlyList<string> files, OperatorSettings settings, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var failed = false;
        var first = true;
        foreach (var file in files)
        {
            var clusters = ManifestFiles.Read(file, stdin, stderr);
            if (clusters is null)
            {
                failed = true;
                continue;
            }

            foreach (var manifest in clusters)
            {
                if (manifest.Errors.Count > 0 || manifest.Cluster is null)
                {
                    failed = true;
                    foreach (var error in manifest.Errors)
                    {
                        stderr.WriteLine($"{file}: memorycluster/{manifest.Name}: {error}");
                    }

                    continue;
                }

                var desired = ObjectPlanner.Render(manifest.Cluster, settings);
                foreach (var document in Documents(manifest.Cluster.Metadata.Uid is null, ClusterNames.Of(manifest.Cluster), desired))
                {
                    if (!first)
                    {
                        stdout.Write("---\n");
                    }

                    first = false;
                    stdout.Write(document);
                }
            }
        }

        return failed ? 1 : 0;
    }

    /// <summary>One YAML document per object; a Secret shows its fixed keys and names the keys generated at apply time.</summary>
    private static IEnumerable<string> Documents(bool noOwner, ClusterNames names, DesiredObjects desired)
    {
        var header = $"# memorycluster/{names.Cluster} in namespace {names.Namespace}";
        if (noOwner)
        {
            header += "; rendered from a file: the operator adds an owner reference to the MemoryCluster on every object";
        }

        var firstDocument = true;
        foreach (var secret in desired.Secrets)
        {
            var obj = new V1Secret
            {
                ApiVersion = "v1",
                Kind = "Secret",
                Metadata = new V1ObjectMeta { Name = secret.Name, NamespaceProperty = names.Namespace, Labels = ClusterLabels.For(names, ClusterLabels.PostgresComponent) },
                Type = secret.Type,
                StringData = secret.Fixed.Count == 0 ? null : new Dictionary<string, string>(secret.Fixed),
            };
            var generated = string.Join(", ", secret.Generated.Select(g => $"{g.Key} ({g.Value} random bytes)"));
            yield return (firstDocument ? header + "\n" : string.Empty) + $"# generated once by the operator when the Secret does not exist, never logged or rendered: {generated}\n" + Yaml(obj);
            firstDocument = false;
        }

        var tls = desired.Tls;
        foreach (var (name, type, what) in new[]
        {
            (tls.CaSecret, "Opaque", $"{TlsRequest.CaKey}, {TlsRequest.CaPrivateKeyKey} (the cluster's CA, ECDSA P-256, made once)"),
            (tls.ServerSecret, TlsRequest.TlsSecretType, $"{TlsRequest.CertificateKey}, {TlsRequest.PrivateKeyKey}, {TlsRequest.CaKey} (issued from {tls.CaSecret}, renewed before it ends; names: {string.Join(", ", tls.Server.DnsNames)})"),
        })
        {
            var obj = new V1Secret
            {
                ApiVersion = "v1",
                Kind = "Secret",
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = names.Namespace, Labels = ClusterLabels.For(names, ClusterLabels.PostgresComponent) },
                Type = type,
            };
            yield return $"# made by the operator, never logged or rendered: {what}\n" + Yaml(obj);
        }

        foreach (var obj in desired.Objects)
        {
            yield return Yaml(obj);
        }
    }

    private static string Yaml(object obj) => YamlJson.FromJson(JsonNode.Parse(KubernetesJson.Serialize(obj))!);
}
