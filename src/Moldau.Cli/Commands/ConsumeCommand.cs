using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Spectre.Console;

namespace Moldau.Cli.Commands;

/// <summary>
/// <c>moldau consume TOPIC</c>: reads partitions directly (no group), from the start by default as
/// rpk does; values one per line (kafka-console-consumer.sh) or, with --output json, one JSON
/// object per record per line.
/// </summary>
internal static class ConsumeCommand
{
    public static Command Build()
    {
        var topicArg = new Argument<string>("topic") { Description = "Topic to read" };
        var partitions = new Option<int[]>("--partition", "-p") { Description = "Partitions to read (repeatable; default all)", Arity = ArgumentArity.ZeroOrMore };
        var offset = new Option<string>("--offset") { Description = "Where to start: start|earliest, end|latest, an offset, or @time (ms or ISO-8601)", DefaultValueFactory = _ => "start" };
        var fromBeginning = new Option<bool>("--from-beginning") { Description = "Same as --offset start (kafka-console-consumer.sh)" };
        var count = new Option<long>("--num", "-n") { Description = "Stop after this many records" };
        count.Aliases.Add("--max-messages");
        var toEnd = new Option<bool>("--until-end", "-e") { Description = "Stop at the end offsets seen at start" };
        var encoding = new Option<string>("--encoding") { Description = "How keys and values are shown: text, base64 or hex", DefaultValueFactory = _ => "text" };
        encoding.AcceptOnlyFromAmong("text", "base64", "hex");
        var printKey = new Option<bool>("--print-key") { Description = "Text output: print the key before the value" };
        var printHeaders = new Option<bool>("--print-headers") { Description = "Text output: print the headers" };
        var printTimestamp = new Option<bool>("--print-timestamp") { Description = "Text output: print the timestamp" };
        var printOffset = new Option<bool>("--print-offset") { Description = "Text output: print partition and offset" };
        var c = new Command("consume", "Read records") { topicArg, partitions, offset, fromBeginning, count, toEnd, encoding, printKey, printHeaders, printTimestamp, printOffset };
        CliApp.Action(c, async ctx =>
        {
            var topicName = ctx.Get(topicArg)!;
            var topic = await ctx.Cluster.TopicAsync(topicName, ctx.Token);
            var ids = ctx.Get(partitions) is { Length: > 0 } chosen ? chosen : topic.Partitions.Select(p => p.PartitionIndex).Order().ToArray();
            foreach (var p in ids.Where(p => topic.Partitions.All(x => x.PartitionIndex != p)))
            {
                throw new CliException(ExitCodes.NotFound, $"partition {topicName}-{p}: UNKNOWN_TOPIC_OR_PARTITION");
            }

            var start = await ctx.Cluster.OffsetsAsync(topic, ids, -2, ctx.Token);
            var end = await ctx.Cluster.OffsetsAsync(topic, ids, -1, ctx.Token);
            var from = ctx.Get(fromBeginning) ? "start" : ctx.Get(offset)!;
            Dictionary<int, long> position = from switch
            {
                "start" or "earliest" or "beginning" => new(start),
                "end" or "latest" => new(end),
                _ when from.StartsWith('@') => await AtTimeAsync(ctx, topic, ids, GroupCommands.ParseTime(from[1..]), end),
                _ when long.TryParse(from, NumberStyles.Integer, CultureInfo.InvariantCulture, out var o) => ids.ToDictionary(p => p, p => Math.Clamp(o, start[p], end[p])),
                _ => throw new CliException(ExitCodes.Usage, $"--offset '{from}': use start, end, an offset or @time"),
            };
            var limit = ctx.Get(count);
            var untilEnd = ctx.Get(toEnd);
            var active = ids.Where(p => !untilEnd || position[p] < end[p]).ToHashSet();
            var enc = ctx.Get(encoding)!;
            var json = ctx.Output.Json;
            var printed = 0L;
            var leaders = topic.Partitions.ToDictionary(p => p.PartitionIndex, p => p.LeaderId);
            var output = new StringBuilder();
            var progress = limit > 10_000 && Console.IsOutputRedirected && ctx.Output.Interactive;
            Spectre.Console.ProgressTask? bar = null;
            var progressDone = new TaskCompletionSource();
            Task? progressTask = null;
            if (progress)
            {
                var ready = new TaskCompletionSource();
                progressTask = ctx.Output.Error.Progress().AutoClear(true).StartAsync(async p =>
                {
                    bar = p.AddTask("consuming", maxValue: limit);
                    ready.SetResult();
                    await progressDone.Task;
                });
                await ready.Task;
            }

            try
            {
                while (active.Count > 0 && (limit <= 0 || printed < limit))
                {
                    foreach (var byLeader in active.GroupBy(p => leaders[p]).ToList())
                    {
                        var conn = await ctx.Cluster.NodeAsync(byLeader.Key, ctx.Token);
                        var v = conn.Version(ApiKey.Fetch, 12, 4);
                        var request = new FetchRequest
                        {
                            ReplicaId = -1,
                            MaxWaitMs = 500,
                            MinBytes = 1,
                            MaxBytes = 50 << 20,
                            SessionEpoch = -1,
                            Topics =
                            [
                                new FetchRequest.FetchTopic
                                {
                                    Topic = topicName,
                                    TopicId = topic.TopicId,
                                    Partitions = byLeader.Select(p => new FetchRequest.FetchPartition { Partition = p, FetchOffset = position[p], PartitionMaxBytes = 1 << 20 }).ToList(),
                                },
                            ],
                        };
                        var r = await conn.SendAsync<FetchResponse>(ApiKey.Fetch, v, request, ctx.Token);
                        CliException.ThrowIf(r.ErrorCode, $"fetch from {conn.Endpoint}");
                        foreach (var pd in r.Responses.SelectMany(t => t.Partitions))
                        {
                            if (pd.ErrorCode == (short)ErrorCode.OffsetOutOfRange)
                            {
                                position[pd.PartitionIndex] = (await ctx.Cluster.OffsetsAsync(topic, [pd.PartitionIndex], -2, ctx.Token))[pd.PartitionIndex];
                                continue;
                            }

                            CliException.ThrowIf(pd.ErrorCode, $"fetch {topicName}-{pd.PartitionIndex}");
                            var bytes = pd.Records ?? ReadOnlyMemory<byte>.Empty;
                            while (bytes.Length >= RecordBatch.LogOverhead + 5 && (limit <= 0 || printed < limit))
                            {
                                var size = RecordBatch.DeclaredSize(bytes.Span);
                                if (size > bytes.Length || size < RecordBatch.HeaderSize)
                                {
                                    break;
                                }

                                var batch = new RecordBatch(bytes[..(int)size]);
                                bytes = bytes[(int)size..];
                                if (batch.Magic != 2)
                                {
                                    throw new CliException(ExitCodes.Failed, $"{topicName}-{pd.PartitionIndex}: message format v{batch.Magic} is not supported by the CLI");
                                }

                                if (!batch.IsControl)
                                {
                                    foreach (var record in batch.GetRecords())
                                    {
                                        var recordOffset = batch.BaseOffset + record.OffsetDelta;
                                        if (recordOffset < position[pd.PartitionIndex] || (untilEnd && recordOffset >= end[pd.PartitionIndex]))
                                        {
                                            continue;
                                        }

                                        var time = batch.IsLogAppendTime ? batch.MaxTimestamp : batch.BaseTimestamp + record.TimestampDelta;
                                        Write(output, json, enc, topicName, pd.PartitionIndex, recordOffset, time, batch.IsLogAppendTime, record, ctx);
                                        position[pd.PartitionIndex] = recordOffset + 1;
                                        bar?.Increment(1);
                                        if (limit > 0 && ++printed >= limit)
                                        {
                                            break;
                                        }
                                    }
                                }

                                if (limit <= 0 || printed < limit)
                                {
                                    position[pd.PartitionIndex] = Math.Max(position[pd.PartitionIndex], batch.LastOffset + 1);
                                }
                            }

                            if (untilEnd && position[pd.PartitionIndex] >= end[pd.PartitionIndex])
                            {
                                active.Remove(pd.PartitionIndex);
                            }
                        }

                        Console.Out.Write(output);
                        output.Clear();
                        await Console.Out.FlushAsync(ctx.Token);
                    }
                }
            }
            finally
            {
                progressDone.TrySetResult();
                if (progressTask is not null)
                {
                    await progressTask;
                }
            }

            return ExitCodes.Ok;
        });
        return c;
    }

    private static async Task<Dictionary<int, long>> AtTimeAsync(CommandContext ctx, MetadataResponse.MetadataResponseTopic topic, int[] ids, long time, Dictionary<int, long> end)
    {
        var at = await ctx.Cluster.OffsetsAsync(topic, ids, time, ctx.Token);
        return ids.ToDictionary(p => p, p => at[p] < 0 ? end[p] : at[p]);
    }

    private static void Write(StringBuilder sb, bool json, string enc, string topic, int partition, long offset, long time, bool logAppendTime, Record record, CommandContext ctx)
    {
        if (json)
        {
            sb.Append(new JsonObject
            {
                ["topic"] = topic,
                ["partition"] = partition,
                ["offset"] = offset,
                ["timestamp"] = time,
                ["timestampType"] = logAppendTime ? "LogAppendTime" : "CreateTime",
                ["key"] = Show(record.Key, enc),
                ["value"] = Show(record.Value, enc),
                ["headers"] = new JsonArray(record.Headers.Select(h => (JsonNode)new JsonObject { ["key"] = h.Key, ["value"] = Show(h.Value, enc) }).ToArray()),
            }.ToJsonString()).Append('\n');
            return;
        }

        var get = ctx.Parse;
        if (get.GetValue<bool>("--print-offset"))
        {
            sb.Append(CultureInfo.InvariantCulture, $"{partition}:{offset}\t");
        }

        if (get.GetValue<bool>("--print-timestamp"))
        {
            sb.Append(CultureInfo.InvariantCulture, $"{(logAppendTime ? "LogAppendTime" : "CreateTime")}:{time}\t");
        }

        if (get.GetValue<bool>("--print-headers"))
        {
            sb.Append(record.Headers.Count == 0 ? "NO_HEADERS" : string.Join(",", record.Headers.Select(h => $"{h.Key}:{Show(h.Value, enc) ?? "null"}"))).Append('\t');
        }

        if (get.GetValue<bool>("--print-key"))
        {
            sb.Append(Show(record.Key, enc) ?? "null").Append('\t');
        }

        sb.Append(Show(record.Value, enc) ?? "null").Append('\n');
    }

    private static string? Show(ReadOnlyMemory<byte>? bytes, string enc) => bytes is not { } b ? null : enc switch
    {
        "base64" => Convert.ToBase64String(b.Span),
        "hex" => Convert.ToHexStringLower(b.Span),
        _ => Encoding.UTF8.GetString(b.Span),
    };
}
