using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Cli.Commands;

/// <summary>
/// <c>moldau produce TOPIC</c>: one record from --value, or one per line of stdin (text, key and
/// value split by --key-separator, or JSON lines), as kafka-console-producer.sh and rpk produce.
/// Keyed records go where Kafka's default partitioner puts them (murmur2 of the key).
/// </summary>
internal static class ProduceCommand
{
    private sealed record Pending(int Partition, RecordToWrite Record);

    public static Command Build()
    {
        var topicArg = new Argument<string>("topic") { Description = "Topic to write to" };
        var key = new Option<string?>("--key", "-k") { Description = "Key of every record" };
        var value = new Option<string?>("--value", "-v") { Description = "One record with this value (without it: one record per stdin line)" };
        var headers = new Option<string[]>("--header", "-H") { Description = "Header key=value (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        var timestamp = new Option<string?>("--timestamp") { Description = "Record timestamp: ms since the epoch or ISO-8601 (default: now)" };
        var partition = new Option<int>("--partition", "-p") { Description = "Partition (default: by key, else spread)", DefaultValueFactory = _ => -1 };
        var separator = new Option<string?>("--key-separator") { Description = "Split each stdin line into key and value at this separator" };
        var input = new Option<string>("--input-format", "-f") { Description = "text (a line is a value) or json (a line is {\"key\",\"value\",\"headers\":{..},\"timestamp\",\"partition\"})", DefaultValueFactory = _ => "text" };
        input.AcceptOnlyFromAmong("text", "json");
        var acks = new Option<short>("--acks") { Description = "-1 (all), 1 or 0", DefaultValueFactory = _ => -1 };
        var batch = new Option<int>("--batch-size") { Description = "Records per produce request", DefaultValueFactory = _ => 1000 };
        var c = new Command("produce", "Write records") { topicArg, key, value, headers, timestamp, partition, separator, input, acks, batch };
        CliApp.Action(c, async ctx =>
        {
            var topicName = ctx.Get(topicArg)!;
            var topic = await ctx.Cluster.TopicAsync(topicName, ctx.Token);
            var count = topic.Partitions.Count;
            var fixedHeaders = ConfigCommands.Pairs(ctx.Get(headers)).Select(kv => (kv.Key, (byte[]?)Encoding.UTF8.GetBytes(kv.Value))).ToList();
            var fixedTimestamp = ctx.Get(timestamp) is { } ts ? GroupCommands.ParseTime(ts) : (long?)null;
            var sticky = Random.Shared.Next(Math.Max(1, count));
            var results = new JsonArray();
            var table = Output.Table("TOPIC", "PARTITION", "OFFSET", "RECORDS");
            var pending = new List<Pending>();
            var produced = 0L;

            int PartitionFor(byte[]? k, int explicitPartition)
            {
                var p = explicitPartition >= 0 ? explicitPartition : ctx.Get(partition);
                if (p >= 0)
                {
                    return p < count ? p : throw new CliException(ExitCodes.NotFound, $"partition {topicName}-{p}: UNKNOWN_TOPIC_OR_PARTITION ({count} partitions)");
                }

                return k is null ? sticky : (int)((uint)(Murmur2(k) & 0x7fffffff) % (uint)count);
            }

            void Add(string? k, string? v, IEnumerable<(string, byte[]?)> extraHeaders, long? time, int explicitPartition)
            {
                var keyBytes = k is null ? null : Encoding.UTF8.GetBytes(k);
                var record = new RecordToWrite(keyBytes, v is null ? null : Encoding.UTF8.GetBytes(v), time ?? fixedTimestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), [.. fixedHeaders, .. extraHeaders]);
                pending.Add(new Pending(PartitionFor(keyBytes, explicitPartition), record));
            }

            async Task FlushAsync()
            {
                if (pending.Count == 0)
                {
                    return;
                }

                foreach (var (p, baseOffset, n) in await SendAsync(ctx, topic, pending, ctx.Get(acks)))
                {
                    results.Add((JsonNode)new JsonObject { ["topic"] = topicName, ["partition"] = p, ["offset"] = baseOffset, ["records"] = n });
                    Output.Row(table, topicName, p, baseOffset, n);
                }

                produced += pending.Count;
                pending.Clear();
                sticky = (sticky + 1) % Math.Max(1, count);
            }

            if (ctx.Get(value) is { } single)
            {
                Add(ctx.Get(key), single, [], null, -1);
            }
            else
            {
                var json = ctx.Get(input) == "json";
                var sep = ctx.Get(separator);
                while (await Console.In.ReadLineAsync(ctx.Token) is { } line)
                {
                    if (json)
                    {
                        if (line.Trim().Length == 0)
                        {
                            continue;
                        }

                        AddJson(line, Add);
                    }
                    else if (sep is { Length: > 0 } && line.IndexOf(sep, StringComparison.Ordinal) is var at and >= 0)
                    {
                        Add(line[..at], line[(at + sep.Length)..], [], null, -1);
                    }
                    else
                    {
                        Add(ctx.Get(key), line, [], null, -1);
                    }

                    if (pending.Count >= Math.Max(1, ctx.Get(batch)))
                    {
                        await FlushAsync();
                    }
                }
            }

            await FlushAsync();
            ctx.Output.Emit(results, console => console.Write(table));
            return ExitCodes.Ok;
        });
        return c;
    }

    private static void AddJson(string line, Action<string?, string?, IEnumerable<(string, byte[]?)>, long?, int> add)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(line);
        }
        catch (JsonException e)
        {
            throw new CliException(ExitCodes.Usage, $"not a JSON record: {e.Message}");
        }

        if (node is not JsonObject o)
        {
            throw new CliException(ExitCodes.Usage, "a JSON record is an object: {\"key\":..,\"value\":..,\"headers\":{..}}");
        }

        static string? Text(JsonNode? n) => n is null ? null : n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : n.ToJsonString();
        var headers = new List<(string, byte[]?)>();
        switch (o["headers"])
        {
            case JsonObject h:
                headers.AddRange(h.Select(kv => (kv.Key, Text(kv.Value) is { } s ? Encoding.UTF8.GetBytes(s) : null)));
                break;
            case JsonArray a:
                headers.AddRange(a.OfType<JsonObject>().Select(x => (Text(x["key"]) ?? string.Empty, Text(x["value"]) is { } s ? Encoding.UTF8.GetBytes(s) : null)));
                break;
        }

        long? time = o["timestamp"] is { } t ? (t.GetValueKind() == JsonValueKind.Number ? t.GetValue<long>() : GroupCommands.ParseTime(t.GetValue<string>())) : null;
        var partition = o["partition"] is { } p ? p.GetValue<int>() : -1;
        add(Text(o["key"]), Text(o["value"]), headers, time, partition);
    }

    /// <summary>One batch per partition, one request per leader; returns (partition, base offset, count).</summary>
    private static async Task<List<(int Partition, long BaseOffset, int Count)>> SendAsync(CommandContext ctx, MetadataResponse.MetadataResponseTopic topic, List<Pending> records, short acks)
    {
        var result = new List<(int, long, int)>();
        var leaders = topic.Partitions.ToDictionary(p => p.PartitionIndex, p => p.LeaderId);
        foreach (var byLeader in records.GroupBy(r => leaders[r.Partition]))
        {
            if (byLeader.Key < 0)
            {
                throw new CliException(ExitCodes.Failed, $"{topic.Name}: partition {byLeader.First().Partition} has no leader");
            }

            var conn = await ctx.Cluster.NodeAsync(byLeader.Key, ctx.Token);
            var data = new ProduceRequest.TopicProduceData { Name = topic.Name! };
            var counts = new Dictionary<int, int>();
            foreach (var byPartition in byLeader.GroupBy(r => r.Partition))
            {
                var list = byPartition.Select(r => r.Record).ToList();
                counts[byPartition.Key] = list.Count;
                data.PartitionData.Add(new ProduceRequest.PartitionProduceData { Index = byPartition.Key, Records = RecordBatchBuilder.Build(list) });
            }

            var request = new ProduceRequest { Acks = acks, TimeoutMs = (int)ctx.Cluster.Settings.RequestTimeout.TotalMilliseconds, TopicData = [data] };
            if (acks == 0)
            {
                throw new CliException(ExitCodes.Usage, "--acks 0 is not supported by the CLI (no answer to report)");
            }

            var r = await conn.SendAsync<ProduceResponse>(ApiKey.Produce, conn.Version(ApiKey.Produce, 9, 3), request, ctx.Token);
            foreach (var p in r.Responses.SelectMany(t => t.PartitionResponses))
            {
                CliException.ThrowIf(p.ErrorCode, $"produce to {topic.Name}-{p.Index}", p.ErrorMessage);
                result.Add((p.Index, p.BaseOffset, counts[p.Index]));
            }
        }

        return result;
    }

    /// <summary>Kafka's murmur2 (Utils.murmur2), which its default partitioner applies to keys.</summary>
    internal static int Murmur2(ReadOnlySpan<byte> data)
    {
        const uint m = 0x5bd1e995;
        var length = data.Length;
        var h = 0x9747b28c ^ (uint)length;
        var i = 0;
        for (; i + 4 <= length; i += 4)
        {
            var k = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
            k *= m;
            k ^= k >> 24;
            k *= m;
            h *= m;
            h ^= k;
        }

        switch (length % 4)
        {
            case 3:
                h ^= (uint)data[i + 2] << 16;
                goto case 2;
            case 2:
                h ^= (uint)data[i + 1] << 8;
                goto case 1;
            case 1:
                h ^= data[i];
                h *= m;
                break;
        }

        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return (int)h;
    }
}
