using System.Runtime.InteropServices;
using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>
/// moldau.log.direct.io: by default the active segment is written in whole blocks (its file ends
/// on a block boundary while the broker runs); false writes through the page cache, byte for byte.
/// Either way a clean stop leaves exactly the batches, and a restart reads them back.
/// </summary>
public sealed class DirectIoSettingTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheSettingDecidesHowTheActiveSegmentIsWritten(bool direct)
    {
        var properties = new Dictionary<string, string> { ["moldau.log.direct.io"] = direct ? "true" : "false" };
        await using var broker = await BrokerProcess.StartAsync(properties: properties);
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("one record of a few bytes"), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = "setting", NumPartitions = 1, ReplicationFactor = 1 }] });
            Assert.Equal(0, created.Topics.Single().ErrorCode);
            var r = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "setting", PartitionData = [new() { Index = 0, Records = batch.ToArray() }] }] });
            Assert.Equal(0, r.Responses.Single().PartitionResponses.Single().ErrorCode);
        }

        var file = Path.Combine(broker.DataDir, "setting-0", "00000000000000000000.log");
        var length = new FileInfo(file).Length;
        Assert.Equal(batch.Length, (await SegmentFile.ReadBatchesAsync(file)).Length);
        if (direct && DirectIoSupported(broker.DataDir))
        {
            Assert.Equal(4096, length);
        }
        else
        {
            Assert.Equal(batch.Length, length);
        }

        Assert.Equal(0, await broker.StopAsync());
        Assert.Equal(batch.Length, new FileInfo(file).Length);

        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var fetch = await again.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "setting", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        Assert.Equal(batch.Length, fetch.Responses.Single().Partitions.Single().Records!.Value.Length);
    }

    // Whether the data directory's file system takes O_DIRECT (as the broker finds out per segment).
    private static bool DirectIoSupported(string directory)
    {
        var flag = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;
        var probe = Path.Combine(directory, "probe-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(probe, []);
        try
        {
            var fd = Open(probe, 0x2 | flag, 0);
            if (fd < 0)
            {
                return false;
            }

            _ = Close(fd);
            return true;
        }
        finally
        {
            File.Delete(probe);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
}
