using System.CommandLine;
using MemoryCluster.Cli.Commands;

var root = new RootCommand("memorycluster: highly available PostgreSQL with an in-memory knowledge-graph compute tier, for Kubernetes.")
{
    CrdsCommand.Create(),
    ValidateCommand.Create(),
    InstanceCommand.Create(),
    ComputeCommand.Create(),
    LocalCommand.Create(),
    OperatorCommand.Create(),
    KubectlCommand.Create(),
};
return root.Parse(args).Invoke();
