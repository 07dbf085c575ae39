using Moldau.Protocol;

namespace Moldau.Coordinator;

/// <summary>
/// The server-side assignors of consumer-protocol groups (<c>group.consumer.assignors</c>):
/// <c>uniform</c> spreads every subscribed partition evenly over the members that subscribe to
/// its topic and keeps partitions where the previous target had them; <c>range</c> gives each
/// member of a topic's subscribers a contiguous range of its partitions, members in id order.
/// </summary>
internal static class ConsumerAssignors
{
    /// <summary>The assignors Moldau has.</summary>
    public static readonly IReadOnlyList<string> Known = ["uniform", "range"];

    /// <summary>A target assignment for <paramref name="subscriptions"/> (member id to subscribed topic names).</summary>
    public static Dictionary<string, TopicPartitionSet> Assign(
        string assignor,
        IReadOnlyDictionary<string, HashSet<string>> subscriptions,
        IReadOnlyDictionary<string, (Uuid Id, int Partitions)> topics,
        IReadOnlyDictionary<string, TopicPartitionSet> previous) =>
        assignor == "range" ? Range(subscriptions, topics) : Uniform(subscriptions, topics, previous);

    private static Dictionary<string, TopicPartitionSet> Range(IReadOnlyDictionary<string, HashSet<string>> subscriptions, IReadOnlyDictionary<string, (Uuid Id, int Partitions)> topics)
    {
        var result = subscriptions.Keys.ToDictionary(m => m, _ => new TopicPartitionSet(), StringComparer.Ordinal);
        foreach (var (name, (id, count)) in topics.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var members = subscriptions.Where(s => s.Value.Contains(name)).Select(s => s.Key).Order(StringComparer.Ordinal).ToList();
            if (members.Count == 0)
            {
                continue;
            }

            var each = count / members.Count;
            var extra = count % members.Count;
            var next = 0;
            for (var i = 0; i < members.Count; i++)
            {
                var n = each + (i < extra ? 1 : 0);
                for (var p = next; p < next + n; p++)
                {
                    result[members[i]].Add(id, p);
                }

                next += n;
            }
        }

        return result;
    }

    private static Dictionary<string, TopicPartitionSet> Uniform(IReadOnlyDictionary<string, HashSet<string>> subscriptions, IReadOnlyDictionary<string, (Uuid Id, int Partitions)> topics, IReadOnlyDictionary<string, TopicPartitionSet> previous)
    {
        var result = subscriptions.Keys.ToDictionary(m => m, _ => new TopicPartitionSet(), StringComparer.Ordinal);
        var counts = subscriptions.Keys.ToDictionary(m => m, _ => 0, StringComparer.Ordinal);
        var partitions = topics.OrderBy(t => t.Key, StringComparer.Ordinal)
            .SelectMany(t => Enumerable.Range(0, t.Value.Partitions).Select(p => (Name: t.Key, t.Value.Id, Partition: p)))
            .Where(tp => subscriptions.Values.Any(s => s.Contains(tp.Name)))
            .ToList();
        if (result.Count == 0)
        {
            return result;
        }

        // Each member's fair share: floor(n/m), and the first n%m members to fill up get one more.
        var min = partitions.Count / result.Count;
        var extras = partitions.Count % result.Count;
        var previousOwner = new Dictionary<(Uuid, int), string>();
        foreach (var (member, set) in previous)
        {
            foreach (var tp in set.All)
            {
                previousOwner[tp] = member;
            }
        }

        var unassigned = new List<(string Name, Uuid Id, int Partition)>();
        foreach (var tp in partitions)
        {
            // Sticky: a partition stays with its previous owner while that member subscribes to it and is within its share.
            if (previousOwner.TryGetValue((tp.Id, tp.Partition), out var owner) && result.ContainsKey(owner) && subscriptions[owner].Contains(tp.Name)
                && (counts[owner] < min || (counts[owner] == min && extras > 0)))
            {
                if (counts[owner] == min)
                {
                    extras--;
                }

                result[owner].Add(tp.Id, tp.Partition);
                counts[owner]++;
            }
            else
            {
                unassigned.Add(tp);
            }
        }

        foreach (var tp in unassigned)
        {
            var target = counts.Where(c => subscriptions[c.Key].Contains(tp.Name)).OrderBy(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal).Select(c => c.Key).FirstOrDefault();
            if (target is not null)
            {
                result[target].Add(tp.Id, tp.Partition);
                counts[target]++;
            }
        }

        return result;
    }
}
