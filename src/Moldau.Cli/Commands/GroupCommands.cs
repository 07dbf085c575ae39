using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Moldau.Cli.Client;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Spectre.Console;

namespace Moldau.Cli.Commands;

/// <summary><c>moldau group list|describe|reset|delete</c> (kafka-consumer-groups.sh, rpk group).</summary>
internal static class GroupCommands
{
    public static Command Build()
    {
        var group = new Command("group", "List, describe (with lag), reset offsets of and delete consumer groups");
        group.Aliases.Add("groups");
        group.Subcommands.Add(List());
        group.Subcommands.Add(Describe());
        group.Subcommands.Add(Reset());
        group.Subcommands.Add(Delete());
        return group;
    }

    private static Command List()
    {
        var c = new Command("list", "List groups on every broker");
        c.Aliases.Add("ls");
        CliApp.Action(c, async ctx =>
        {
            var groups = new SortedDictionary<string, ListGroupsResponse.ListedGroup>(StringComparer.Ordinal);
            foreach (var id in await ctx.Cluster.BrokerIdsAsync(ctx.Token))
            {
                var conn = await ctx.Cluster.NodeAsync(id, ctx.Token);
                var r = await conn.SendAsync<ListGroupsResponse>(ApiKey.ListGroups, conn.Version(ApiKey.ListGroups, 5), new ListGroupsRequest(), ctx.Token);
                CliException.ThrowIf(r.ErrorCode, $"ListGroups at broker {id}");
                foreach (var g in r.Groups)
                {
                    groups[g.GroupId] = g;
                }
            }

            var json = new JsonArray(groups.Values.Select(g => (JsonNode)new JsonObject
            {
                ["group"] = g.GroupId,
                ["state"] = g.GroupState,
                ["protocolType"] = g.ProtocolType,
                ["type"] = g.GroupType,
            }).ToArray());
            ctx.Output.Emit(json, console =>
            {
                var t = Output.Table("GROUP", "STATE", "PROTOCOL-TYPE");
                foreach (var g in groups.Values)
                {
                    Output.Row(t, g.GroupId, g.GroupState, g.ProtocolType);
                }

                console.Write(t);
            });
            return ExitCodes.Ok;
        });
        return c;
    }

    /// <summary>A partition's committed offset, end offset and lag, and who consumes it.</summary>
    internal sealed record PartitionLag(string Topic, int Partition, long Committed, long End, string? MemberId, string? ClientId, string? Host)
    {
        public long? Lag => Committed < 0 || End < 0 ? null : Math.Max(0, End - Committed);
    }

    private static Command Describe()
    {
        var names = new Argument<string[]>("group") { Arity = ArgumentArity.OneOrMore, Description = "Group ids" };
        var c = new Command("describe", "Show a group's state, members and lag per partition") { names };
        CliApp.Action(c, async ctx =>
        {
            var json = new JsonArray();
            var renders = new List<Action<IAnsiConsole>>();
            foreach (var name in ctx.Get(names)!)
            {
                var (group, lags) = await DescribeAsync(ctx, name);
                var totalLag = lags.Sum(l => l.Lag ?? 0);
                json.Add((JsonNode)new JsonObject
                {
                    ["group"] = name,
                    ["state"] = group.GroupState,
                    ["protocolType"] = group.ProtocolType,
                    ["protocol"] = group.ProtocolData,
                    ["members"] = new JsonArray(group.Members.Select(m => (JsonNode)new JsonObject
                    {
                        ["memberId"] = m.MemberId,
                        ["instanceId"] = m.GroupInstanceId,
                        ["clientId"] = m.ClientId,
                        ["host"] = m.ClientHost,
                    }).ToArray()),
                    ["totalLag"] = totalLag,
                    ["partitions"] = new JsonArray(lags.Select(l => (JsonNode)new JsonObject
                    {
                        ["topic"] = l.Topic,
                        ["partition"] = l.Partition,
                        ["currentOffset"] = l.Committed < 0 ? null : l.Committed,
                        ["logEndOffset"] = l.End,
                        ["lag"] = l.Lag,
                        ["memberId"] = l.MemberId,
                        ["clientId"] = l.ClientId,
                        ["host"] = l.Host,
                    }).ToArray()),
                });
                renders.Add(console =>
                {
                    console.MarkupLine($"[bold]{Markup.Escape(name)}[/]  state {Markup.Escape(group.GroupState)}  members {group.Members.Count}  protocol {Markup.Escape(group.ProtocolData)}  total lag {totalLag}");
                    var t = Output.Table("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST");
                    t.Columns[5].NoWrap = false;
                    foreach (var l in lags)
                    {
                        Output.Row(t, l.Topic, l.Partition, l.Committed < 0 ? "-" : l.Committed, l.End, l.Lag?.ToString(CultureInfo.InvariantCulture) ?? "-", l.MemberId, l.ClientId, l.Host);
                    }

                    console.Write(t);
                });
            }

            ctx.Output.Emit(json, console => renders.ForEach(r => r(console)));
            return ExitCodes.Ok;
        });
        return c;
    }

    /// <summary>DescribeGroups, the committed offsets and the end offsets of the group's partitions.</summary>
    internal static async Task<(DescribeGroupsResponse.DescribedGroup Group, List<PartitionLag> Lags)> DescribeAsync(CommandContext ctx, string name)
    {
        var conn = await ctx.Cluster.CoordinatorAsync(name, ctx.Token);
        var d = await conn.SendAsync<DescribeGroupsResponse>(ApiKey.DescribeGroups, conn.Version(ApiKey.DescribeGroups, 5), new DescribeGroupsRequest { Groups = [name] }, ctx.Token);
        var group = d.Groups[0];
        CliException.ThrowIf(group.ErrorCode, $"group '{name}'");
        var committed = await CommittedAsync(ctx, conn, name);
        if (group.GroupState == "Dead" && committed.Count == 0)
        {
            throw new CliException(ExitCodes.NotFound, $"group '{name}': GROUP_ID_NOT_FOUND");
        }

        // Who owns each partition, from the consumer protocol's assignment.
        var owners = new Dictionary<(string, int), DescribeGroupsResponse.DescribedGroupMember>();
        if (group.ProtocolType == "consumer")
        {
            foreach (var m in group.Members.Where(m => m.MemberAssignment.Length >= 2))
            {
                var reader = new KafkaReader(m.MemberAssignment);
                var version = reader.ReadInt16();
                var assignment = new ConsumerProtocolAssignment();
                assignment.Read(ref reader, version);
                foreach (var tp in assignment.AssignedPartitions)
                {
                    foreach (var p in tp.Partitions)
                    {
                        owners[(tp.Topic, p)] = m;
                    }
                }
            }
        }

        var partitions = committed.Keys.Union(owners.Keys).ToList();
        var lags = new List<PartitionLag>();
        foreach (var byTopic in partitions.GroupBy(k => k.Item1).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            Dictionary<int, long> ends;
            try
            {
                var topic = await ctx.Cluster.TopicAsync(byTopic.Key, ctx.Token);
                ends = await ctx.Cluster.OffsetsAsync(topic, byTopic.Select(k => k.Item2), -1, ctx.Token);
            }
            catch (CliException e) when (e.ExitCode == ExitCodes.NotFound)
            {
                ends = [];
            }

            foreach (var key in byTopic.OrderBy(k => k.Item2))
            {
                owners.TryGetValue(key, out var m);
                lags.Add(new PartitionLag(key.Item1, key.Item2, committed.GetValueOrDefault(key, -1), ends.GetValueOrDefault(key.Item2, -1), m?.MemberId, m?.ClientId, m?.ClientHost));
            }
        }

        return (group, lags);
    }

    /// <summary>OffsetFetch of all the group's committed offsets (v2-v7 form).</summary>
    internal static async Task<Dictionary<(string, int), long>> CommittedAsync(CommandContext ctx, KafkaConnection conn, string name)
    {
        var v = conn.Version(ApiKey.OffsetFetch, 7, 2);
        var r = await conn.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, v, new OffsetFetchRequest { GroupId = name, Topics = null }, ctx.Token);
        CliException.ThrowIf(r.ErrorCode, $"offsets of group '{name}'");
        var result = new Dictionary<(string, int), long>();
        foreach (var t in r.Topics)
        {
            foreach (var p in t.Partitions.Where(p => p.ErrorCode == 0 && p.CommittedOffset >= 0))
            {
                result[(t.Name, p.PartitionIndex)] = p.CommittedOffset;
            }
        }

        return result;
    }

    private static Command Reset()
    {
        var name = new Argument<string>("group") { Description = "Group id" };
        var topics = new Option<string[]>("--topic", "-t") { Description = "topic or topic:0,1,2 (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        var allTopics = new Option<bool>("--all-topics") { Description = "Every topic the group has offsets for" };
        var earliest = new Option<bool>("--to-earliest") { Description = "To the log start offset" };
        var latest = new Option<bool>("--to-latest") { Description = "To the log end offset" };
        var offset = new Option<long?>("--to-offset") { Description = "To this offset (clamped to the log)" };
        var datetime = new Option<string?>("--to-datetime") { Description = "To the first offset at or after this time (ISO-8601, e.g. 2026-01-02T03:04:05Z, or ms since the epoch)" };
        var shift = new Option<long?>("--shift-by") { Description = "Move the committed offsets by N (negative: back)" };
        var execute = new Option<bool>("--execute") { Description = "Commit the new offsets (without it: a dry run)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Only show the new offsets (the default)" };
        var c = new Command("reset", "Reset a group's committed offsets (a dry run unless --execute)") { name, topics, allTopics, earliest, latest, offset, datetime, shift, execute, dryRun };
        c.Aliases.Add("reset-offsets");
        CliApp.Action(c, async ctx =>
        {
            var group = ctx.Get(name)!;
            var targets = new[] { ctx.Get(earliest), ctx.Get(latest), ctx.Get(offset) is not null, ctx.Get(datetime) is not null, ctx.Get(shift) is not null }.Count(b => b);
            if (targets != 1)
            {
                throw new CliException(ExitCodes.Usage, "give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by");
            }

            if ((ctx.Get(topics)?.Length > 0) == ctx.Get(allTopics))
            {
                throw new CliException(ExitCodes.Usage, "give --topic (repeatable) or --all-topics");
            }

            if (ctx.Get(execute) && ctx.Get(dryRun))
            {
                throw new CliException(ExitCodes.Usage, "--execute and --dry-run exclude each other");
            }

            var conn = await ctx.Cluster.CoordinatorAsync(group, ctx.Token);
            var d = await conn.SendAsync<DescribeGroupsResponse>(ApiKey.DescribeGroups, conn.Version(ApiKey.DescribeGroups, 5), new DescribeGroupsRequest { Groups = [group] }, ctx.Token);
            CliException.ThrowIf(d.Groups[0].ErrorCode, $"group '{group}'");
            var state = d.Groups[0].GroupState;
            if (state is not ("Empty" or "Dead"))
            {
                throw new CliException(ExitCodes.Failed, $"group '{group}' is {state} with {d.Groups[0].Members.Count} member(s): stop its consumers before resetting offsets");
            }

            var committed = await CommittedAsync(ctx, conn, group);
            var wanted = new List<(string Topic, int[]? Partitions)>();
            if (ctx.Get(allTopics))
            {
                wanted.AddRange(committed.Keys.Select(k => k.Item1).Distinct().Select(t => (t, (int[]?)null)));
            }
            else
            {
                foreach (var spec in ctx.Get(topics)!)
                {
                    var colon = spec.IndexOf(':');
                    wanted.Add(colon < 0 ? (spec, null) : (spec[..colon], spec[(colon + 1)..].Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray()));
                }
            }

            long? timestamp = ctx.Get(datetime) is { } dt ? ParseTime(dt) : null;
            var plan = new List<(string Topic, int Partition, long Current, long Next)>();
            await Progress(ctx, "computing offsets", wanted.Count, async step =>
            {
                foreach (var (topicName, only) in wanted)
                {
                    var topic = await ctx.Cluster.TopicAsync(topicName, ctx.Token);
                    var ids = only ?? topic.Partitions.Select(p => p.PartitionIndex).Order().ToArray();
                    var start = await ctx.Cluster.OffsetsAsync(topic, ids, -2, ctx.Token);
                    var end = await ctx.Cluster.OffsetsAsync(topic, ids, -1, ctx.Token);
                    var at = timestamp is { } ts ? await ctx.Cluster.OffsetsAsync(topic, ids, ts, ctx.Token) : null;
                    foreach (var p in ids)
                    {
                        if (!start.ContainsKey(p))
                        {
                            throw new CliException(ExitCodes.NotFound, $"partition {topicName}-{p}: UNKNOWN_TOPIC_OR_PARTITION");
                        }

                        var current = committed.GetValueOrDefault((topicName, p), -1);
                        long next = ctx.Get(earliest) ? start[p]
                            : ctx.Get(latest) ? end[p]
                            : ctx.Get(offset) is { } o ? o
                            : at is not null ? (at[p] < 0 ? end[p] : at[p])
                            : (current < 0 ? end[p] : current) + ctx.Get(shift)!.Value;
                        plan.Add((topicName, p, current, Math.Clamp(next, start[p], end[p])));
                    }

                    step();
                }
            });

            var executed = ctx.Get(execute);
            var errors = new Dictionary<(string, int), short>();
            if (executed && plan.Count > 0)
            {
                var request = new OffsetCommitRequest { GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = string.Empty };
                foreach (var byTopic in plan.GroupBy(p => p.Topic))
                {
                    request.Topics.Add(new OffsetCommitRequest.OffsetCommitRequestTopic
                    {
                        Name = byTopic.Key,
                        Partitions = byTopic.Select(p => new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = p.Partition, CommittedOffset = p.Next, CommittedMetadata = string.Empty }).ToList(),
                    });
                }

                var r = await conn.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, conn.Version(ApiKey.OffsetCommit, 8, 2), request, ctx.Token);
                foreach (var t in r.Topics)
                {
                    foreach (var p in t.Partitions.Where(p => p.ErrorCode != 0))
                    {
                        errors[(t.Name, p.PartitionIndex)] = p.ErrorCode;
                    }
                }
            }

            var json = new JsonObject
            {
                ["group"] = group,
                ["executed"] = executed,
                ["partitions"] = new JsonArray(plan.Select(p => (JsonNode)new JsonObject
                {
                    ["topic"] = p.Topic,
                    ["partition"] = p.Partition,
                    ["currentOffset"] = p.Current < 0 ? null : p.Current,
                    ["newOffset"] = p.Next,
                    ["error"] = errors.TryGetValue((p.Topic, p.Partition), out var e) ? Names.Of((ErrorCode)e) : null,
                }).ToArray()),
            };
            ctx.Output.Emit(json, console =>
            {
                var t = Output.Table("TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET", executed ? "STATUS" : string.Empty);
                foreach (var p in plan)
                {
                    Output.Row(t, p.Topic, p.Partition, p.Current < 0 ? "-" : p.Current, p.Next, executed ? (errors.TryGetValue((p.Topic, p.Partition), out var e) ? Names.Of((ErrorCode)e) : "committed") : string.Empty);
                }

                console.Write(t);
            });
            if (!executed)
            {
                ctx.Output.Note("dry run: nothing committed (add --execute to commit these offsets)");
            }

            return errors.Count == 0 ? ExitCodes.Ok : ExitCodes.For((ErrorCode)errors.Values.First());
        });
        return c;
    }

    private static Command Delete()
    {
        var names = new Argument<string[]>("group") { Arity = ArgumentArity.OneOrMore, Description = "Group ids" };
        var c = new Command("delete", "Delete groups (they must have no members)") { names };
        c.Aliases.Add("rm");
        CliApp.Action(c, async ctx =>
        {
            var results = new List<(string, short, string?, string)>();
            foreach (var name in ctx.Get(names)!)
            {
                var conn = await ctx.Cluster.CoordinatorAsync(name, ctx.Token);
                var r = await conn.SendAsync<DeleteGroupsResponse>(ApiKey.DeleteGroups, conn.Version(ApiKey.DeleteGroups, 2), new DeleteGroupsRequest { GroupsNames = [name] }, ctx.Token);
                results.AddRange(r.Results.Select(g => (g.GroupId, g.ErrorCode, (string?)null, string.Empty)));
            }

            return TopicCommands.Report(ctx, results, "deleted", null);
        });
        return c;
    }

    /// <summary>ISO-8601 or milliseconds since the epoch.</summary>
    internal static long ParseTime(string value)
    {
        if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms))
        {
            return ms;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
        {
            return t.ToUnixTimeMilliseconds();
        }

        throw new CliException(ExitCodes.Usage, $"'{value}' is neither ISO-8601 nor milliseconds since the epoch");
    }

    /// <summary>Runs <paramref name="work"/> with a progress bar on stderr when it is a terminal.</summary>
    internal static async Task Progress(CommandContext ctx, string what, int steps, Func<Action, Task> work)
    {
        if (!ctx.Output.Interactive || steps < 2)
        {
            await work(() => { });
            return;
        }

        await ctx.Output.Error.Progress().AutoClear(true).StartAsync(async p =>
        {
            var task = p.AddTask(what, maxValue: steps);
            await work(() => task.Increment(1));
        });
    }
}
