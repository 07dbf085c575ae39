using Moldau.Protocol.Records;
using Moldau.Storage.Cleaning;
using Moldau.Tests.Shared;
using Xunit;

namespace Moldau.Storage.Tests;

/// <summary>
/// Batches stored before validation existed (or by a bug) that cannot be read, or that inflate
/// past the limit: the cleaner keeps them as they are instead of throwing, and holds no more than
/// the limit while finding that out.
/// </summary>
public sealed class UnreadableBatchTests
{
    public static TheoryData<string> Unreadable() =>
        ["zstd bomb: 1 GiB", "garbage Zstd payload", "garbage Snappy payload", "lz4 frame with a dictionary id", "key length past the record", "codec 7"];

    [Theory]
    [MemberData(nameof(Unreadable))]
    public void TheCleanerKeepsABatchItCannotRead(string name)
    {
        var batch = new RecordBatch(HostileBatches.All().Single(c => c.Name == name).Batch);
        var (kept, rewritten, dropped, horizon) = LogCleaner.Filter(batch, new OffsetMap(), new Dictionary<long, long>(), now: 1_000, deleteRetentionMs: 1_000);
        Assert.True(kept);
        Assert.Null(rewritten);
        Assert.Equal(0, dropped);
        Assert.Equal(long.MaxValue, horizon);
    }
}
