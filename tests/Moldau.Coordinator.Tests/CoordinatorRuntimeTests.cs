using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Tests;

/// <summary>The runtime on its own, with a shard state that is not about groups (as the transaction coordinator's will be).</summary>
public sealed class CoordinatorRuntimeTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    /// <summary>A shard that keeps the last value written for each key.</summary>
    private sealed class KeyValueShard(CoordinatorShardContext<KeyValueShard> context) : ICoordinatorShard
    {
        public Dictionary<string, string> Values { get; } = [];

        public int Loaded { get; private set; }

        public CoordinatorShardContext<KeyValueShard> Context => context;

        public void Replay(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
        {
            var k = System.Text.Encoding.UTF8.GetString(key.Span);
            if (value is { } v)
            {
                Values[k] = System.Text.Encoding.UTF8.GetString(v.Span);
            }
            else
            {
                Values.Remove(k);
            }
        }

        public void OnLoaded() => Loaded++;

        public CoordinatorResult<string> Put(string key, string? value) => CoordinatorResult<string>.Of(
            [new RecordToWrite(System.Text.Encoding.UTF8.GetBytes(key), value is null ? null : System.Text.Encoding.UTF8.GetBytes(value), 0)],
            "ok",
            error => error.ToString());
    }

    private static CoordinatorRuntime<KeyValueShard> Runtime(MemoryCoordinatorLog[] logs, TimeProvider time) =>
        new("kv", logs.Length, p => logs[p], c => new KeyValueShard(c), time, NullLogger.Instance);

    [Fact]
    public async Task Records_are_applied_through_replay_only_once_durable_and_a_load_rebuilds_the_same_state()
    {
        var logs = new[] { new MemoryCoordinatorLog(), new MemoryCoordinatorLog() };
        var time = new FakeTimeProvider();
        await using var runtime = Runtime(logs, time);
        runtime.Load([0, 1]);
        var shard = await runtime.ReadAsync(0, s => s);
        logs[0].Hold();

        var put = runtime.WriteAsync(0, s => s.Put("a", "1"));
        var readBehind = runtime.ReadAsync(0, s => s.Values.GetValueOrDefault("a"));
        Assert.Equal(0, await runtime.ReadAsync(1, s => s.Values.Count).WaitAsync(Wait));
        await Task.Delay(50);
        Assert.False(put.IsCompleted);
        Assert.False(readBehind.IsCompleted);
        Assert.False(shard.Values.ContainsKey("a"));
        logs[0].Release();
        Assert.Equal("ok", await put.WaitAsync(Wait));
        Assert.Equal("1", await readBehind.WaitAsync(Wait));
        Assert.Equal("ok", await runtime.WriteAsync(0, s => s.Put("b", "2")));
        Assert.Equal("ok", await runtime.WriteAsync(0, s => s.Put("a", null)));

        await using var reloaded = Runtime(logs, time);
        reloaded.Load([0, 1]);
        Assert.Equal(new Dictionary<string, string> { ["b"] = "2" }, await reloaded.ReadAsync(0, s => s.Values));
        Assert.Equal(1, await reloaded.ReadAsync(1, s => s.Loaded));
    }

    [Fact]
    public async Task A_failed_append_leaves_the_state_as_it_was_and_answers_with_the_error()
    {
        var logs = new[] { new MemoryCoordinatorLog() };
        await using var runtime = Runtime(logs, new FakeTimeProvider());
        runtime.Load([0]);
        await runtime.WriteAsync(0, s => s.Put("a", "1"));
        logs[0].FailAppends = true;

        Assert.Equal(nameof(ErrorCode.NotCoordinator), await runtime.WriteAsync(0, s => s.Put("a", "2")));
        Assert.Equal("1", await runtime.ReadAsync(0, s => s.Values["a"]));
    }

    [Fact]
    public async Task A_timer_runs_its_operation_in_the_shards_turn_when_due_and_a_rescheduled_key_only_once()
    {
        var logs = new[] { new MemoryCoordinatorLog() };
        var time = new FakeTimeProvider();
        await using var runtime = Runtime(logs, time);
        runtime.Load([0]);
        var timer = await runtime.ReadAsync(0, s => s.Context.Timer);
        var fired = 0;
        CoordinatorResult<bool> Tick(KeyValueShard s)
        {
            fired++;
            var put = s.Put("tick", fired.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return CoordinatorResult<bool>.Of(put.Records, true, _ => false);
        }

        timer.Schedule("k", TimeSpan.FromSeconds(10), Tick);
        time.Advance(TimeSpan.FromSeconds(5));
        timer.Schedule("k", TimeSpan.FromSeconds(10), Tick);
        time.Advance(TimeSpan.FromSeconds(9));
        await runtime.IdleAsync(0);
        Assert.Equal(0, fired);

        time.Advance(TimeSpan.FromSeconds(1));
        await runtime.IdleAsync(0);
        Assert.Equal(1, fired);
        Assert.Equal("1", await runtime.ReadAsync(0, s => s.Values["tick"]));
        Assert.False(timer.IsScheduled("k"));

        time.Advance(TimeSpan.FromSeconds(60));
        await runtime.IdleAsync(0);
        Assert.Equal(1, fired);
    }
}
