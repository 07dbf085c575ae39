namespace Moldau.Storage.Tests.Contract;

/// <summary>The contract against <see cref="InMemoryPartitionLog"/>, the test-only second backend.</summary>
public sealed class InMemoryPartitionLogContractTests : PartitionLogContract
{
    private protected override IPartitionLog Open(long segmentBytes = 1L << 30) => new InMemoryPartitionLog(TimeSpan.FromMinutes(10));
}
