using System.Globalization;
using System.Reflection;
using System.Text;
using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Operator.Tls;

namespace MemoryCluster.Operator.Planning;

/// <summary>What a MemoryCluster should own: the Secrets to make once, its certificates, and every other object, whole.</summary>
public sealed record DesiredObjects(IReadOnlyList<SecretRequest> Secrets, TlsRequest Tls, IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects);

/// <summary>
/// Renders a MemoryCluster into the objects it owns (DESIGN.md, "Kubernetes objects"). Pure: the same cluster and
/// settings give the same objects, field for field, so that server-side apply of an unchanged render changes
/// nothing. The spec must have passed <see cref="SpecValidator"/>; this does not check it again.
/// </summary>
public static class ObjectPlanner
{
    /// <summary>Where each instance's volume is mounted; PostgreSQL's files, Raft's log and the manager's state live under it.</summary>
    public const string DataMount = "/var/lib/memorycluster";

    public const string ConfigMount = "/etc/memorycluster/config";
    public const string SecretsMount = "/etc/memorycluster/secrets";

    /// <summary>Where the server certificate Secret is mounted (read-only): <c>tls.crt</c>, <c>tls.key</c>, <c>ca.crt</c>.</summary>
    public const string TlsMount = "/etc/memorycluster/tls";

    /// <summary>The instance manager's settings file in the ConfigMap (<c>memorycluster instance --config</c>).</summary>
    public const string InstanceConfigKey = "instance.conf";

    /// <summary>The spec's extra postgresql.conf parameters, one <c>name = 'value'</c> per line.</summary>
    public const string ParametersKey = "postgresql.conf";

    /// <summary>The environment variable through which each instance learns its pod's name (and so its member id).</summary>
    public const string PodNameVariable = "MEMORYCLUSTER_POD_NAME";

    public const string PgBinDir = "/usr/lib/postgresql/15/bin";

    /// <summary>
    /// Every object <paramref name="cluster"/> should own. <paramref name="instancePods"/>: the StatefulSet's size when
    /// the workload planner holds it apart from spec.instances mid-scale (members leave the quorum before their pods go).
    /// <paramref name="identities"/>: each pod's member id and the founders (<see cref="IdentityPlanner"/>); by default
    /// those of a new cluster (the pod of ordinal N is member N+1, all of them founders).
    /// </summary>
    public static DesiredObjects Render(MemoryClusterResource cluster, OperatorSettings settings, int? instancePods = null, MemberIdentities? identities = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var names = ClusterNames.Of(cluster);
        var owner = OwnerOf(cluster);
        var peers = Math.Max(cluster.Spec.Instances, instancePods ?? 0);
        identities ??= MemberIdentities.Founding(peers);
        if (identities.Ids.Count < peers)
        {
            throw new ArgumentException($"member ids for {identities.Ids.Count} pods; the render needs {peers}", nameof(identities));
        }

        var objects = new List<IKubernetesObject<V1ObjectMeta>>
        {
            Config(cluster, names, identities, peers),
            InstanceAccount(names),
            InstanceRole(names, instancePods ?? cluster.Spec.Instances),
            InstanceRoleBinding(names),
            HeadlessService(names),
            RoleService(names, names.ReadWrite, InstanceRoles.Primary),
            RoleService(names, names.ReadOnly, InstanceRoles.Replica),
            RoleService(names, names.Read, role: null),
            DisruptionBudget(names),
            StatefulSet(cluster, names, settings, instancePods ?? cluster.Spec.Instances),
        };
        if (cluster.Spec.Compute.Replicas > 0)
        {
            objects.Add(ComputeDeployment(cluster, names, settings));
            objects.Add(ComputeService(names));
        }

        if (cluster.Spec.NetworkPolicy.Enabled)
        {
            objects.Add(InstanceNetworkPolicy(cluster, names));
        }

        foreach (var obj in objects)
        {
            obj.Metadata.NamespaceProperty = names.Namespace;
            if (owner is not null)
            {
                obj.Metadata.OwnerReferences = [owner];
            }
        }

        return new DesiredObjects(Secrets(names), new TlsRequest(names.CaSecret, names.ServerTlsSecret, TlsNames.ServerIdentityOf(names)), objects);
    }

    /// <summary>The owner reference every object carries; null while the MemoryCluster has no uid (rendered from a file).</summary>
    private static V1OwnerReference? OwnerOf(MemoryClusterResource cluster) =>
        string.IsNullOrEmpty(cluster.Metadata.Uid)
            ? null
            : new V1OwnerReference
            {
                ApiVersion = ApiGroup.ApiVersion,
                Kind = ApiGroup.Kind,
                Name = cluster.Metadata.Name,
                Uid = cluster.Metadata.Uid,
                Controller = true,
                BlockOwnerDeletion = true,
            };

    private static List<SecretRequest> Secrets(ClusterNames names) =>
    [
        BasicAuth(names.SuperuserSecret, "postgres"),
        BasicAuth(names.ReplicationSecret, "replicator"),
        BasicAuth(names.AppSecret, "app"),
        new(names.ClusterKeySecret, "Opaque", new Dictionary<string, string>(), new Dictionary<string, int> { ["key"] = 32 }),
        new(names.ComputeTokenSecret, "Opaque", new Dictionary<string, string>(), new Dictionary<string, int> { ["token"] = 32 }),
    ];

    private static SecretRequest BasicAuth(string name, string user) =>
        new(name, "kubernetes.io/basic-auth", new Dictionary<string, string> { ["username"] = user }, new Dictionary<string, int> { ["password"] = 24 });

    private static T New<T>(string name, Dictionary<string, string> labels)
        where T : IKubernetesObject<V1ObjectMeta>, new()
    {
        var entity = typeof(T).GetCustomAttribute<KubernetesEntityAttribute>()
            ?? throw new InvalidOperationException($"{typeof(T).Name} is not a Kubernetes model");
        return new T
        {
            ApiVersion = string.IsNullOrEmpty(entity.Group) ? entity.ApiVersion : entity.Group + "/" + entity.ApiVersion,
            Kind = entity.Kind,
            Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        };
    }

    private static V1ConfigMap Config(MemoryClusterResource cluster, ClusterNames names, MemberIdentities identities, int pods)
    {
        var config = New<V1ConfigMap>(names.Config, ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        config.Data = new Dictionary<string, string>
        {
            [InstanceConfigKey] = InstanceConfig(cluster, names, identities, pods),
            [ParametersKey] = Parameters(cluster.Spec.Postgres.Parameters),
        };
        return config;
    }

    /// <summary>
    /// The settings every instance manager reads; its own id comes from its pod's name. Peers name every pod that
    /// exists or is wanted (4 mid-scale); founders name the members that created the cluster, so a pod added by a
    /// scale starts as a joining member, while one config serves every pod.
    /// </summary>
    internal static string InstanceConfig(MemoryClusterResource cluster, ClusterNames names, MemberIdentities identities, int pods)
    {
        var peers = Enumerable.Range(0, pods)
            .Select(i => $"{identities.Ids[i]}={names.Pod(i)}@{names.PodHost(i)}:{ClusterPorts.Postgres}:{ClusterPorts.Raft}:{ClusterPorts.Manager}");
        var text = new StringBuilder();
        text.Append("# Rendered by the operator for MemoryCluster ").Append(names.Namespace).Append('/').Append(names.Cluster)
            .Append("; read by every instance (memorycluster instance --config).\n");
        text.Append("data-dir = ").Append(DataMount).Append("/data\n");
        text.Append("pg-bin-dir = ").Append(PgBinDir).Append('\n');
        text.Append("peers = ").AppendJoin(',', peers).Append('\n');
        text.Append("founders = ").AppendJoin(',', identities.Founders).Append('\n');
        text.Append("cluster-key-file = ").Append(SecretsMount).Append("/cluster-key/key\n");
        text.Append("replication-password-file = ").Append(SecretsMount).Append("/replication/password\n");
        text.Append("app-password-file = ").Append(SecretsMount).Append("/app/password\n");
        text.Append("superuser-password-file = ").Append(SecretsMount).Append("/superuser/password\n");

        // Watched by the manager: a change of spec.postgres.parameters reaches the pods without changing their template.
        text.Append("parameters-file = ").Append(ConfigMount).Append('/').Append(ParametersKey).Append('\n');
        text.Append("mode = ").Append(cluster.Spec.Replication.Mode).Append('\n');

        // PostgreSQL serves TLS with the operator's certificate; replication verifies its peers with the cluster's CA.
        text.Append("tls-cert-file = ").Append(TlsMount).Append('/').Append(TlsRequest.CertificateKey).Append('\n');
        text.Append("tls-key-file = ").Append(TlsMount).Append('/').Append(TlsRequest.PrivateKeyKey).Append('\n');
        text.Append("tls-ca-file = ").Append(TlsMount).Append('/').Append(TlsRequest.CaKey).Append('\n');
        return text.ToString();
    }

    /// <summary>postgresql.conf lines in name order, values quoted as PostgreSQL reads them.</summary>
    internal static string Parameters(IReadOnlyDictionary<string, string> parameters)
    {
        var text = new StringBuilder();
        foreach (var (name, value) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.Append(name).Append(" = '").Append(value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal)).Append("'\n");
        }

        return text.ToString();
    }

    private static V1ServiceAccount InstanceAccount(ClusterNames names) =>
        New<V1ServiceAccount>(names.InstanceAccount, ClusterLabels.For(names, ClusterLabels.PostgresComponent));

    /// <summary>
    /// What an instance may do: read and label the cluster's pods (its own among them; RBAC cannot name "the
    /// caller's pod", so the list is the StatefulSet's pod names), and read its MemoryCluster. Nothing more.
    /// </summary>
    private static V1Role InstanceRole(ClusterNames names, int pods)
    {
        var role = New<V1Role>(names.InstanceAccount, ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        role.Rules =
        [
            new V1PolicyRule
            {
                ApiGroups = [""],
                Resources = ["pods"],
                ResourceNames = [.. Enumerable.Range(0, pods).Select(names.Pod)],
                Verbs = ["get", "patch"],
            },
            new V1PolicyRule
            {
                ApiGroups = [ApiGroup.Group],
                Resources = [ApiGroup.Plural],
                ResourceNames = [names.Cluster],
                Verbs = ["get"],
            },
        ];
        return role;
    }

    private static V1RoleBinding InstanceRoleBinding(ClusterNames names)
    {
        var binding = New<V1RoleBinding>(names.InstanceAccount, ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        binding.RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "Role", Name = names.InstanceAccount };
        binding.Subjects = [new Rbacv1Subject { Kind = "ServiceAccount", Name = names.InstanceAccount, NamespaceProperty = names.Namespace }];
        return binding;
    }

    private static V1Service HeadlessService(ClusterNames names)
    {
        var service = New<V1Service>(names.Headless, ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        service.Spec = new V1ServiceSpec
        {
            ClusterIP = "None",
            // Raft and replication must reach members that are not ready yet: a cluster bootstraps through them.
            PublishNotReadyAddresses = true,
            Selector = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent),
            Ports =
            [
                Port("postgres", ClusterPorts.Postgres),
                Port("raft", ClusterPorts.Raft),
                Port("manager", ClusterPorts.Manager),
            ],
        };
        return service;
    }

    /// <summary>A Service on the Postgres port of the instances with <paramref name="role"/> (any instance when null).</summary>
    private static V1Service RoleService(ClusterNames names, string name, string? role)
    {
        var selector = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent);
        if (role is not null)
        {
            selector[ClusterLabels.Role] = role;
        }

        var service = New<V1Service>(name, ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        service.Spec = new V1ServiceSpec { Type = "ClusterIP", Selector = selector, Ports = [Port("postgres", ClusterPorts.Postgres)] };
        return service;
    }

    private static V1ServicePort Port(string name, int port) =>
        new() { Name = name, Port = port, TargetPort = name, Protocol = "TCP" };

    /// <summary>The pods of the operator (the chart's label), in any namespace: they call the managers' API.</summary>
    public static readonly Dictionary<string, string> OperatorPodLabels = new(StringComparer.Ordinal) { [ClusterLabels.Name] = ClusterLabels.Manager };

    /// <summary>
    /// Ingress to the instance pods: peers on every instance port (replication, Raft, the managers' calls), the
    /// operator on the manager's port, anyone on the Postgres port (clients and compute); with monitoring, anyone on
    /// the manager's port (scrapes of /metrics; its calls that change anything are signed).
    /// </summary>
    private static V1NetworkPolicy InstanceNetworkPolicy(MemoryClusterResource cluster, ClusterNames names)
    {
        var instances = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent);
        var policy = New<V1NetworkPolicy>(names.Cluster + "-instances", ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        var rules = new List<V1NetworkPolicyIngressRule>
        {
            new()
            {
                FromProperty = [new V1NetworkPolicyPeer { PodSelector = new V1LabelSelector { MatchLabels = instances } }],
                Ports = [TcpPort(ClusterPorts.Postgres), TcpPort(ClusterPorts.Raft), TcpPort(ClusterPorts.Manager)],
            },
            new()
            {
                FromProperty =
                [
                    new V1NetworkPolicyPeer
                    {
                        NamespaceSelector = new V1LabelSelector(),
                        PodSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string>(OperatorPodLabels) },
                    },
                ],
                Ports = [TcpPort(ClusterPorts.Manager)],
            },
            new() { Ports = [TcpPort(ClusterPorts.Postgres)] },
        };
        if (cluster.Spec.Monitoring.Enabled)
        {
            rules.Add(new V1NetworkPolicyIngressRule { Ports = [TcpPort(ClusterPorts.Manager)] });
        }

        policy.Spec = new V1NetworkPolicySpec
        {
            PodSelector = new V1LabelSelector { MatchLabels = instances },
            PolicyTypes = ["Ingress"],
            Ingress = rules,
        };
        return policy;
    }

    private static V1NetworkPolicyPort TcpPort(int port) => new() { Port = port, Protocol = "TCP" };

    private static V1PodDisruptionBudget DisruptionBudget(ClusterNames names)
    {
        var budget = New<V1PodDisruptionBudget>(names.DisruptionBudget, ClusterLabels.For(names, ClusterLabels.PostgresComponent));
        budget.Spec = new V1PodDisruptionBudgetSpec
        {
            // One instance at a time: a 3-member Raft quorum survives one loss, and so does a 5-member one with margin.
            MaxUnavailable = 1,
            Selector = new V1LabelSelector { MatchLabels = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent) },
        };
        return budget;
    }

    private static V1StatefulSet StatefulSet(MemoryClusterResource cluster, ClusterNames names, OperatorSettings settings, int pods)
    {
        var spec = cluster.Spec;
        var labels = ClusterLabels.For(names, ClusterLabels.PostgresComponent);
        var set = New<V1StatefulSet>(names.StatefulSet, labels);
        set.Spec = new V1StatefulSetSpec
        {
            Replicas = pods,
            ServiceName = names.Headless,
            Selector = new V1LabelSelector { MatchLabels = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent) },
            // Raft needs a majority up to elect anyone: ordered start would wait for a pod that waits for its peers.
            PodManagementPolicy = "Parallel",
            // The operator orders restarts itself: replicas first, then a switchover, then the old primary.
            UpdateStrategy = new V1StatefulSetUpdateStrategy { Type = "OnDelete" },
            // A member removed by a scale down keeps its data; the cluster's deletion keeps it unless the spec says Delete.
            PersistentVolumeClaimRetentionPolicy = new V1StatefulSetPersistentVolumeClaimRetentionPolicy { WhenDeleted = spec.Storage.WhenDeleted, WhenScaled = "Retain" },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = labels },
                Spec = InstancePod(cluster, names, settings),
            },
            VolumeClaimTemplates =
            [
                new V1PersistentVolumeClaim
                {
                    Metadata = new V1ObjectMeta { Name = "data", Labels = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent) },
                    Spec = new V1PersistentVolumeClaimSpec
                    {
                        AccessModes = ["ReadWriteOnce"],
                        StorageClassName = spec.Storage.StorageClassName,
                        Resources = new V1VolumeResourceRequirements
                        {
                            Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new(spec.Storage.Size.Text) },
                        },
                    },
                },
            ],
        };
        return set;
    }

    private static V1PodSpec InstancePod(MemoryClusterResource cluster, ClusterNames names, OperatorSettings settings)
    {
        var spec = cluster.Spec;
        var container = new V1Container
        {
            Name = "instance",
            Image = spec.Postgres.Image ?? settings.InstanceImage,
            Command = ["memorycluster", "instance", "--config", $"{ConfigMount}/{InstanceConfigKey}"],
            Env =
            [
                new V1EnvVar { Name = PodNameVariable, ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.name" } } },
                .. PodIpVariable("MEMORYCLUSTER_LISTEN_ADDRESS", settings),
            ],
            Ports =
            [
                new V1ContainerPort { Name = "postgres", ContainerPort = ClusterPorts.Postgres, Protocol = "TCP" },
                new V1ContainerPort { Name = "raft", ContainerPort = ClusterPorts.Raft, Protocol = "TCP" },
                new V1ContainerPort { Name = "manager", ContainerPort = ClusterPorts.Manager, Protocol = "TCP" },
            ],
            Resources = Resources(spec.Postgres.Resources),
            // A first start may run initdb or copy the whole primary: up to an hour before the manager answers. Asked
            // every second, so a pod made again (a deleted pod, a rolling update) is probed for readiness about a
            // second after its manager answers, not up to a period later.
            StartupProbe = Http("/healthz", "manager", periodSeconds: 1, failureThreshold: 3600),
            // The manager's own health, never PostgreSQL's speed: fencing a slow primary is the lease's job, not the kubelet's.
            LivenessProbe = Http("/healthz", "manager", periodSeconds: 10, failureThreshold: 6),
            // Every second: the -rw and -ro Services take only Ready pods, so a replica promoted while its pod was
            // not Ready yet (back from a restart) would otherwise wait up to a period with no route to it: seen as
            // 4-6 s more write unavailability after a failover with periodSeconds 5. A GET of the node's status.
            ReadinessProbe = Http("/readyz", "manager", periodSeconds: 1, failureThreshold: 3),
            SecurityContext = ContainerSecurity(),
            VolumeMounts =
            [
                new V1VolumeMount { Name = "data", MountPath = DataMount },
                new V1VolumeMount { Name = "config", MountPath = ConfigMount, ReadOnlyProperty = true },
                new V1VolumeMount { Name = "cluster-key", MountPath = SecretsMount + "/cluster-key", ReadOnlyProperty = true },
                new V1VolumeMount { Name = "replication", MountPath = SecretsMount + "/replication", ReadOnlyProperty = true },
                new V1VolumeMount { Name = "app", MountPath = SecretsMount + "/app", ReadOnlyProperty = true },
                new V1VolumeMount { Name = "superuser", MountPath = SecretsMount + "/superuser", ReadOnlyProperty = true },
                new V1VolumeMount { Name = "server-tls", MountPath = TlsMount, ReadOnlyProperty = true },
            ],
        };
        return new V1PodSpec
        {
            ServiceAccountName = names.InstanceAccount,
            TerminationGracePeriodSeconds = settings.TerminationGraceSeconds,
            SecurityContext = PodSecurity(settings),
            Affinity = AntiAffinity(spec.Scheduling, names),
            TopologySpreadConstraints = spec.Scheduling.TopologySpread is { } spread
                ? [new V1TopologySpreadConstraint
                {
                    TopologyKey = spread.TopologyKey,
                    MaxSkew = spread.MaxSkew,
                    WhenUnsatisfiable = spread.WhenUnsatisfiable,
                    LabelSelector = new V1LabelSelector { MatchLabels = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent) },
                }]
                : null,
            Containers = [container],
            Volumes =
            [
                new V1Volume { Name = "config", ConfigMap = new V1ConfigMapVolumeSource { Name = names.Config } },
                SecretVolume("cluster-key", names.ClusterKeySecret),
                SecretVolume("replication", names.ReplicationSecret),
                SecretVolume("app", names.AppSecret),
                SecretVolume("superuser", names.SuperuserSecret),
                SecretVolume("server-tls", names.ServerTlsSecret),
            ],
        };
    }

    /// <summary>
    /// Secret files with mode 0400; with <c>fsGroup</c> the kubelet makes them <c>root:fsGroup</c> and adds group read
    /// (0440), so the container's user reads them through its group. PostgreSQL would accept such a key (owned by root,
    /// nothing for others), but the manager copies the TLS files to a private folder with 0600 anyway (the same code
    /// works where the manager runs as root and PostgreSQL as another user, as in the local cluster).
    /// </summary>
    private static V1Volume SecretVolume(string name, string secret) =>
        new() { Name = name, Secret = new V1SecretVolumeSource { SecretName = secret, DefaultMode = Convert.ToInt32("400", 8) } };

    private static V1Affinity AntiAffinity(SchedulingSpec scheduling, ClusterNames names)
    {
        var term = new V1PodAffinityTerm
        {
            TopologyKey = scheduling.TopologyKey,
            LabelSelector = new V1LabelSelector { MatchLabels = ClusterLabels.Selector(names, ClusterLabels.PostgresComponent) },
        };
        return new V1Affinity
        {
            PodAntiAffinity = scheduling.AntiAffinity == AntiAffinityModes.Required
                ? new V1PodAntiAffinity { RequiredDuringSchedulingIgnoredDuringExecution = [term] }
                : new V1PodAntiAffinity { PreferredDuringSchedulingIgnoredDuringExecution = [new V1WeightedPodAffinityTerm { Weight = 100, PodAffinityTerm = term }] },
        };
    }

    /// <summary>Where the compute pods keep their local snapshot (an emptyDir: it outlives a container, not the pod).</summary>
    private const string ComputeSnapshotPath = "/var/lib/memorycluster-compute";

    private static V1Deployment ComputeDeployment(MemoryClusterResource cluster, ClusterNames names, OperatorSettings settings)
    {
        var compute = cluster.Spec.Compute;
        var labels = ClusterLabels.For(names, ClusterLabels.ComputeComponent);
        var deployment = New<V1Deployment>(names.Compute, labels);
        var container = new V1Container
        {
            Name = "compute",
            Image = settings.ComputeImage,
            Command = ["memorycluster", "compute"],
            Env =
            [
                Value("MEMORYCLUSTER_COMPUTE_PRIMARY_HOST", names.ReadWriteHost),
                Value("MEMORYCLUSTER_COMPUTE_PRIMARY_PORT", ClusterPorts.Postgres.ToString(CultureInfo.InvariantCulture)),
                // The bulk load at start reads from a replica through the read-only Service when there is one.
                Value("MEMORYCLUSTER_COMPUTE_REPLICA_HOST", names.ReadOnlyHost),
                Value("MEMORYCLUSTER_COMPUTE_DATABASE", "app"),
                FromSecret("MEMORYCLUSTER_COMPUTE_USER", names.AppSecret, "username"),
                FromSecret("MEMORYCLUSTER_COMPUTE_PASSWORD", names.AppSecret, "password"),
                FromSecret("MEMORYCLUSTER_COMPUTE_TOKEN", names.ComputeTokenSecret, "token"),
                Value("MEMORYCLUSTER_COMPUTE_PORT", ClusterPorts.Compute.ToString(CultureInfo.InvariantCulture)),
                .. PodIpVariable("MEMORYCLUSTER_COMPUTE_HOST", settings),
                Value("MEMORYCLUSTER_COMPUTE_EMBEDDING_DIMENSIONS", compute.EmbeddingDimensions.ToString(CultureInfo.InvariantCulture)),
                Value("MEMORYCLUSTER_COMPUTE_HNSW_M", compute.Hnsw.M.ToString(CultureInfo.InvariantCulture)),
                Value("MEMORYCLUSTER_COMPUTE_HNSW_EF_CONSTRUCTION", compute.Hnsw.EfConstruction.ToString(CultureInfo.InvariantCulture)),
                Value("MEMORYCLUSTER_COMPUTE_HNSW_EF_SEARCH", compute.Hnsw.EfSearch.ToString(CultureInfo.InvariantCulture)),
                // A container restarted in the same pod starts from its local snapshot, checked against the feed.
                Value("MEMORYCLUSTER_COMPUTE_SNAPSHOT_DIR", ComputeSnapshotPath),
            ],
            VolumeMounts = [new V1VolumeMount { Name = "snapshot", MountPath = ComputeSnapshotPath }],
            Ports = [new V1ContainerPort { Name = "http", ContainerPort = ClusterPorts.Compute, Protocol = "TCP" }],
            Resources = Resources(compute.Resources),
            // Loading the graph and its index can take minutes on a large store; ready only once caught up.
            StartupProbe = Http("/healthz", "http", periodSeconds: 1, failureThreshold: 1800),
            LivenessProbe = Http("/healthz", "http", periodSeconds: 10, failureThreshold: 6),
            ReadinessProbe = Http("/readyz", "http", periodSeconds: 1, failureThreshold: 3),
            SecurityContext = ContainerSecurity(),
        };
        deployment.Spec = new V1DeploymentSpec
        {
            Replicas = compute.Replicas,
            Selector = new V1LabelSelector { MatchLabels = ClusterLabels.Selector(names, ClusterLabels.ComputeComponent) },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = labels },
                Spec = new V1PodSpec
                {
                    // The compute pods talk to PostgreSQL only; they need no Kubernetes API.
                    AutomountServiceAccountToken = false,
                    SecurityContext = PodSecurity(settings),
                    Containers = [container],
                    Volumes = [new V1Volume { Name = "snapshot", EmptyDir = new V1EmptyDirVolumeSource() }],
                },
            },
        };
        return deployment;
    }

    private static V1Service ComputeService(ClusterNames names)
    {
        var service = New<V1Service>(names.Compute, ClusterLabels.For(names, ClusterLabels.ComputeComponent));
        service.Spec = new V1ServiceSpec
        {
            Type = "ClusterIP",
            Selector = ClusterLabels.Selector(names, ClusterLabels.ComputeComponent),
            Ports = [new V1ServicePort { Name = "http", Port = ClusterPorts.Compute, TargetPort = "http", Protocol = "TCP" }],
        };
        return service;
    }

    private static V1EnvVar Value(string name, string value) => new() { Name = name, Value = value };

    private static V1EnvVar FromSecret(string name, string secret, string key) =>
        new() { Name = name, ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = secret, Key = key } } };

    private static V1Probe Http(string path, string port, int periodSeconds, int failureThreshold) =>
        new() { HttpGet = new V1HTTPGetAction { Path = path, Port = port }, PeriodSeconds = periodSeconds, FailureThreshold = failureThreshold, TimeoutSeconds = 5 };

    private static V1ResourceRequirements? Resources(ResourceRequirements resources)
    {
        if (resources.Requests.Count == 0 && resources.Limits.Count == 0)
        {
            return null;
        }

        static Dictionary<string, ResourceQuantity>? Of(IReadOnlyDictionary<string, Quantity> values) =>
            values.Count == 0 ? null : values.OrderBy(v => v.Key, StringComparer.Ordinal).ToDictionary(v => v.Key, v => new ResourceQuantity(v.Value.Text));

        return new V1ResourceRequirements { Requests = Of(resources.Requests), Limits = Of(resources.Limits) };
    }

    /// <summary>The variable naming the pod's IP, where every process must listen on it only (<see cref="OperatorSettings.BindPodIp"/>).</summary>
    private static V1EnvVar[] PodIpVariable(string name, OperatorSettings settings) => settings.BindPodIp
        ? [new V1EnvVar { Name = name, ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.podIP" } } }]
        : [];

    private static V1PodSecurityContext PodSecurity(OperatorSettings settings) => new()
    {
        RunAsNonRoot = true,
        RunAsUser = settings.RunAsUser,
        RunAsGroup = settings.RunAsUser,
        FsGroup = settings.RunAsUser,
        SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
    };

    private static V1SecurityContext ContainerSecurity() => new()
    {
        AllowPrivilegeEscalation = false,
        Capabilities = new V1Capabilities { Drop = ["ALL"] },
    };
}
