using Moldau.Protocol;

namespace Moldau.Broker.Cluster;

/// <summary>
/// Where committed offsets of consumer groups live in cluster mode (PostgreSQL), beside the local
/// group coordinator, so they survive the coordinator broker (docs/cluster.md, "Consumer groups").
/// </summary>
internal interface IGroupOffsetStore
{
    /// <summary>
    /// Stores offsets the local coordinator accepted, under this broker's claim of the group (made
    /// on first use, again after the membership changed). <see cref="ErrorCode.NotCoordinator"/>
    /// when another broker coordinates the group or has claimed it since (nothing stored),
    /// <see cref="ErrorCode.CoordinatorNotAvailable"/> when PostgreSQL could not be reached or this
    /// broker's lease lapsed.
    /// </summary>
    Task<ErrorCode> CommitAsync(string groupId, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets);

    /// <summary>
    /// DeleteGroups: removes the group's stored offsets under this broker's claim (the errors as
    /// <see cref="CommitAsync"/>).
    /// </summary>
    Task<ErrorCode> DeleteGroupAsync(string groupId);

    /// <summary>The group's stored committed offsets by topic and partition (empty when none); null when PostgreSQL could not be reached.</summary>
    Task<IReadOnlyDictionary<(string Topic, int Partition), (long Offset, int LeaderEpoch, string? Metadata, long CommitTimestamp)>?> LoadAsync(string groupId);
}
