using System.CommandLine;
using System.Text.Json.Nodes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Spectre.Console;

namespace Moldau.Cli.Commands;

/// <summary><c>moldau configs describe|alter topic NAME | broker [ID] | group NAME</c> (kafka-configs.sh).</summary>
internal static class ConfigCommands
{
    public const sbyte TopicResource = 2;
    public const sbyte BrokerResource = 4;
    public const sbyte GroupResource = 32;

    /// <summary>One config entry as described.</summary>
    internal sealed record Entry(string Name, string? Value, string Source, bool ReadOnly, bool Sensitive);

    public static Command Build()
    {
        var configs = new Command("configs", "Describe and alter topic, broker and group configs");
        configs.Aliases.Add("config");
        configs.Subcommands.Add(DescribeCommand());
        configs.Subcommands.Add(AlterCommand());
        return configs;
    }

    private static Argument<string> TypeArgument()
    {
        var type = new Argument<string>("type") { Description = "topic, broker or group" };
        type.AcceptOnlyFromAmong("topic", "broker", "group");
        return type;
    }

    private static sbyte TypeOf(string type) => type switch
    {
        "topic" => TopicResource,
        "broker" => BrokerResource,
        _ => GroupResource,
    };

    private static Command DescribeCommand()
    {
        var type = TypeArgument();
        var name = new Argument<string>("name") { Description = "Topic or group name, broker id (none: the cluster-wide broker defaults)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => string.Empty };
        var all = new Option<bool>("--all", "-a") { Description = "Include defaults" };
        var c = new Command("describe", "Show configs (those set, or --all)") { type, name, all };
        CliApp.Action(c, async ctx =>
        {
            var entries = await DescribeAsync(ctx, TypeOf(ctx.Get(type)!), ctx.Get(name)!, ctx.Get(all));
            ctx.Output.Emit(Json(entries), console => Render(console, entries));
            return ExitCodes.Ok;
        });
        return c;
    }

    private static Command AlterCommand()
    {
        var type = TypeArgument();
        var name = new Argument<string>("name") { Description = "Topic or group name, broker id (none: the cluster-wide broker defaults)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => string.Empty };
        var set = SetOption("Set key=value (repeatable)");
        var delete = DeleteOption();
        var c = new Command("alter", "Set or delete configs (incrementally)") { type, name, set, delete };
        CliApp.Action(c, ctx => AlterAsync(ctx, TypeOf(ctx.Get(type)!), [ctx.Get(name)!], ctx.Get(set), ctx.Get(delete)));
        return c;
    }

    public static Option<string[]> SetOption(string description) =>
        new("--set", "-s") { Description = description, AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.ZeroOrMore };

    public static Option<string[]> DeleteOption() =>
        new("--delete", "-d") { Description = "Delete the key, back to its default (repeatable)", Arity = ArgumentArity.ZeroOrMore };

    /// <summary>key=value pairs; a value may hold '='.</summary>
    public static List<KeyValuePair<string, string>> Pairs(string[]? values)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var v in values ?? [])
        {
            var eq = v.IndexOf('=');
            if (eq <= 0)
            {
                throw new CliException(ExitCodes.Usage, $"'{v}' is not key=value");
            }

            pairs.Add(new(v[..eq].Trim(), v[(eq + 1)..].Trim()));
        }

        return pairs;
    }

    /// <summary>DescribeConfigs for one resource; a broker is asked directly, others at any broker.</summary>
    public static async Task<List<Entry>> DescribeAsync(CommandContext ctx, sbyte type, string name, bool all)
    {
        var conn = type == BrokerResource && int.TryParse(name, out var id)
            ? await ctx.Cluster.NodeAsync(id, ctx.Token)
            : await ctx.Cluster.AnyAsync(ctx.Token);
        var request = new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = type, ResourceName = name, ConfigurationKeys = null }],
        };
        var response = await conn.SendAsync<DescribeConfigsResponse>(ApiKey.DescribeConfigs, conn.Version(ApiKey.DescribeConfigs, 4, 1), request, ctx.Token);
        var result = response.Results[0];
        CliException.ThrowIf(result.ErrorCode, $"configs of {TypeName(type)} '{name}'", result.ErrorMessage);
        return result.Configs
            .Where(c => all || c.ConfigSource is not (5 or -1))
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .Select(c => new Entry(c.Name, c.IsSensitive ? null : c.Value, SourceName(c.ConfigSource), c.ReadOnly, c.IsSensitive))
            .ToList();
    }

    /// <summary>IncrementalAlterConfigs: set and delete keys of each resource.</summary>
    public static async Task<int> AlterAsync(CommandContext ctx, sbyte type, string[] names, string[]? set, string[]? delete)
    {
        var sets = Pairs(set);
        if (sets.Count == 0 && (delete?.Length ?? 0) == 0)
        {
            throw new CliException(ExitCodes.Usage, "nothing to change: give --set key=value and/or --delete key");
        }

        var request = new IncrementalAlterConfigsRequest();
        foreach (var n in names)
        {
            var resource = new IncrementalAlterConfigsRequest.AlterConfigsResource { ResourceType = type, ResourceName = n };
            resource.Configs.AddRange(sets.Select(kv => new IncrementalAlterConfigsRequest.AlterableConfig { Name = kv.Key, Value = kv.Value, ConfigOperation = 0 }));
            resource.Configs.AddRange((delete ?? []).Select(k => new IncrementalAlterConfigsRequest.AlterableConfig { Name = k, Value = null, ConfigOperation = 1 }));
            request.Resources.Add(resource);
        }

        var conn = type == BrokerResource && names.Length == 1 && int.TryParse(names[0], out var id)
            ? await ctx.Cluster.NodeAsync(id, ctx.Token)
            : await ctx.Cluster.AnyAsync(ctx.Token);
        var response = await conn.SendAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, conn.Version(ApiKey.IncrementalAlterConfigs, 1), request, ctx.Token);
        return TopicCommands.Report(ctx, response.Responses.Select(r => (r.ResourceName.Length == 0 ? "(broker defaults)" : r.ResourceName, r.ErrorCode, r.ErrorMessage, Detail: string.Empty)), "altered", null);
    }

    public static JsonNode Json(List<Entry> entries) => new JsonArray(entries.Select(e => (JsonNode)new JsonObject
    {
        ["name"] = e.Name,
        ["value"] = e.Value,
        ["source"] = e.Source,
        ["readOnly"] = e.ReadOnly,
        ["sensitive"] = e.Sensitive,
    }).ToArray());

    public static void Render(IAnsiConsole console, List<Entry> entries)
    {
        if (entries.Count == 0)
        {
            console.WriteLine("(no configs set; --all shows the defaults)");
            return;
        }

        var t = Output.Table("KEY", "VALUE", "SOURCE");
        t.Columns[1].NoWrap = false;
        foreach (var e in entries)
        {
            Output.Row(t, e.Name, e.Sensitive ? "(sensitive)" : e.Value ?? "null", e.Source);
        }

        console.Write(t);
    }

    private static string TypeName(sbyte type) => type switch
    {
        TopicResource => "topic",
        BrokerResource => "broker",
        GroupResource => "group",
        _ => $"resource type {type}",
    };

    // ConfigSource in DescribeConfigs v1+.
    private static string SourceName(sbyte source) => source switch
    {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    };
}
