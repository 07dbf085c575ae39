using System.Diagnostics;
using System.Globalization;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// Direct I/O reserves blocks ahead of the data (fallocate, keeping the size): as much again as
/// the segment holds, at least 64 KiB and at most 8 MiB. A partition that got a few records keeps
/// a small reserve (100,000 of them must not take 800 GB), a busy one reserves megabytes at a time.
/// </summary>
public sealed class DirectPreallocationTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-prealloc-" + Guid.NewGuid().ToString("N")[..10]);

    public DirectPreallocationTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static PartitionLogOptions Options() =>
        new() { SegmentBytes = 64 * 1024 * 1024, SyncBeforeAck = false, DirectIo = true, FileDeleteDelay = TimeSpan.Zero };

    // Bytes the file system allocated to the file (stat's blocks of 512 B), not its size.
    private static long Allocated(string file)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%b", file]) { RedirectStandardOutput = true })!;
        var blocks = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return long.Parse(blocks, CultureInfo.InvariantCulture) * 512;
    }

    private static byte[] Batch(int bytes) =>
        RecordBatchBuilder.Build([new RecordToWrite(null, new byte[bytes], 1000)]);

    [Fact]
    public void ASmallPartitionReservesLittleAndABusyOneReservesMore()
    {
        using var runtime = new StorageRuntime(openFilesMax: 64);
        using var small = PartitionLog.Open(Path.Combine(_root, "small-0"), Options(), TimeProvider.System, runtime);
        small.Append(Batch(100), 0);
        var smallFile = Directory.GetFiles(small.Directory, "*.log").Single();
        if (!small.UsesDirectIo)
        {
            return; // a file system without O_DIRECT (tmpfs): nothing is reserved
        }

        Assert.InRange(Allocated(smallFile), 1, 256 * 1024);

        using var busy = PartitionLog.Open(Path.Combine(_root, "busy-0"), Options(), TimeProvider.System, runtime);
        for (var i = 0; i < 40; i++)
        {
            busy.Append(Batch(256 * 1024), 0);
        }

        var busyFile = Directory.GetFiles(busy.Directory, "*.log").Single();
        var written = new FileInfo(busyFile).Length;
        Assert.True(Allocated(busyFile) >= written + (4L * 1024 * 1024), $"{Allocated(busyFile)} allocated for {written} bytes");
    }
}
