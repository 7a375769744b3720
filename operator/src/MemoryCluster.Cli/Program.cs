using System.CommandLine;
using MemoryCluster.Cli.Commands;

var root = new RootCommand("memorycluster: highly available PostgreSQL with an in-memory knowledge-graph compute tier, for Kubernetes.")
{
    CrdsCommand.Create(),
    ValidateCommand.Create(),
    InstanceCommand.Create(),
    LocalCommand.Create(),
    OperatorCommand.Create(),
};
foreach (var command in LaterCommands.Create())
{
    root.Add(command);
}

return root.Parse(args).Invoke();
