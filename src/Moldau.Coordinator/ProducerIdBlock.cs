namespace Moldau.Coordinator;

/// <summary>A block of producer ids recorded in the metadata log as handed out (Kafka's <c>ProducerIdsBlock</c>).</summary>
/// <param name="FirstProducerId">The block's first id.</param>
/// <param name="Size">How many ids it holds.</param>
public readonly record struct ProducerIdBlock(long FirstProducerId, int Size)
{
    /// <summary>The first id after the block: where the next one starts.</summary>
    public long NextBlockFirstId => FirstProducerId + Size;
}
