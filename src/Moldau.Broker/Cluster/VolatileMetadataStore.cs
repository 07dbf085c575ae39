using Moldau.Storage;

namespace Moldau.Broker.Cluster;

/// <summary>
/// The metadata store of cluster mode: PostgreSQL is the truth, so the image starts empty and the
/// records that mirror the catalog are kept nowhere. What only the metadata log would have kept
/// (topic configs, ACLs, SCRAM credentials, quotas) lasts as long as the broker process (docs/cluster.md).
/// </summary>
internal sealed class VolatileMetadataStore : IMetadataStore
{
    /// <inheritdoc/>
    public MetadataReplayResult Replay(Func<MetadataBatch, string?> apply) => new(0, null);

    /// <inheritdoc/>
    public void Append(IReadOnlyList<MetadataRecord> records)
    {
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
