using System.Runtime.InteropServices;

namespace Moldau.Storage;

/// <summary>
/// fsync of a directory, so that files created, renamed or removed in it survive a power loss.
/// .NET has no API for it: on Linux it is open(O_RDONLY | O_DIRECTORY) and fsync; elsewhere a no-op.
/// </summary>
public static class DirectorySync
{
    private const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY on Linux

    /// <summary>Syncs <paramref name="directory"/>; throws <see cref="IOException"/> when the fsync fails.</summary>
    public static void Sync(string directory) => Sync(directory, files: null);

    /// <summary>As <see cref="Sync(string)"/>, through a runtime's file layer (which a power-loss test observes).</summary>
    internal static void Sync(string directory, FileLayer? files)
    {
        files?.BeforeWrite(directory);
        if (!OperatingSystem.IsLinux())
        {
            files?.DirectorySynced(directory);
            return;
        }

        var fd = Libc.Open(directory, ReadOnlyDirectory, 0);
        if (fd < 0)
        {
            throw new IOException($"open of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Libc.Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
            }

            files?.DirectorySynced(directory);
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }
}
