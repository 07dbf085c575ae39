namespace Moldau.Storage.Tests.Contract;

/// <summary>The contract against the local log: segments in a directory, fsynced before the high watermark moves.</summary>
public sealed class LocalPartitionLogContractTests : PartitionLogContract, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-contract-" + Guid.NewGuid().ToString("N")[..10]);

    private protected override IPartitionLog Open(long segmentBytes = 1L << 30) =>
        PartitionLog.Open(
            _dir,
            new PartitionLogOptions { SegmentBytes = segmentBytes, IndexIntervalBytes = 100, SyncBeforeAck = true, FlushLinger = TimeSpan.FromMinutes(10) },
            TimeProvider.System);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
