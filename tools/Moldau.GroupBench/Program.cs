using System.Collections.Concurrent;
using System.Diagnostics;
using Moldau.GroupBench;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

// moldau-groupbench: drives N classic-protocol members against a running broker and measures
// (1) how long after the initial rebalance delay all N have joined, and (2) how long after one
// member leaves the others are in the next generation with their assignments.

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine($"moldau-groupbench: {e.Message}");
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

try
{
    return await RunAsync(options);
}
catch (Exception e)
{
    Console.Error.WriteLine($"moldau-groupbench: {e.GetBaseException().Message}");
    return 1;
}

static async Task<int> RunAsync(BenchOptions options)
{
    using var timeout = new CancellationTokenSource(options.TimeoutMs);
    var connections = await Task.WhenAll(Enumerable.Range(0, options.Members).Select(_ => GroupConnection.ConnectAsync(options.Host, options.Port)));
    await FindCoordinatorAsync(connections[0], options.Group, timeout.Token);

    // The latest generation each member synced, and the generations seen (for the leader's member count).
    var synced = new ConcurrentDictionary<Member, Synced>();
    var changed = new SemaphoreSlim(0);
    var members = connections.Select(c => new Member(c, options, (m, s) =>
    {
        synced[m] = s;
        changed.Release();
    })).ToArray();

    var start = Stopwatch.GetTimestamp();
    var runs = members.Select(m => Task.Run(() => m.RunAsync(timeout.Token))).ToArray();
    var first = await WaitForAsync(synced, changed, members, _ => true, runs, timeout.Token);
    var joinedMs = Stopwatch.GetElapsedTime(start, first.Values.Max(s => s.JoinedAt)).TotalMilliseconds;
    var stableMs = Stopwatch.GetElapsedTime(start, first.Values.Max(s => s.SyncedAt)).TotalMilliseconds;
    var ok = Check("join", first, options.Members);
    var generation = first.Values.First().Generation;

    // One member that is not the leader leaves; the others find out from their next heartbeat.
    var leaver = members.First(m => first[m].GroupSize < 0);
    var staying = members.Where(m => m != leaver).ToArray();
    var leaveStart = Stopwatch.GetTimestamp();
    await leaver.StopAsync(runs[Array.IndexOf(members, leaver)]);
    var left = await leaver.LeaveAsync();
    var second = await WaitForAsync(synced, changed, staying, s => s.Generation > generation, runs, timeout.Token);
    var rebalanceMs = Stopwatch.GetElapsedTime(leaveStart, second.Values.Max(s => s.SyncedAt)).TotalMilliseconds;
    ok &= left == ErrorCode.None;
    ok &= Check("rebalance", second, options.Members - 1);

    await Task.WhenAll(staying.Select(m => m.StopAsync(runs[Array.IndexOf(members, m)])));
    foreach (var m in staying)
    {
        await m.LeaveAsync();
    }

    foreach (var c in connections)
    {
        await c.DisposeAsync();
    }

    Console.WriteLine($"members={options.Members} heartbeat_ms={options.HeartbeatMs} initial_delay_ms={options.InitialDelayMs}");
    Console.WriteLine($"join: all {options.Members} joined generation {generation} {joinedMs - options.InitialDelayMs:F0} ms after the initial delay ({joinedMs:F0} ms in all), all synced after {stableMs:F0} ms");
    Console.WriteLine($"leave: {options.Members - 1} members in generation {second.Values.First().Generation} with their assignments {rebalanceMs:F0} ms after one left");
    Console.WriteLine(ok ? "result: ok" : "result: FAILED");
    return ok ? 0 : 1;
}

static async Task FindCoordinatorAsync(GroupConnection connection, string group, CancellationToken cancellationToken)
{
    while (true)
    {
        var found = await connection.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 2, new FindCoordinatorRequest { Key = group }, cancellationToken);
        if (found.ErrorCode == 0)
        {
            return;
        }

        await Task.Delay(100, cancellationToken);
    }
}

// Waits until every one of members has a synced generation that passes accept; any member's loop failing ends the wait.
static async Task<Dictionary<Member, Synced>> WaitForAsync(ConcurrentDictionary<Member, Synced> synced, SemaphoreSlim changed, Member[] members, Func<Synced, bool> accept, Task[] runs, CancellationToken cancellationToken)
{
    while (true)
    {
        if (runs.FirstOrDefault(r => r.IsFaulted) is { } failed)
        {
            await failed;
        }

        if (members.All(m => synced.TryGetValue(m, out var s) && accept(s)))
        {
            return members.ToDictionary(m => m, m => synced[m]);
        }

        await changed.WaitAsync(TimeSpan.FromMilliseconds(200), cancellationToken);
    }
}

// Every member in the same generation, the leader saw all of them, every assignment is the leader's.
static bool Check(string phase, Dictionary<Member, Synced> result, int expected)
{
    var ok = true;
    var generations = result.Values.Select(s => s.Generation).Distinct().ToList();
    if (generations.Count != 1)
    {
        Console.Error.WriteLine($"{phase}: members ended in {generations.Count} generations: {string.Join(", ", generations)}");
        ok = false;
    }

    var leaders = result.Values.Where(s => s.GroupSize >= 0).ToList();
    if (leaders.Count != 1 || leaders[0].GroupSize != expected)
    {
        Console.Error.WriteLine($"{phase}: {leaders.Count} leaders; the leader saw {leaders.FirstOrDefault()?.GroupSize} members, expected {expected}");
        ok = false;
    }

    var wrong = result.Values.Count(s => !s.AssignmentOk);
    if (wrong > 0)
    {
        Console.Error.WriteLine($"{phase}: {wrong} members got an assignment that is not theirs");
        ok = false;
    }

    return ok;
}
