using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Compute;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Cli.Tests.Operator;

/// <summary>The compute pods' environment, as the operator renders it, is exactly what <c>memorycluster compute</c> reads.</summary>
public sealed class ComputeContractTests
{
    [Fact]
    public void Every_variable_the_operator_gives_the_compute_pods_is_a_compute_setting_and_together_they_start_it()
    {
        var cluster = new MemoryClusterResource
        {
            Metadata = new ObjectMeta { Name = "demo", Namespace = "memory" },
            Spec = new MemoryClusterSpec { Instances = 3 },
        };
        var deployment = ObjectPlanner.Render(cluster, OperatorSettings.Default).Objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "demo-compute");
        var env = deployment.Spec.Template.Spec.Containers.Single().Env;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in env)
        {
            var key = ComputeSettings.Keys.SingleOrDefault(k => ComputeSettings.EnvironmentName(k) == variable.Name);
            Assert.True(key is not null, $"{variable.Name} is not a setting of memorycluster compute");
            // Values from Secrets stand in as what the reconciler generates: base64url text.
            values[key] = variable.Value ?? "c2VjcmV0LXZhbHVlLWZyb20tYS1zZWNyZXQtMDEyMzQ1Njc4OQ";
        }

        var (options, errors) = ComputeSettings.Parse(values);
        Assert.True(options is not null, string.Join("; ", errors));
        Assert.Contains("Host=demo-rw.memory.svc", options.ReadWrite, StringComparison.Ordinal);
        Assert.Contains("Host=demo-ro.memory.svc", options.ReadOnly, StringComparison.Ordinal);
        Assert.EndsWith(":8080", options.Listen, StringComparison.Ordinal);

        // The snapshot folder is a volume of the pod (the image's file system may be read-only).
        var mount = Assert.Single(deployment.Spec.Template.Spec.Containers.Single().VolumeMounts, m => m.MountPath == options.Feed.SnapshotDirectory);
        Assert.NotNull(Assert.Single(deployment.Spec.Template.Spec.Volumes, v => v.Name == mount.Name).EmptyDir);
    }
}
