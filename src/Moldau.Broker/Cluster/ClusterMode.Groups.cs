using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Moldau.Cluster.Catalog;
using Moldau.Protocol;

namespace Moldau.Broker.Cluster;

// Committed offsets of consumer groups in PostgreSQL, fenced by the coordinator epoch.
internal sealed partial class ClusterMode : IGroupOffsetStore
{
    // This broker's claim of each group it coordinates, with the membership version it was made at.
    private readonly ConcurrentDictionary<string, (GroupCoordinatorClaim Claim, int Version)> _claims = new(StringComparer.Ordinal);

    // Groups another broker claimed from this one, with the membership version of this broker's view
    // then: no new claim until the view moves on (a paused broker that resumes must not take the
    // group back before it has seen the membership that made it lose the group).
    private readonly ConcurrentDictionary<string, int> _fenced = new(StringComparer.Ordinal);

    private readonly SemaphoreSlim _claiming = new(1, 1);

    private TimeProvider _time = TimeProvider.System;

    /// <inheritdoc/>
    public Task<ErrorCode> CommitAsync(string groupId, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();

        // One row per partition (the last commit of a partition in the request wins, as applying them in order would).
        var rows = offsets
            .GroupBy(o => (o.Topic, o.Partition))
            .Select(g => g.Last())
            .Select(o => new GroupOffset(o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, now))
            .ToList();
        return UnderClaimAsync(groupId, claim => Catalog.CommitOffsetsAsync(claim, rows), "storing offsets");
    }

    /// <inheritdoc/>
    public Task<ErrorCode> DeleteGroupAsync(string groupId) =>
        UnderClaimAsync(groupId, claim => Catalog.DeleteGroupAsync(claim), "deleting");

    // Runs a write of the group's state under this broker's claim, claiming first when needed.
    private async Task<ErrorCode> UnderClaimAsync(string groupId, Func<GroupCoordinatorClaim, Task> write, string what)
    {
        var view = _view;
        if (CoordinatorFor(groupId) != _registration.BrokerId
            || (_fenced.TryGetValue(groupId, out var fencedAt) && fencedAt == view.Epoch))
        {
            return ErrorCode.NotCoordinator;
        }

        try
        {
            var held = await ClaimAsync(groupId, view.Epoch).ConfigureAwait(false);
            try
            {
                await write(held.Claim).ConfigureAwait(false);
            }
            catch (GroupCoordinatorFencedException) when (_claims.TryGetValue(groupId, out var newer) && newer.Claim.CoordinatorEpoch > held.Claim.CoordinatorEpoch)
            {
                // This broker's own newer claim (a request that saw a newer membership): write under it.
                await write(newer.Claim).ConfigureAwait(false);
            }

            return ErrorCode.None;
        }
        catch (GroupCoordinatorFencedException)
        {
            _claims.TryRemove(groupId, out _);
            _fenced[groupId] = view.Epoch;
            _log.LogWarning("cluster: group {Group} was claimed by another broker; answering NOT_COORDINATOR", groupId);
            return ErrorCode.NotCoordinator;
        }
        catch (BrokerFencedException)
        {
            return ErrorCode.CoordinatorNotAvailable; // the background loop registers again
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or TimeoutException)
        {
            _log.LogWarning("cluster: {What} group {Group} in the catalog failed: {Error}", what, groupId, e.Message);
            return ErrorCode.CoordinatorNotAvailable;
        }
    }

    // This broker's claim of the group for membership version `version`: one claim per version,
    // made under a lock so concurrent commits of a group don't claim twice and fence each other.
    private async Task<(GroupCoordinatorClaim Claim, int Version)> ClaimAsync(string groupId, int version)
    {
        if (_claims.TryGetValue(groupId, out var held) && held.Version == version)
        {
            return held;
        }

        await _claiming.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_claims.TryGetValue(groupId, out held) && held.Version == version)
            {
                return held;
            }

            held = (await Catalog.ClaimGroupAsync(_lease, groupId).ConfigureAwait(false), version);
            _claims[groupId] = held;
            _fenced.TryRemove(groupId, out _);
            return held;
        }
        finally
        {
            _claiming.Release();
        }
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyDictionary<(string Topic, int Partition), (long Offset, int LeaderEpoch, string? Metadata, long CommitTimestamp)>?> LoadAsync(string groupId)
    {
        try
        {
            var stored = await Catalog.LoadGroupAsync(groupId).ConfigureAwait(false);
            return (stored?.Offsets ?? []).ToDictionary(o => (o.Topic, o.Partition), o => (o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTimestamp));
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or TimeoutException)
        {
            _log.LogWarning("cluster: reading offsets of group {Group} failed: {Error}", groupId, e.Message);
            return null;
        }
    }
}
