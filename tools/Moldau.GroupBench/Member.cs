using System.Diagnostics;
using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.GroupBench;

/// <summary>The generation a member reached, with when and whether its assignment was the leader's.</summary>
/// <param name="Generation">The generation of its SyncGroup.</param>
/// <param name="JoinedAt">When its JoinGroup answered (Stopwatch ticks).</param>
/// <param name="SyncedAt">When its SyncGroup answered (Stopwatch ticks).</param>
/// <param name="GroupSize">For the leader: how many members its JoinGroup listed; otherwise -1.</param>
/// <param name="AssignmentOk">Whether the assignment is the one the leader gives this member.</param>
internal sealed record Synced(int Generation, long JoinedAt, long SyncedAt, int GroupSize, bool AssignmentOk);

/// <summary>
/// One classic-protocol member, as a consumer behaves: JoinGroup (MEMBER_ID_REQUIRED, then again
/// with the id), SyncGroup (the leader assigns each member its own id as the assignment), then a
/// Heartbeat every interval; REBALANCE_IN_PROGRESS makes it rejoin.
/// </summary>
internal sealed class Member(GroupConnection connection, BenchOptions options, Action<Member, Synced> onSynced)
{
    private const short JoinVersion = 5;
    private const short SyncVersion = 3;
    private const short HeartbeatVersion = 3;
    private const short LeaveVersion = 3;

    public string MemberId { get; private set; } = string.Empty;

    public int Generation { get; private set; } = -1;

    private readonly CancellationTokenSource _sleep = new();
    private volatile bool _stopping;

    /// <summary>
    /// Joins and syncs, then heartbeats until <see cref="StopAsync"/>; rejoins whenever the group
    /// rebalances. <paramref name="stop"/> aborts everything (the bench's time limit).
    /// </summary>
    public async Task RunAsync(CancellationToken stop)
    {
        await JoinAndSyncAsync(stop);
        while (!_stopping)
        {
            try
            {
                await Task.Delay(options.HeartbeatMs, _sleep.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var beat = await connection.SendAsync<HeartbeatResponse>(ApiKey.Heartbeat, HeartbeatVersion, new HeartbeatRequest { GroupId = options.Group, GenerationId = Generation, MemberId = MemberId }, stop);
            switch ((ErrorCode)beat.ErrorCode)
            {
                case ErrorCode.None:
                    break;
                case ErrorCode.RebalanceInProgress:
                    await JoinAndSyncAsync(stop);
                    break;
                default:
                    throw new InvalidOperationException($"member {MemberId}: Heartbeat answered {(ErrorCode)beat.ErrorCode}");
            }
        }
    }

    /// <summary>Ends the heartbeat loop once the request in flight (if any) is answered, so the connection is free again.</summary>
    public async Task StopAsync(Task run)
    {
        _stopping = true;
        await _sleep.CancelAsync();
        await run;
    }

    /// <summary>Leaves the group (LeaveGroup v3, by member id).</summary>
    public async Task<ErrorCode> LeaveAsync()
    {
        var left = await connection.SendAsync<LeaveGroupResponse>(ApiKey.LeaveGroup, LeaveVersion, new LeaveGroupRequest
        {
            GroupId = options.Group,
            Members = [new LeaveGroupRequest.MemberIdentity { MemberId = MemberId }],
        });
        return (ErrorCode)left.ErrorCode;
    }

    private async Task JoinAndSyncAsync(CancellationToken stop)
    {
        while (true)
        {
            var joined = await connection.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, JoinVersion, new JoinGroupRequest
            {
                GroupId = options.Group,
                SessionTimeoutMs = options.SessionMs,
                RebalanceTimeoutMs = options.RebalanceMs,
                MemberId = MemberId,
                ProtocolType = "consumer",
                Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = Subscription }],
            }, stop);
            var joinedAt = Stopwatch.GetTimestamp();
            switch ((ErrorCode)joined.ErrorCode)
            {
                case ErrorCode.MemberIdRequired:
                    MemberId = joined.MemberId;
                    continue;
                case ErrorCode.None:
                    break;
                case ErrorCode.CoordinatorLoadInProgress or ErrorCode.CoordinatorNotAvailable or ErrorCode.NotCoordinator:
                    await Task.Delay(100, stop);
                    continue;
                default:
                    throw new InvalidOperationException($"member {MemberId}: JoinGroup answered {(ErrorCode)joined.ErrorCode}");
            }

            MemberId = joined.MemberId;
            Generation = joined.GenerationId;
            var leader = joined.Leader == MemberId;
            var assignments = leader
                ? joined.Members.Select(m => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m.MemberId, Assignment = Encoding.UTF8.GetBytes(m.MemberId) }).ToList()
                : [];
            var synced = await connection.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, SyncVersion, new SyncGroupRequest
            {
                GroupId = options.Group,
                GenerationId = Generation,
                MemberId = MemberId,
                Assignments = assignments,
            }, stop);
            if ((ErrorCode)synced.ErrorCode == ErrorCode.RebalanceInProgress)
            {
                continue;
            }

            if (synced.ErrorCode != 0)
            {
                throw new InvalidOperationException($"member {MemberId}: SyncGroup answered {(ErrorCode)synced.ErrorCode}");
            }

            onSynced(this, new Synced(Generation, joinedAt, Stopwatch.GetTimestamp(), leader ? joined.Members.Count : -1, synced.Assignment.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(MemberId))));
            return;
        }
    }

    // A consumer subscription (version 0) to one topic, as the Java client encodes it.
    private static readonly byte[] Subscription = [0, 0, 0, 0, 0, 1, 0, 5, (byte)'b', (byte)'e', (byte)'n', (byte)'c', (byte)'h', 0xFF, 0xFF, 0xFF, 0xFF];
}
