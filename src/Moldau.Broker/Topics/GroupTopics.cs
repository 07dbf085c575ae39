using Moldau.Coordinator;

namespace Moldau.Broker.Topics;

/// <summary>The broker's topics as consumer-protocol groups see them (read from the current metadata image, no locks).</summary>
internal sealed class GroupTopics(TopicRegistry topics) : IGroupTopics
{
    /// <inheritdoc/>
    public ConsumerTopic? Find(string name) => topics.Find(name) is { } t ? Of(t) : null;

    /// <inheritdoc/>
    public IEnumerable<ConsumerTopic> All => topics.Topics.Select(Of);

    private static ConsumerTopic Of(TopicInfo t) => new(t.Name, t.Id, t.Partitions.Length, t.IsInternal);
}
