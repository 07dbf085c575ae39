using System.CommandLine;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Cli.Commands;

/// <summary><c>moldau user list|create|delete</c>: SCRAM credentials (kafka-configs.sh --alter --add-config SCRAM-..., rpk security user).</summary>
internal static class UserCommands
{
    private static readonly string[] Mechanisms = ["unknown", "SCRAM-SHA-256", "SCRAM-SHA-512"];

    public static Command Build()
    {
        var user = new Command("user", "List, create and delete SCRAM users");
        user.Aliases.Add("users");
        user.Subcommands.Add(List());
        user.Subcommands.Add(Create());
        user.Subcommands.Add(Delete());
        return user;
    }

    private static Option<string> MechanismOption()
    {
        var o = new Option<string>("--mechanism", "-m") { Description = "SCRAM-SHA-256 or SCRAM-SHA-512", DefaultValueFactory = _ => "SCRAM-SHA-256" };
        o.AcceptOnlyFromAmong("SCRAM-SHA-256", "SCRAM-SHA-512");
        return o;
    }

    private static sbyte Code(string mechanism) => (sbyte)Array.IndexOf(Mechanisms, mechanism);

    private static async Task<DescribeUserScramCredentialsResponse> DescribeAsync(CommandContext ctx, string[]? users)
    {
        var conn = await ctx.Cluster.AnyAsync(ctx.Token);
        var request = new DescribeUserScramCredentialsRequest { Users = users?.Select(u => new DescribeUserScramCredentialsRequest.UserName { Name = u }).ToList() };
        var r = await conn.SendAsync<DescribeUserScramCredentialsResponse>(ApiKey.DescribeUserScramCredentials, conn.Version(ApiKey.DescribeUserScramCredentials, 0), request, ctx.Token);
        CliException.ThrowIf(r.ErrorCode, "DescribeUserScramCredentials", r.ErrorMessage);
        return r;
    }

    private static Command List()
    {
        var c = new Command("list", "List SCRAM users and their mechanisms");
        c.Aliases.Add("ls");
        CliApp.Action(c, async ctx =>
        {
            var r = await DescribeAsync(ctx, null);
            var users = r.Results.Where(u => u.ErrorCode == 0).OrderBy(u => u.User, StringComparer.Ordinal).ToList();
            var json = new JsonArray(users.Select(u => (JsonNode)new JsonObject
            {
                ["user"] = u.User,
                ["credentials"] = new JsonArray(u.CredentialInfos.Select(ci => (JsonNode)new JsonObject { ["mechanism"] = Mechanisms[Math.Clamp((int)ci.Mechanism, 0, 2)], ["iterations"] = ci.Iterations }).ToArray()),
            }).ToArray());
            ctx.Output.Emit(json, console =>
            {
                var t = Output.Table("USER", "MECHANISMS");
                foreach (var u in users)
                {
                    Output.Row(t, u.User, string.Join(", ", u.CredentialInfos.Select(ci => $"{Mechanisms[Math.Clamp((int)ci.Mechanism, 0, 2)]} ({ci.Iterations} iterations)")));
                }

                console.Write(t);
            });
            return ExitCodes.Ok;
        });
        return c;
    }

    private static Command Create()
    {
        var name = new Argument<string>("user") { Description = "User name" };
        var password = new Option<string?>("--password") { Description = "Password (default: read from stdin)" };
        var mechanism = MechanismOption();
        var iterations = new Option<int>("--iterations") { Description = "SCRAM iterations (4096-16384)", DefaultValueFactory = _ => 4096 };
        var c = new Command("create", "Create or update a SCRAM user") { name, password, mechanism, iterations };
        c.Aliases.Add("alter");
        CliApp.Action(c, async ctx =>
        {
            var secret = ctx.Get(password) ?? (await Console.In.ReadLineAsync(ctx.Token))?.TrimEnd('\r', '\n');
            if (string.IsNullOrEmpty(secret))
            {
                throw new CliException(ExitCodes.Usage, "give --password or the password on stdin");
            }

            var mech = ctx.Get(mechanism)!;
            var salt = RandomNumberGenerator.GetBytes(32);
            var hash = mech == "SCRAM-SHA-512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;
            var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(secret), salt, ctx.Get(iterations), hash, hash == HashAlgorithmName.SHA512 ? 64 : 32);
            var request = new AlterUserScramCredentialsRequest
            {
                Upsertions = [new AlterUserScramCredentialsRequest.ScramCredentialUpsertion { Name = ctx.Get(name)!, Mechanism = Code(mech), Iterations = ctx.Get(iterations), Salt = salt, SaltedPassword = salted }],
            };
            return await AlterAsync(ctx, request, $"created ({mech})");
        });
        return c;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("user") { Description = "User name" };
        var mechanism = new Option<string?>("--mechanism", "-m") { Description = "Only this mechanism (default: all the user has)" };
        var c = new Command("delete", "Delete a SCRAM user's credentials") { name, mechanism };
        c.Aliases.Add("rm");
        CliApp.Action(c, async ctx =>
        {
            var user = ctx.Get(name)!;
            var mechs = ctx.Get(mechanism) is { } m ? [m] : (await DescribeAsync(ctx, [user])).Results.Where(u => u.ErrorCode == 0).SelectMany(u => u.CredentialInfos).Select(ci => Mechanisms[Math.Clamp((int)ci.Mechanism, 0, 2)]).ToArray();
            if (mechs.Length == 0)
            {
                throw new CliException(ExitCodes.NotFound, $"user '{user}': RESOURCE_NOT_FOUND (no SCRAM credentials)");
            }

            var request = new AlterUserScramCredentialsRequest
            {
                Deletions = mechs.Select(x => new AlterUserScramCredentialsRequest.ScramCredentialDeletion { Name = user, Mechanism = Code(x) }).ToList(),
            };
            return await AlterAsync(ctx, request, "deleted");
        });
        return c;
    }

    private static async Task<int> AlterAsync(CommandContext ctx, AlterUserScramCredentialsRequest request, string done)
    {
        var conn = await ctx.Cluster.AnyAsync(ctx.Token);
        var r = await conn.SendAsync<AlterUserScramCredentialsResponse>(ApiKey.AlterUserScramCredentials, conn.Version(ApiKey.AlterUserScramCredentials, 0), request, ctx.Token);
        return TopicCommands.Report(ctx, r.Results.Select(u => (u.User, u.ErrorCode, u.ErrorMessage, Detail: string.Empty)), done, null);
    }
}
