using System.Runtime.InteropServices;

namespace Moldau.Server;

/// <summary>
/// The process's open-file limit (RLIMIT_NOFILE) and how the broker shares it: storage keeps at
/// most <see cref="StorageShare"/> files open, a few are kept for the runtime, listeners and log
/// output, and connections get the rest.
/// </summary>
internal sealed partial record DescriptorLimit(int Soft, int Hard, int StorageShare, int Reserve)
{
    /// <summary>Descriptors kept for the runtime, listeners, the lock file, stdout/stderr and the accept loop's spare.</summary>
    public const int DefaultReserve = 64;

    /// <summary>Connections the limit leaves room for.</summary>
    public int ConnectionShare => Math.Max(1, Soft - StorageShare - Reserve);

    /// <summary>
    /// Raises the soft limit to the hard limit (the first thing the broker does, before anything
    /// opens a file) and returns the limit in force. <paramref name="storageShare"/> is
    /// moldau.log.open.files.max when set; by default half the soft limit, at least 16.
    /// </summary>
    public static DescriptorLimit Raise(int? storageShare = null)
    {
        int soft = int.MaxValue, hard = int.MaxValue;
        if (OperatingSystem.IsLinux() && GetRLimit(RlimitNoFile, out var l) == 0)
        {
            if (l.Current < l.Max)
            {
                var raised = l with { Current = l.Max };
                if (SetRLimit(RlimitNoFile, in raised) == 0)
                {
                    l = raised;
                }
            }

            soft = (int)Math.Min(l.Current, int.MaxValue);
            hard = (int)Math.Min(l.Max, int.MaxValue);
        }

        return For(soft, hard, storageShare);
    }

    /// <summary>The shares for a soft limit of <paramref name="soft"/>.</summary>
    public static DescriptorLimit For(int soft, int hard, int? storageShare = null) =>
        new(soft, hard, storageShare ?? Math.Max(16, soft / 2), Math.Min(DefaultReserve, Math.Max(8, soft / 8)));

    /// <summary>
    /// These shares with storage's taken from moldau.log.open.files.max (<paramref name="configured"/>;
    /// -1 or 0 keeps the default, half the soft limit), at least 16 as the file cache keeps.
    /// </summary>
    public DescriptorLimit WithStorageShare(int configured) =>
        configured > 0 ? this with { StorageShare = Math.Max(16, configured) } : this;

    private const int RlimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private record struct RLimit(ulong Current, ulong Max);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
