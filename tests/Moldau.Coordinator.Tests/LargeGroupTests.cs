using Moldau.Protocol;

namespace Moldau.Coordinator.Tests;

/// <summary>A group of 1,000 members through a whole rebalance and one member leaving, on the fake clock.</summary>
public sealed class LargeGroupTests
{
    private const int Size = 1_000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_thousand_members_join_in_one_generation_all_get_their_assignment_and_one_leaving_rebalances_the_rest()
    {
        await using var f = new GroupFixture();

        // As the Java client does (v4+): the first join gets MEMBER_ID_REQUIRED, the second carries the id.
        var required = await Task.WhenAll(Enumerable.Range(0, Size).Select(_ => f.Coordinator.JoinAsync(GroupFixture.Join("big", requireKnownMemberId: true))));
        Assert.All(required, r => Assert.Equal((short)ErrorCode.MemberIdRequired, r.Error));
        var joins = required.Select(r => f.Coordinator.JoinAsync(GroupFixture.Join("big", r.MemberId, requireKnownMemberId: true))).ToArray();
        await f.IdleAsync("big");
        Assert.DoesNotContain(joins, j => j.IsCompleted);

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.InitialDelayMs));
        var joined = await Task.WhenAll(joins).WaitAsync(Wait);
        Assert.All(joined, j => Assert.Equal((0, 1), (j.Error, j.GenerationId)));
        var leader = Assert.Single(joined, j => j.MemberId == j.LeaderId);
        Assert.Equal(required.Select(r => r.MemberId).Order(), leader.Members.Select(m => m.MemberId).Order());

        var assignments = await SyncAllAsync(f, joined);
        Assert.Equal(Size, assignments.Count);
        Assert.All(assignments, a => Assert.Equal(Assignment(a.Key), a.Value));
        Assert.Equal(GroupState.Stable, await f.Coordinator.StateAsync("big"));

        // One member leaves; the others learn it from their heartbeat and rejoin.
        var leaving = joined[Size / 2];
        Assert.Equal(ErrorCode.None, (await f.Coordinator.LeaveAsync("big", [(leaving.MemberId, null)])).Error);
        var staying = joined.Where(j => j != leaving).ToArray();
        var beats = await Task.WhenAll(staying.Select(j => f.Coordinator.HeartbeatAsync("big", j.GenerationId, j.MemberId, null)));
        Assert.All(beats, b => Assert.Equal(ErrorCode.RebalanceInProgress, b));

        var rejoined = await Task.WhenAll(staying.Select(j => f.Coordinator.JoinAsync(GroupFixture.Join("big", j.MemberId, requireKnownMemberId: true)))).WaitAsync(Wait);
        Assert.All(rejoined, j => Assert.Equal((0, 2), (j.Error, j.GenerationId)));
        var next = Assert.Single(rejoined, j => j.MemberId == j.LeaderId);
        Assert.Equal(Size - 1, next.Members.Count);
        Assert.DoesNotContain(next.Members, m => m.MemberId == leaving.MemberId);

        var reassigned = await SyncAllAsync(f, rejoined);
        Assert.Equal(Size - 1, reassigned.Count);
        Assert.Equal(GroupState.Stable, await f.Coordinator.StateAsync("big"));
        Assert.Equal(ErrorCode.UnknownMemberId, await f.Coordinator.HeartbeatAsync("big", 2, leaving.MemberId, null));
    }

    private static byte[] Assignment(string memberId) => System.Text.Encoding.UTF8.GetBytes(memberId);

    /// <summary>Every member sends SyncGroup, the leader with one assignment per member; returns what each got.</summary>
    private static async Task<Dictionary<string, byte[]>> SyncAllAsync(GroupFixture f, JoinResult[] joined)
    {
        var leader = joined.Single(j => j.MemberId == j.LeaderId);
        var given = leader.Members.Select(m => (m.MemberId, Assignment(m.MemberId))).ToList();
        var syncs = joined.Select(j => (j.MemberId, Sync: f.Coordinator.SyncAsync("big", j.GenerationId, j.MemberId, null, null, null, j == leader ? given : []))).ToList();
        var results = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (memberId, sync) in syncs)
        {
            var result = await sync.WaitAsync(Wait);
            Assert.Equal(0, result.Error);
            results[memberId] = result.Assignment;
        }

        return results;
    }
}
