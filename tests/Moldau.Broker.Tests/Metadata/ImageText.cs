using System.Globalization;
using System.Text;
using Moldau.Broker.Topics;

namespace Moldau.Broker.Tests.Metadata;

/// <summary>An image written out in a fixed order, so two images compare as strings (and a failure shows the difference).</summary>
internal static class ImageText
{
    public static string Of(MetadataImage image)
    {
        var text = new StringBuilder();
        foreach (var topic in image.TopicsByName.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"topic {topic.Name} {topic.Id}\n");
            foreach (var (key, value) in topic.Configs.OrderBy(c => c.Key, StringComparer.Ordinal))
            {
                text.Append(CultureInfo.InvariantCulture, $"  config {key}={value}\n");
            }

            foreach (var p in topic.Partitions)
            {
                text.Append(CultureInfo.InvariantCulture, $"  partition {p.Index} leader {p.Leader} epoch {p.LeaderEpoch} partition-epoch {p.PartitionEpoch} isr [{string.Join(",", p.Isr)}] replicas [{string.Join(",", p.Replicas)}]\n");
            }
        }

        foreach (var (key, value) in image.BrokerConfigs.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"broker config {key}={value}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"next producer id {image.NextProducerId}\n");
        return text.ToString();
    }
}
