using System.CommandLine;
using System.Text.Json.Nodes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Cli.Commands;

/// <summary><c>moldau acl list|create|delete</c> (kafka-acls.sh, rpk security acl).</summary>
internal static class AclCommands
{
    private static readonly string[] ResourceTypes = ["unknown", "any", "topic", "group", "cluster", "transactional-id", "delegation-token", "user"];
    private static readonly string[] PatternTypes = ["unknown", "any", "match", "literal", "prefixed"];
    private static readonly string[] Operations = ["unknown", "any", "all", "read", "write", "create", "delete", "alter", "describe", "cluster-action", "describe-configs", "alter-configs", "idempotent-write", "create-tokens", "describe-tokens"];
    private static readonly string[] Permissions = ["unknown", "any", "deny", "allow"];

    private sealed class Filter
    {
        public Option<string?> Topic { get; } = new("--topic") { Description = "Topic name (or prefix with --pattern prefixed)" };
        public Option<string?> Group { get; } = new("--group") { Description = "Group id" };
        public Option<bool> Cluster { get; } = new("--cluster") { Description = "The cluster resource" };
        public Option<string?> TransactionalId { get; } = new("--transactional-id") { Description = "Transactional id" };
        public Option<string> Pattern { get; } = new("--pattern") { Description = "literal, prefixed (list/delete also: any, match)", DefaultValueFactory = _ => "literal" };
        public Option<string?> Principal { get; } = new("--principal") { Description = "e.g. User:alice" };
        public Option<string?> Host { get; } = new("--host") { Description = "Host (default *)" };
        public Option<string[]> Operation { get; } = new("--operation") { Description = "read, write, create, delete, alter, describe, all, ... (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        public Option<string?> Permission { get; } = new("--permission") { Description = "allow or deny" };

        public void AddTo(Command c)
        {
            c.Options.Add(Topic);
            c.Options.Add(Group);
            c.Options.Add(Cluster);
            c.Options.Add(TransactionalId);
            c.Options.Add(Pattern);
            c.Options.Add(Principal);
            c.Options.Add(Host);
            c.Options.Add(Operation);
            c.Options.Add(Permission);
        }

        public (sbyte Type, string? Name) Resource(CommandContext ctx, bool required)
        {
            var chosen = new List<(sbyte, string?)>();
            if (ctx.Get(Topic) is { } t)
            {
                chosen.Add((2, t));
            }

            if (ctx.Get(Group) is { } g)
            {
                chosen.Add((3, g));
            }

            if (ctx.Get(Cluster))
            {
                chosen.Add((4, "kafka-cluster"));
            }

            if (ctx.Get(TransactionalId) is { } x)
            {
                chosen.Add((5, x));
            }

            return chosen.Count switch
            {
                1 => chosen[0],
                0 when !required => (1, null),
                _ => throw new CliException(ExitCodes.Usage, "name one resource: --topic, --group, --cluster or --transactional-id"),
            };
        }
    }

    public static Command Build()
    {
        var acl = new Command("acl", "List, create and delete ACLs");
        acl.Aliases.Add("acls");
        acl.Subcommands.Add(List());
        acl.Subcommands.Add(Create());
        acl.Subcommands.Add(Delete());
        return acl;
    }

    private static sbyte Code(string[] names, string value, string what)
    {
        var i = Array.IndexOf(names, value.ToLowerInvariant().Replace('_', '-'));
        return i > 1 || (i == 1 && what != "create") ? (sbyte)i : throw new CliException(ExitCodes.Usage, $"'{value}' is not one of {string.Join(", ", names.Skip(what == "create" ? 2 : 1))}");
    }

    private static Command List()
    {
        var f = new Filter();
        var c = new Command("list", "List ACLs matching the filter (all by default)");
        c.Aliases.Add("ls");
        f.AddTo(c);
        CliApp.Action(c, async ctx =>
        {
            var (type, name) = f.Resource(ctx, false);
            var ops = ctx.Get(f.Operation) ?? [];
            var request = new DescribeAclsRequest
            {
                ResourceTypeFilter = type,
                ResourceNameFilter = name,
                PatternTypeFilter = name is null && ctx.Parse.GetResult(f.Pattern) is null ? (sbyte)1 : Code(PatternTypes, ctx.Get(f.Pattern)!, "filter"),
                PrincipalFilter = ctx.Get(f.Principal),
                HostFilter = ctx.Get(f.Host),
                Operation = ops.Length == 0 ? (sbyte)1 : Code(Operations, ops[0], "filter"),
                PermissionType = ctx.Get(f.Permission) is { } perm ? Code(Permissions, perm, "filter") : (sbyte)1,
            };
            var conn = await ctx.Cluster.AnyAsync(ctx.Token);
            var r = await conn.SendAsync<DescribeAclsResponse>(ApiKey.DescribeAcls, conn.Version(ApiKey.DescribeAcls, 3, 1), request, ctx.Token);
            CliException.ThrowIf(r.ErrorCode, "DescribeAcls", r.ErrorMessage);
            var rows = r.Resources.SelectMany(res => res.Acls.Select(a => (res.ResourceType, res.ResourceName, res.PatternType, a.Principal, a.Host, a.Operation, a.PermissionType))).ToList();
            Emit(ctx, rows.Select(x => (x.ResourceType, x.ResourceName, x.PatternType, x.Principal, x.Host, x.Operation, x.PermissionType, (string?)null)));
            return ExitCodes.Ok;
        });
        return c;
    }

    private static Command Create()
    {
        var f = new Filter();
        var allow = new Option<string[]>("--allow-principal") { Description = "Principal to allow, e.g. User:alice (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        var deny = new Option<string[]>("--deny-principal") { Description = "Principal to deny (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        var c = new Command("create", "Create ACLs: principals x operations on one resource") { allow, deny };
        c.Aliases.Add("add");
        f.AddTo(c);
        CliApp.Action(c, async ctx =>
        {
            var (type, name) = f.Resource(ctx, true);
            var pattern = Code(PatternTypes, ctx.Get(f.Pattern)!, "create");
            var ops = ctx.Get(f.Operation) ?? [];
            var principals = (ctx.Get(allow) ?? []).Select(p => (p, (sbyte)3)).Concat((ctx.Get(deny) ?? []).Select(p => (p, (sbyte)2))).ToList();
            if (ops.Length == 0 || principals.Count == 0)
            {
                throw new CliException(ExitCodes.Usage, "give --operation and --allow-principal or --deny-principal");
            }

            var request = new CreateAclsRequest();
            foreach (var (principal, permission) in principals)
            {
                foreach (var op in ops)
                {
                    request.Creations.Add(new CreateAclsRequest.AclCreation
                    {
                        ResourceType = type,
                        ResourceName = name!,
                        ResourcePatternType = pattern,
                        Principal = principal,
                        Host = ctx.Get(f.Host) ?? "*",
                        Operation = Code(Operations, op, "create"),
                        PermissionType = permission,
                    });
                }
            }

            var conn = await ctx.Cluster.AnyAsync(ctx.Token);
            var r = await conn.SendAsync<CreateAclsResponse>(ApiKey.CreateAcls, conn.Version(ApiKey.CreateAcls, 3, 1), request, ctx.Token);
            var rows = request.Creations.Zip(r.Results, (a, res) => (a.ResourceType, a.ResourceName, a.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType, res.ErrorCode == 0 ? (string?)"created" : $"{Names.Of((ErrorCode)res.ErrorCode)} {res.ErrorMessage}".Trim())).ToList();
            Emit(ctx, rows);
            var failed = r.Results.FirstOrDefault(x => x.ErrorCode != 0);
            return failed is null ? ExitCodes.Ok : ExitCodes.For((ErrorCode)failed.ErrorCode);
        });
        return c;
    }

    private static Command Delete()
    {
        var f = new Filter();
        var c = new Command("delete", "Delete the ACLs matching the filter");
        c.Aliases.Add("rm");
        f.AddTo(c);
        CliApp.Action(c, async ctx =>
        {
            var (type, name) = f.Resource(ctx, false);
            if (name is null && ctx.Get(f.Principal) is null)
            {
                throw new CliException(ExitCodes.Usage, "delete needs a resource (--topic, --group, --cluster, --transactional-id) or --principal");
            }

            var ops = ctx.Get(f.Operation) ?? [];
            var request = new DeleteAclsRequest();
            foreach (var op in ops.Length == 0 ? ["any"] : ops)
            {
                request.Filters.Add(new DeleteAclsRequest.DeleteAclsFilter
                {
                    ResourceTypeFilter = type,
                    ResourceNameFilter = name,
                    PatternTypeFilter = name is null ? (sbyte)1 : Code(PatternTypes, ctx.Get(f.Pattern)!, "filter"),
                    PrincipalFilter = ctx.Get(f.Principal),
                    HostFilter = ctx.Get(f.Host),
                    Operation = Code(Operations, op, "filter"),
                    PermissionType = ctx.Get(f.Permission) is { } perm ? Code(Permissions, perm, "filter") : (sbyte)1,
                });
            }

            var conn = await ctx.Cluster.AnyAsync(ctx.Token);
            var r = await conn.SendAsync<DeleteAclsResponse>(ApiKey.DeleteAcls, conn.Version(ApiKey.DeleteAcls, 3, 1), request, ctx.Token);
            foreach (var fr in r.FilterResults)
            {
                CliException.ThrowIf(fr.ErrorCode, "DeleteAcls", fr.ErrorMessage);
            }

            Emit(ctx, r.FilterResults.SelectMany(fr => fr.MatchingAcls).Select(a => (a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.PermissionType, a.ErrorCode == 0 ? (string?)"deleted" : Names.Of((ErrorCode)a.ErrorCode))));
            return ExitCodes.Ok;
        });
        return c;
    }

    private static string Name(string[] names, sbyte code) => code >= 0 && code < names.Length ? names[code] : code.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static void Emit(CommandContext ctx, IEnumerable<(sbyte Type, string Name, sbyte Pattern, string Principal, string Host, sbyte Operation, sbyte Permission, string? Status)> rows)
    {
        var list = rows.ToList();
        var json = new JsonArray(list.Select(x => (JsonNode)new JsonObject
        {
            ["principal"] = x.Principal,
            ["host"] = x.Host,
            ["resourceType"] = Name(ResourceTypes, x.Type),
            ["resourceName"] = x.Name,
            ["patternType"] = Name(PatternTypes, x.Pattern),
            ["operation"] = Name(Operations, x.Operation),
            ["permission"] = Name(Permissions, x.Permission),
            ["status"] = x.Status,
        }).ToArray());
        ctx.Output.Emit(json, console =>
        {
            var t = Output.Table("PRINCIPAL", "HOST", "RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN", "OPERATION", "PERMISSION", list.Any(x => x.Status is not null) ? "STATUS" : string.Empty);
            foreach (var x in list)
            {
                Output.Row(t, x.Principal, x.Host, Name(ResourceTypes, x.Type), x.Name, Name(PatternTypes, x.Pattern), Name(Operations, x.Operation), Name(Permissions, x.Permission), x.Status ?? string.Empty);
            }

            console.Write(t);
        });
    }
}
