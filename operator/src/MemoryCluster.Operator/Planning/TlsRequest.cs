using MemoryCluster.Operator.Tls;

namespace MemoryCluster.Operator.Planning;

/// <summary>
/// The certificates a cluster needs. Like <see cref="SecretRequest"/> it names Secrets and never holds key material:
/// the executor makes the CA once (<see cref="CaSecret"/>), issues the server certificate from it
/// (<see cref="ServerSecret"/>) for <see cref="Server"/>, and renews both by <see cref="TlsPolicy"/>.
/// </summary>
/// <param name="CaSecret">Opaque Secret with <see cref="CaKey"/> and <see cref="CaPrivateKeyKey"/>.</param>
/// <param name="ServerSecret">kubernetes.io/tls Secret with <see cref="CertificateKey"/>, <see cref="PrivateKeyKey"/> and <see cref="CaKey"/>.</param>
/// <param name="Server">The names the server certificate must cover.</param>
public sealed record TlsRequest(string CaSecret, string ServerSecret, ServerIdentity Server)
{
    public const string CaKey = "ca.crt";
    public const string CaPrivateKeyKey = "ca.key";
    public const string CertificateKey = "tls.crt";
    public const string PrivateKeyKey = "tls.key";
    public const string TlsSecretType = "kubernetes.io/tls";
}
