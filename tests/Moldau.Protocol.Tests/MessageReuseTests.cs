using System.Collections;
using System.Reflection;
using Moldau.Protocol.Messages;

namespace Moldau.Protocol.Tests;

/// <summary>
/// Messages read into again, or reset and refilled (what the broker does with its Produce and
/// Fetch requests and responses), hold exactly what a new instance would: nothing of the
/// previous content survives, whatever the versions.
/// </summary>
public sealed class MessageReuseTests
{
    public static TheoryData<string, short> AllMessageVersions() => GeneratedRoundTripTests.AllMessageVersions();

    [Theory]
    [MemberData(nameof(AllMessageVersions))]
    public void ReadingIntoAUsedInstanceGivesExactlyTheSecondContent(string typeName, short version)
    {
        var type = typeof(ApiVersionsRequest).Assembly.GetType(typeName)!;
        var high = (short)type.GetField("HighestVersion")!.GetRawConstantValue()!;
        var low = (short)type.GetField("LowestVersion")!.GetRawConstantValue()!;
        for (var seed = 0; seed < 4; seed++)
        {
            var random = new Random((typeName.GetHashCode(StringComparison.Ordinal) * 17) + (version * 5) + seed);
            // First content at another version (fields the second version lacks are set), with
            // unknown tagged fields every other time; then the second content.
            var firstVersion = seed % 2 == 0 ? high : low;
            var first = ((IKafkaMessage)RandomValues.Fill(type, random, 0, flexible: seed % 2 == 0)).ToBytes(firstVersion);
            var second = ((IKafkaMessage)RandomValues.Fill(type, random, 0, flexible: seed % 2 == 1)).ToBytes(version);

            var reused = (IKafkaMessage)Activator.CreateInstance(type)!;
            Read(reused, first, firstVersion);
            Read(reused, second, version);
            var fresh = (IKafkaMessage)Activator.CreateInstance(type)!;
            Read(fresh, second, version);

            AssertSameContent(fresh, reused, type.Name);
            Assert.Equal(second, reused.ToBytes(version));
        }
    }

    [Theory]
    [MemberData(nameof(AllMessageVersions))]
    public void ResetGivesWhatANewInstanceHolds(string typeName, short version)
    {
        var type = typeof(ApiVersionsRequest).Assembly.GetType(typeName)!;
        var random = new Random(typeName.GetHashCode(StringComparison.Ordinal) + version);
        var message = (IKafkaMessage)Activator.CreateInstance(type)!;
        Read(message, ((IKafkaMessage)RandomValues.Fill(type, random, 0, flexible: true)).ToBytes(version), version);
        type.GetMethod("Reset")!.Invoke(message, null);
        AssertSameContent(Activator.CreateInstance(type)!, message, type.Name);
    }

    [Fact]
    public void ListsAreEmptiedInPlaceAndTheirElementsHandedOutAgainInOrder()
    {
        var response = new ProduceResponse();
        var topic = response.AddResponsesItem();
        topic.Name = "a";
        var p0 = topic.AddPartitionResponsesItem();
        var p1 = topic.AddPartitionResponsesItem();
        p0.ErrorCode = 3;
        p0.BaseOffset = 42;
        p1.RecordErrors.Add(new() { BatchIndex = 1, BatchIndexErrorMessage = "x" });
        p1.CurrentLeader.LeaderEpoch = 7;
        var list = response.Responses;

        response.Reset();

        Assert.Same(list, response.Responses);
        Assert.Empty(response.Responses);
        Assert.Same(topic, response.AddResponsesItem());
        Assert.Equal(string.Empty, topic.Name);
        Assert.Empty(topic.PartitionResponses);
        var again0 = topic.AddPartitionResponsesItem();
        var again1 = topic.AddPartitionResponsesItem();
        Assert.Same(p0, again0);
        Assert.Same(p1, again1);
        AssertSameContent(new ProduceResponse.PartitionProduceResponse(), again0, "p0");
        AssertSameContent(new ProduceResponse.PartitionProduceResponse(), again1, "p1");
        Assert.NotSame(p1, topic.AddPartitionResponsesItem());
    }

    [Fact]
    public void ANullListKeepsItsInstanceForTheNextNonNullOne()
    {
        var partition = new FetchResponse.PartitionData();
        var list = partition.AbortedTransactions!;
        partition.AddAbortedTransactionsItem().ProducerId = 5;
        partition.SetAbortedTransactionsToNull();
        Assert.Null(partition.AbortedTransactions);
        partition.Reset();
        Assert.Same(list, partition.AbortedTransactions);
        Assert.Empty(list);
        Assert.Equal(0, partition.AddAbortedTransactionsItem().ProducerId);
    }

    [Fact]
    public void AStringEqualToTheOneHeldIsKeptAndAnotherIsDecoded()
    {
        var request = new ProduceRequest { TopicData = [new() { Name = "orders", PartitionData = [new() { Index = 0, Records = new byte[] { 1, 2 } }] }] };
        var bytes = request.ToBytes(9);
        var reused = new ProduceRequest();
        Read(reused, bytes, 9);
        var name = reused.TopicData[0].Name;
        Read(reused, bytes, 9);
        Assert.Same(name, reused.TopicData[0].Name);

        request.TopicData[0].Name = "orderz";
        Read(reused, request.ToBytes(9), 9);
        Assert.Equal("orderz", reused.TopicData[0].Name);

        request.TopicData[0].Name = "commandé";
        Read(reused, request.ToBytes(9), 9);
        Assert.Equal("commandé", reused.TopicData[0].Name);
        var accented = reused.TopicData[0].Name;
        Read(reused, request.ToBytes(9), 9);
        Assert.Equal(accented, reused.TopicData[0].Name);
    }

    [Fact]
    public void ReadingTheSameShapeAgainAllocatesNothing()
    {
        var produce = new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 30000,
            TopicData = [new() { Name = "bench", PartitionData = [new() { Index = 0, Records = new byte[100] }, new() { Index = 1, Records = new byte[100] }] }],
        }.ToBytes(9);
        var fetch = new FetchRequest
        {
            MaxWaitMs = 500,
            MinBytes = 1,
            SessionEpoch = -1,
            Topics = [new() { Topic = "bench", Partitions = [new() { Partition = 0, FetchOffset = 10, PartitionMaxBytes = 1 << 20 }] }],
        }.ToBytes(12);
        var p = new ProduceRequest();
        var f = new FetchRequest();
        for (var i = 0; i < 3; i++)
        {
            Read(p, produce, 9);
            Read(f, fetch, 12);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            Read(p, produce, 9);
            Read(f, fetch, 12);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void Read(IKafkaMessage message, byte[] bytes, short version)
    {
        var reader = new KafkaReader(bytes);
        message.Read(ref reader, version);
        if (reader.Remaining != 0)
        {
            Assert.Fail($"{reader.Remaining} bytes left over"); // not Assert.Equal: it allocates, and allocations are measured
        }
    }

    /// <summary>Every public property, deeply: lists element by element, bytes by content.</summary>
    internal static void AssertSameContent(object? expected, object? actual, string path)
    {
        if (expected is null || actual is null)
        {
            Assert.True(expected is null && actual is null, $"{path}: {expected ?? "null"} vs {actual ?? "null"}");
            return;
        }

        switch (expected)
        {
            case string or bool or sbyte or short or ushort or int or long or double or Uuid:
                Assert.True(expected.Equals(actual), $"{path}: {expected} vs {actual}");
                return;
            case byte[] bytes:
                Assert.True(bytes.AsSpan().SequenceEqual((byte[])actual), $"{path}: bytes differ");
                return;
            case ReadOnlyMemory<byte> memory:
                Assert.True(memory.Span.SequenceEqual(((ReadOnlyMemory<byte>)actual).Span), $"{path}: records differ");
                return;
            case TaggedField tagged:
                var other = (TaggedField)actual;
                Assert.True(tagged.Tag == other.Tag && tagged.Data.AsSpan().SequenceEqual(other.Data), $"{path}: tagged field differs");
                return;
            case IList list:
                var actualList = (IList)actual;
                Assert.True(list.Count == actualList.Count, $"{path}: {list.Count} vs {actualList.Count} elements");
                for (var i = 0; i < list.Count; i++)
                {
                    AssertSameContent(list[i], actualList[i], $"{path}[{i}]");
                }

                return;
        }

        Assert.Equal(expected.GetType(), actual.GetType());
        foreach (var p in expected.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            AssertSameContent(p.GetValue(expected), p.GetValue(actual), $"{path}.{p.Name}");
        }
    }
}
