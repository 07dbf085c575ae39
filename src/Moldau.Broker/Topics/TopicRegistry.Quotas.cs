using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Topics;

/// <content>Client quotas: changed only through ClientQuotaRecords in the metadata log.</content>
internal sealed partial class TopicRegistry
{
    /// <summary>
    /// Records client quota changes (AlterClientQuotas, validated): the records go to the metadata
    /// log as one batch (synced), then the next image holds them.
    /// </summary>
    public void AlterClientQuotas(IReadOnlyList<ClientQuotaRecord> records)
    {
        if (records.Count == 0)
        {
            return;
        }

        lock (_changeLock)
        {
            CommitAndPublish(records);
        }
    }
}
