using System.Runtime.CompilerServices;
using Moldau.Broker.Topics;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// What a Metadata answer for many topics can reuse, so that one for 100,000 partitions costs an
/// entry per topic instead of five objects per partition: the topics of an image sorted by name
/// (kept for the image most recently asked about: an image never changes), and per topic the
/// partition entries as they read while every partition is online (kept per <see cref="TopicInfo"/>,
/// which never changes either and outlives images that don't touch its topic; an entry goes when
/// its topic object does). A topic with a partition offline is described afresh on every request,
/// so offline and back-online show at once. The kept lists are shared by every response that
/// uses them: nothing may change them after they are made (responses are only encoded).
/// </summary>
internal sealed class DescribedTopics
{
    private readonly ConditionalWeakTable<TopicInfo, List<MetadataResponse.MetadataResponsePartition>> _online = [];
    private volatile SortedTopics? _sorted;
    private volatile Dictionary<int, List<int>> _nodeLists = [];

    /// <summary>The topics of <paramref name="image"/> in ordinal order of their names (not to be written to).</summary>
    public TopicInfo[] Sorted(MetadataImage image)
    {
        var sorted = _sorted;
        if (sorted is null || !ReferenceEquals(sorted.Image, image))
        {
            var topics = image.TopicsByName.Values.ToArray();
            Array.Sort(topics, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
            _sorted = sorted = new SortedTopics(image, topics);
        }

        return sorted.Topics;
    }

    /// <summary>
    /// The partition entries of <paramref name="topic"/>: the kept ones while none of its partitions
    /// is offline, else (or the first time) those <paramref name="describe"/> makes, kept when all
    /// of them are online.
    /// </summary>
    public List<MetadataResponse.MetadataResponsePartition> Partitions(TopicInfo topic, Func<TopicInfo, List<MetadataResponse.MetadataResponsePartition>> describe)
    {
        if (AnyOffline(topic))
        {
            return describe(topic);
        }

        if (_online.TryGetValue(topic, out var kept))
        {
            return kept;
        }

        var fresh = describe(topic);
        if (fresh.TrueForAll(p => p.ErrorCode == 0) && !AnyOffline(topic))
        {
            // Kept for long: the node lists, the same in every entry of a single node, are shared.
            foreach (var p in fresh)
            {
                p.ReplicaNodes = Shared(p.ReplicaNodes);
                p.IsrNodes = Shared(p.IsrNodes);
                p.OfflineReplicas = Shared(p.OfflineReplicas);
            }

            _online.AddOrUpdate(topic, fresh);
        }

        return fresh;
    }

    /// <summary>One list per content for the lists of none or one node, which every kept entry may share.</summary>
    private List<int> Shared(List<int> nodes)
    {
        if (nodes.Count > 1)
        {
            return nodes;
        }

        var key = nodes.Count == 0 ? int.MinValue : nodes[0];
        var shared = _nodeLists;
        if (shared.TryGetValue(key, out var kept))
        {
            return kept;
        }

        // Copy on write: readers on other threads see one dictionary or the next.
        _nodeLists = new Dictionary<int, List<int>>(shared) { [key] = nodes };
        return nodes;
    }

    private static bool AnyOffline(TopicInfo topic)
    {
        foreach (var p in topic.Partitions)
        {
            if (p.IsOffline)
            {
                return true;
            }
        }

        return false;
    }

    private sealed record SortedTopics(MetadataImage Image, TopicInfo[] Topics);
}
