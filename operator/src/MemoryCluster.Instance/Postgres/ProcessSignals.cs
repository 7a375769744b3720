using System.Runtime.InteropServices;

namespace MemoryCluster.Instance.Postgres;

/// <summary>POSIX <c>kill(2)</c>, for the manager, the local cluster and the fault suite alike.</summary>
public static partial class ProcessSignals
{
    public const int SigInt = 2;
    public const int SigQuit = 3;
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/> (a negative pid: its process group); 0 on success, -1 otherwise.</summary>
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Send(int pid, int signal);
}
