namespace Moldau.Storage;

/// <summary>
/// The metadata log: where every change to topics, configs and producer-id blocks is recorded
/// before it takes effect, and what start-up replays (KRaft's <c>__cluster_metadata</c>).
/// </summary>
public interface IMetadataStore : IDisposable
{
    /// <summary>
    /// Reads the log from the start and hands each batch to <paramref name="apply"/>, in order.
    /// Replay stops at the first batch that can't be read, or that <paramref name="apply"/> refuses
    /// by returning a reason (a record that doesn't decode); that batch and everything after it
    /// are dropped from the log, so appends go on after the last batch applied. Call once, before
    /// the first <see cref="Append"/>.
    /// </summary>
    MetadataReplayResult Replay(Func<MetadataBatch, string?> apply);

    /// <summary>Appends <paramref name="records"/> as one batch and returns once it is durable (fsynced).</summary>
    void Append(IReadOnlyList<MetadataRecord> records);
}
