using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Moldau.Cli.Commands;

/// <summary><c>moldau cluster info</c>: cluster id, controller, brokers (rpk cluster info).</summary>
internal static class ClusterCommands
{
    public static Command Build()
    {
        var cluster = new Command("cluster", "Cluster information");
        var info = new Command("info", "Cluster id, controller, brokers and topic counts");
        info.Aliases.Add("metadata");
        cluster.Subcommands.Add(info);
        CliApp.Action(info, async ctx =>
        {
            var md = await ctx.Cluster.MetadataAsync(null, ctx.Token);
            var brokers = md.Brokers.OrderBy(b => b.NodeId).ToList();
            var json = new JsonObject
            {
                ["clusterId"] = md.ClusterId,
                ["controller"] = md.ControllerId,
                ["brokers"] = new JsonArray(brokers.Select(b => (JsonNode)new JsonObject { ["id"] = b.NodeId, ["host"] = b.Host, ["port"] = b.Port, ["rack"] = b.Rack }).ToArray()),
                ["topics"] = md.Topics.Count(t => !t.IsInternal),
                ["partitions"] = md.Topics.Where(t => !t.IsInternal).Sum(t => t.Partitions.Count),
            };
            ctx.Output.Emit(json, console =>
            {
                console.MarkupLine($"[bold]cluster[/] {Markup.Escape(md.ClusterId ?? "-")}  controller {md.ControllerId}  topics {json["topics"]}  partitions {json["partitions"]}");
                var t = Output.Table("ID", "HOST", "PORT", "RACK");
                foreach (var b in brokers)
                {
                    Output.Row(t, b.NodeId + (b.NodeId == md.ControllerId ? "*" : string.Empty), b.Host, b.Port, b.Rack);
                }

                console.Write(t);
            });
            return ExitCodes.Ok;
        });
        return cluster;
    }
}
