using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Coordinator.Tests;

/// <summary>The runtime over the local partition log: what it writes is on disk when answered, and a reopened log loads it.</summary>
public sealed class LocalLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"moldau-coordinator-{Guid.NewGuid():N}", OffsetsTopic.Name + "-0");

    public void Dispose()
    {
        var root = Path.GetDirectoryName(_dir)!;
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Offsets_committed_through_the_local_log_are_durable_when_answered_and_load_after_a_reopen(bool syncBeforeAck)
    {
        Directory.CreateDirectory(_dir);
        var options = new PartitionLogOptions { DirectIo = false, SyncBeforeAck = syncBeforeAck };
        var coordinatorOptions = new GroupCoordinatorOptions { OffsetsTopicPartitions = 1 };
        using (var log = PartitionLog.Open(_dir, options, TimeProvider.System))
        {
            await using var coordinator = new GroupCoordinator(coordinatorOptions, _ => log, (_, _) => true, TimeProvider.System, NullLogger.Instance);
            coordinator.Start([0]);
            var results = await coordinator.CommitAsync("g", -1, string.Empty, null, [("t", 0, 17, -1, null), ("t", 1, 18, -1, null)]);
            Assert.All(results, r => Assert.Equal(ErrorCode.None, r.Error));

            // Answered means fsynced, whatever the log's own flush settings.
            Assert.Equal(2, log.LogEndOffset);
            Assert.True(log.RecoveryPoint >= 2);
        }

        using var reopened = PartitionLog.Open(_dir, options, TimeProvider.System);
        await using var restarted = new GroupCoordinator(coordinatorOptions, _ => reopened, (_, _) => true, TimeProvider.System, NullLogger.Instance);
        restarted.Start([0]);
        var fetched = await restarted.FetchAsync("g", null);
        Assert.Equal([("t", 0, 17L), ("t", 1, 18L)], fetched.Select(o => (o.Topic, o.Partition, o.Offset!.Offset)));
    }
}
