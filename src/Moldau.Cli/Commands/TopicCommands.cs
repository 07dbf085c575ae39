using System.CommandLine;
using System.Text.Json.Nodes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Spectre.Console;

namespace Moldau.Cli.Commands;

/// <summary><c>moldau topic list|describe|create|alter-config|add-partitions|delete</c> (kafka-topics.sh, rpk topic).</summary>
internal static class TopicCommands
{
    public static Command Build()
    {
        var topic = new Command("topic", "List, describe, create, alter and delete topics");
        topic.Aliases.Add("topics");
        topic.Subcommands.Add(List());
        topic.Subcommands.Add(Describe());
        topic.Subcommands.Add(Create());
        topic.Subcommands.Add(AlterConfig());
        topic.Subcommands.Add(AddPartitions());
        topic.Subcommands.Add(Delete());
        return topic;
    }

    private static Command List()
    {
        var internalTopics = new Option<bool>("--internal", "-i") { Description = "Include internal topics (__consumer_offsets, ...)" };
        var c = new Command("list", "List topics with their partition and replica counts") { internalTopics };
        c.Aliases.Add("ls");
        CliApp.Action(c, async ctx =>
        {
            var md = await ctx.Cluster.MetadataAsync(null, ctx.Token);
            var topics = md.Topics.Where(t => ctx.Get(internalTopics) || !t.IsInternal).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            var json = new JsonArray(topics.Select(t => (JsonNode)new JsonObject
            {
                ["name"] = t.Name,
                ["id"] = t.TopicId.ToString(),
                ["partitions"] = t.Partitions.Count,
                ["replicas"] = t.Partitions.Count == 0 ? 0 : t.Partitions.Max(p => p.ReplicaNodes.Count),
                ["internal"] = t.IsInternal,
            }).ToArray());
            ctx.Output.Emit(json, console =>
            {
                var table = Output.Table("NAME", "PARTITIONS", "REPLICAS");
                foreach (var t in topics)
                {
                    Output.Row(table, t.Name, t.Partitions.Count, t.Partitions.Count == 0 ? 0 : t.Partitions.Max(p => p.ReplicaNodes.Count));
                }

                console.Write(table);
            });
            return ExitCodes.Ok;
        });
        return c;
    }

    private static Command Describe()
    {
        var names = new Argument<string[]>("topic") { Arity = ArgumentArity.OneOrMore, Description = "Topic names" };
        var allConfigs = new Option<bool>("--all-configs", "-a") { Description = "Show every config, defaults included" };
        var c = new Command("describe", "Show a topic's partitions (leader, replicas, ISR, start and end offsets) and configs") { names, allConfigs };
        CliApp.Action(c, async ctx =>
        {
            var result = new JsonArray();
            var tables = new List<Action<IAnsiConsole>>();
            foreach (var name in ctx.Get(names)!)
            {
                var t = await ctx.Cluster.TopicAsync(name, ctx.Token);
                var ids = t.Partitions.Select(p => p.PartitionIndex).ToList();
                var start = await ctx.Cluster.OffsetsAsync(t, ids, -2, ctx.Token);
                var end = await ctx.Cluster.OffsetsAsync(t, ids, -1, ctx.Token);
                var configs = await ConfigCommands.DescribeAsync(ctx, ConfigCommands.TopicResource, name, ctx.Get(allConfigs));
                var partitions = t.Partitions.OrderBy(p => p.PartitionIndex).ToList();
                result.Add((JsonNode)new JsonObject
                {
                    ["name"] = t.Name,
                    ["id"] = t.TopicId.ToString(),
                    ["internal"] = t.IsInternal,
                    ["partitions"] = new JsonArray(partitions.Select(p => (JsonNode)new JsonObject
                    {
                        ["partition"] = p.PartitionIndex,
                        ["leader"] = p.LeaderId,
                        ["leaderEpoch"] = p.LeaderEpoch,
                        ["replicas"] = new JsonArray(p.ReplicaNodes.Select(r => (JsonNode)r).ToArray()),
                        ["isr"] = new JsonArray(p.IsrNodes.Select(r => (JsonNode)r).ToArray()),
                        ["logStartOffset"] = start.GetValueOrDefault(p.PartitionIndex, -1),
                        ["highWatermark"] = end.GetValueOrDefault(p.PartitionIndex, -1),
                    }).ToArray()),
                    ["configs"] = ConfigCommands.Json(configs),
                });
                tables.Add(console =>
                {
                    console.MarkupLine($"[bold]{Markup.Escape(t.Name ?? name)}[/]  id {t.TopicId}  partitions {t.Partitions.Count}  replicas {(t.Partitions.Count == 0 ? 0 : t.Partitions.Max(p => p.ReplicaNodes.Count))}{(t.IsInternal ? "  internal" : string.Empty)}");
                    var pt = Output.Table("PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK");
                    foreach (var p in partitions)
                    {
                        Output.Row(pt, p.PartitionIndex, p.LeaderId, p.LeaderEpoch, string.Join(",", p.ReplicaNodes), string.Join(",", p.IsrNodes), start.GetValueOrDefault(p.PartitionIndex, -1), end.GetValueOrDefault(p.PartitionIndex, -1));
                    }

                    console.Write(pt);
                    ConfigCommands.Render(console, configs);
                });
            }

            ctx.Output.Emit(result, console => tables.ForEach(t => t(console)));
            return ExitCodes.Ok;
        });
        return c;
    }

    private static Command Create()
    {
        var names = new Argument<string[]>("topic") { Arity = ArgumentArity.OneOrMore, Description = "Topic names" };
        var partitions = new Option<int>("--partitions", "-p") { Description = "Partitions (default: the broker's num.partitions)", DefaultValueFactory = _ => -1 };
        var replicas = new Option<short>("--replication-factor", "-r") { Description = "Replicas (default: the broker's default.replication.factor)", DefaultValueFactory = _ => -1 };
        var set = ConfigCommands.SetOption("Topic config key=value (repeatable)");
        set.Aliases.Add("-c");
        set.Aliases.Add("--topic-config");
        var dryRun = new Option<bool>("--dry-run") { Description = "Validate only; create nothing" };
        var ifNotExists = new Option<bool>("--if-not-exists") { Description = "A topic that exists is not an error" };
        var c = new Command("create", "Create topics") { names, partitions, replicas, set, dryRun, ifNotExists };
        CliApp.Action(c, async ctx =>
        {
            var conn = await ctx.Cluster.AnyAsync(ctx.Token);
            var v = conn.Version(ApiKey.CreateTopics, 7, 1);
            var p = ctx.Get(partitions);
            var r = ctx.Get(replicas);
            if (v < 4)
            {
                // Before v4 the broker defaults cannot be asked for with -1.
                p = p < 0 ? 1 : p;
                r = r < 0 ? (short)1 : r;
            }

            var configs = ConfigCommands.Pairs(ctx.Get(set));
            var request = new CreateTopicsRequest
            {
                TimeoutMs = (int)ctx.Cluster.Settings.RequestTimeout.TotalMilliseconds,
                ValidateOnly = ctx.Get(dryRun),
                Topics = ctx.Get(names)!.Select(n => new CreateTopicsRequest.CreatableTopic
                {
                    Name = n,
                    NumPartitions = p,
                    ReplicationFactor = r,
                    Configs = configs.Select(kv => new CreateTopicsRequest.CreatableTopicConfig { Name = kv.Key, Value = kv.Value }).ToList(),
                }).ToList(),
            };
            var response = await conn.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, v, request, ctx.Token);
            return Report(ctx, response.Topics.Select(t => (t.Name, t.ErrorCode, t.ErrorMessage, Detail: t.TopicId.ToString())), "created", ctx.Get(ifNotExists) ? ErrorCode.TopicAlreadyExists : null);
        });
        return c;
    }

    private static Command AlterConfig()
    {
        var names = new Argument<string[]>("topic") { Arity = ArgumentArity.OneOrMore, Description = "Topic names" };
        var set = ConfigCommands.SetOption("Set key=value (repeatable)");
        var delete = ConfigCommands.DeleteOption();
        var c = new Command("alter-config", "Set or delete topic configs (incrementally)") { names, set, delete };
        CliApp.Action(c, ctx => ConfigCommands.AlterAsync(ctx, ConfigCommands.TopicResource, ctx.Get(names)!, ctx.Get(set), ctx.Get(delete)));
        return c;
    }

    private static Command AddPartitions()
    {
        var names = new Argument<string[]>("topic") { Arity = ArgumentArity.OneOrMore, Description = "Topic names" };
        var num = new Option<int>("--num", "-n") { Description = "Partitions to add" };
        var total = new Option<int>("--total") { Description = "The partition count to reach (as kafka-topics.sh --alter --partitions)" };
        var c = new Command("add-partitions", "Add partitions to topics") { names, num, total };
        CliApp.Action(c, async ctx =>
        {
            if ((ctx.Get(num) > 0) == (ctx.Get(total) > 0))
            {
                throw new CliException(ExitCodes.Usage, "give either --num (partitions to add) or --total (count to reach)");
            }

            var request = new CreatePartitionsRequest { TimeoutMs = (int)ctx.Cluster.Settings.RequestTimeout.TotalMilliseconds };
            foreach (var n in ctx.Get(names)!)
            {
                var current = (await ctx.Cluster.TopicAsync(n, ctx.Token)).Partitions.Count;
                request.Topics.Add(new CreatePartitionsRequest.CreatePartitionsTopic { Name = n, Count = ctx.Get(total) > 0 ? ctx.Get(total) : current + ctx.Get(num), Assignments = null });
            }

            var conn = await ctx.Cluster.AnyAsync(ctx.Token);
            var response = await conn.SendAsync<CreatePartitionsResponse>(ApiKey.CreatePartitions, conn.Version(ApiKey.CreatePartitions, 3), request, ctx.Token);
            return Report(ctx, response.Results.Select(t => (t.Name, t.ErrorCode, t.ErrorMessage, Detail: $"{request.Topics.First(x => x.Name == t.Name).Count} partitions")), "altered", null);
        });
        return c;
    }

    private static Command Delete()
    {
        var names = new Argument<string[]>("topic") { Arity = ArgumentArity.OneOrMore, Description = "Topic names" };
        var c = new Command("delete", "Delete topics") { names };
        c.Aliases.Add("rm");
        CliApp.Action(c, async ctx =>
        {
            var conn = await ctx.Cluster.AnyAsync(ctx.Token);
            var v = conn.Version(ApiKey.DeleteTopics, 6, 1);
            var request = new DeleteTopicsRequest { TimeoutMs = (int)ctx.Cluster.Settings.RequestTimeout.TotalMilliseconds };
            if (v >= 6)
            {
                request.Topics = ctx.Get(names)!.Select(n => new DeleteTopicsRequest.DeleteTopicState { Name = n }).ToList();
            }
            else
            {
                request.TopicNames = [.. ctx.Get(names)!];
            }

            var response = await conn.SendAsync<DeleteTopicsResponse>(ApiKey.DeleteTopics, v, request, ctx.Token);
            return Report(ctx, response.Responses.Select(t => (t.Name ?? t.TopicId.ToString(), t.ErrorCode, t.ErrorMessage, Detail: string.Empty)), "deleted", null);
        });
        return c;
    }

    /// <summary>Prints one row per item (NAME STATUS), returns the exit code of the first error.</summary>
    internal static int Report(CommandContext ctx, IEnumerable<(string Name, short Error, string? Message, string Detail)> items, string done, ErrorCode? tolerated)
    {
        var list = items.ToList();
        var exit = ExitCodes.Ok;
        var json = new JsonArray();
        var table = Output.Table("NAME", "STATUS", string.Empty);
        foreach (var (name, error, message, detail) in list)
        {
            var ok = error == 0 || (ErrorCode)error == tolerated;
            var status = error == 0 ? done : Names.Of((ErrorCode)error);
            if (!ok && exit == ExitCodes.Ok)
            {
                exit = ExitCodes.For((ErrorCode)error);
            }

            json.Add((JsonNode)new JsonObject { ["name"] = name, ["status"] = status, ["error"] = error == 0 ? null : Names.Of((ErrorCode)error), ["message"] = message, ["detail"] = detail });
            Output.Row(table, name, status, string.IsNullOrEmpty(message) ? detail : message);
            if (!ok && !ctx.Output.Json)
            {
                Console.Error.WriteLine($"moldau: {name}: {status}{(string.IsNullOrEmpty(message) ? string.Empty : $" ({message})")}");
            }
        }

        ctx.Output.Emit(json, console => console.Write(table));
        return exit;
    }
}
