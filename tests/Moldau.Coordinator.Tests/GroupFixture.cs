using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Moldau.Coordinator.Tests;

/// <summary>A group coordinator over in-memory partitions and a fake clock.</summary>
internal sealed class GroupFixture : IAsyncDisposable
{
    public const int Partitions = 4;
    public const int SessionTimeoutMs = 10_000;
    public const int RebalanceTimeoutMs = 30_000;
    public const int InitialDelayMs = 3_000;

    public GroupFixture(FakeTimeProvider? time = null, MemoryCoordinatorLog?[]? logs = null, GroupCoordinatorOptions? options = null)
    {
        Time = time ?? new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(50));
        Logs = logs ?? Enumerable.Range(0, Partitions).Select(p => (MemoryCoordinatorLog?)new MemoryCoordinatorLog($"__consumer_offsets-{p}")).ToArray();
        Options = options ?? new GroupCoordinatorOptions { OffsetsTopicPartitions = Partitions, InitialRebalanceDelayMs = InitialDelayMs };
        Coordinator = new GroupCoordinator(Options, p => Logs[p], (_, _) => true, Time, NullLogger.Instance);
        Coordinator.Start(Enumerable.Range(0, Partitions).Where(p => Logs[p] is not null));
    }

    public FakeTimeProvider Time { get; }

    public MemoryCoordinatorLog?[] Logs { get; }

    public GroupCoordinatorOptions Options { get; }

    public GroupCoordinator Coordinator { get; }

    public MemoryCoordinatorLog LogOf(string group) => Logs[OffsetsTopic.PartitionFor(group, Partitions)]!;

    /// <summary>A new coordinator over the same partitions: what a restart loads.</summary>
    public GroupFixture Restart() => new(Time, Logs, Options);

    /// <summary>Group ids on <paramref name="count"/> different shards.</summary>
    public static string[] GroupsOnDifferentShards(int count) =>
        Enumerable.Range(0, 1000).Select(i => $"group-{i}").DistinctBy(g => OffsetsTopic.PartitionFor(g, Partitions)).Take(count).ToArray();

    /// <summary>A consumer subscription (version 0, one topic) as the Java client encodes it.</summary>
    public static byte[] Subscription(string topic)
    {
        var name = System.Text.Encoding.UTF8.GetBytes(topic);
        return [0, 0, 0, 0, 0, 1, (byte)(name.Length >> 8), (byte)name.Length, .. name, 0xFF, 0xFF, 0xFF, 0xFF];
    }

    public static JoinRequest Join(string group, string memberId = "", string? instance = null, bool requireKnownMemberId = false, int sessionTimeoutMs = SessionTimeoutMs) =>
        new(group, memberId, instance, "client", "/127.0.0.1", sessionTimeoutMs, RebalanceTimeoutMs, "consumer", [("range", Subscription("t"))], requireKnownMemberId);

    /// <summary>Waits until the shard of <paramref name="group"/> has run what was queued (timer operations included).</summary>
    public Task IdleAsync(string group) => Coordinator.Runtime.IdleAsync(OffsetsTopic.PartitionFor(group, Partitions));

    /// <summary>Advances the clock and lets every shard run what came due.</summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        Time.Advance(by);
        for (var p = 0; p < Partitions; p++)
        {
            await Coordinator.Runtime.IdleAsync(p);
        }
    }

    /// <summary>One member joins an empty group and becomes stable (the initial delay passes).</summary>
    public async Task<JoinResult> JoinStableAsync(string group)
    {
        var join = Coordinator.JoinAsync(Join(group));
        await AdvanceAsync(TimeSpan.FromMilliseconds(InitialDelayMs));
        var joined = await join.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, joined.Error);
        var sync = await Coordinator.SyncAsync(group, joined.GenerationId, joined.MemberId, null, null, null, [(joined.MemberId, [1, 2, 3])]).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, sync.Error);
        return joined;
    }

    public ValueTask DisposeAsync() => Coordinator.DisposeAsync();
}
