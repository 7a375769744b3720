namespace MemoryCluster.Operator.Planning;

/// <summary>
/// A Secret the cluster needs. Its generated keys are made once, from a cryptographic random source, when the
/// Secret does not exist, and never again: the planner only names them, so that it stays pure and so that no
/// value ever passes through a plan, a log or a rendered manifest.
/// </summary>
/// <param name="Name">The Secret's name.</param>
/// <param name="Type">The Secret's type, e.g. <c>kubernetes.io/basic-auth</c>.</param>
/// <param name="Fixed">Keys with a value known in advance (a user name).</param>
/// <param name="Generated">Keys generated once, each with its number of random bytes.</param>
public sealed record SecretRequest(
    string Name,
    string Type,
    IReadOnlyDictionary<string, string> Fixed,
    IReadOnlyDictionary<string, int> Generated);
