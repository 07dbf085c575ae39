using System.CommandLine;
using System.Reflection;
using Moldau.Cli.Client;
using Moldau.Cli.Commands;

namespace Moldau.Cli;

/// <summary>
/// The admin commands of the moldau binary (<c>moldau topic list</c>, <c>moldau group describe g</c>,
/// ...), in the style of rpk and Kafka's scripts. They speak the Kafka protocol, so they work
/// against Kafka as well as Moldau. Without a command the binary starts the broker instead
/// (Moldau.Server decides with <see cref="Handles"/>).
/// </summary>
public static class CliApp
{
    /// <summary>The words that start a command rather than the broker.</summary>
    public static readonly IReadOnlySet<string> CommandWords = new HashSet<string>(StringComparer.Ordinal)
    {
        "topic", "topics", "group", "groups", "produce", "consume", "configs", "config", "acl", "acls",
        "user", "users", "cluster", "completion", "--version",
    };

    /// <summary>The binary's version (informational: version+commit).</summary>
    public static string Version { get; } =
        (Assembly.GetEntryAssembly() ?? typeof(CliApp).Assembly).GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>--bootstrap host:port,...</summary>
    internal static readonly Option<string?> Bootstrap = new("--bootstrap", "-b", "--bootstrap-server", "--brokers")
    {
        Description = "Brokers to start from, host:port[,host:port] (default: bootstrap.servers from --config, $MOLDAU_BOOTSTRAP, localhost:9092)",
        Recursive = true,
    };

    /// <summary>--config client.properties</summary>
    internal static readonly Option<string?> Config = new("--config", "--command-config")
    {
        Description = "A Kafka client properties file: bootstrap.servers, security.protocol, sasl.*, ssl.*",
        Recursive = true,
    };

    /// <summary>--output table|json</summary>
    internal static readonly Option<string> OutputFormat = new("--output", "-o")
    {
        Description = "table (fits the terminal) or json (for scripts)",
        DefaultValueFactory = _ => "table",
        Recursive = true,
    };

    /// <summary>True when <paramref name="args"/> name a command (or --version) rather than broker start-up.</summary>
    public static bool Handles(string[] args) =>
        args.Length > 0 && (CommandWords.Contains(args[0]) || args[0].StartsWith("[suggest", StringComparison.Ordinal));

    /// <summary>Runs the command line and returns the exit code (<see cref="ExitCodes"/>).</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && !args[0].StartsWith("[suggest", StringComparison.Ordinal))
        {
            foreach (var e in parse.Errors)
            {
                Console.Error.WriteLine($"moldau: {e.Message}");
            }

            Console.Error.WriteLine("Run 'moldau <command> --help' for usage.");
            return ExitCodes.Usage;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>The command tree.</summary>
    public static RootCommand Build()
    {
        OutputFormat.AcceptOnlyFromAmong("table", "json");
        var root = new RootCommand("Moldau: a Kafka-compatible broker (run without a command to start it) and its admin commands.");
        root.Options.Add(Bootstrap);
        root.Options.Add(Config);
        root.Options.Add(OutputFormat);
        root.Subcommands.Add(TopicCommands.Build());
        root.Subcommands.Add(GroupCommands.Build());
        root.Subcommands.Add(ProduceCommand.Build());
        root.Subcommands.Add(ConsumeCommand.Build());
        root.Subcommands.Add(ConfigCommands.Build());
        root.Subcommands.Add(AclCommands.Build());
        root.Subcommands.Add(UserCommands.Build());
        root.Subcommands.Add(ClusterCommands.Build());
        root.Subcommands.Add(CompletionCommand.Build());
        return root;
    }

    /// <summary>
    /// Sets <paramref name="command"/>'s action: builds the connection settings and output, runs
    /// <paramref name="body"/>, and turns failures into one stderr line and an exit code.
    /// </summary>
    internal static void Action(Command command, Func<CommandContext, Task<int>> body)
    {
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = new Output(parse.GetValue(OutputFormat) == "json");
            try
            {
                var settings = ClientSettings.Load(parse.GetValue(Config), parse.GetValue(Bootstrap));
                await using var cluster = new KafkaCluster(settings);
                return await body(new CommandContext(parse, cluster, output, cancellationToken));
            }
            catch (CliException e)
            {
                Console.Error.WriteLine($"moldau: {e.Message}");
                return e.ExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return ExitCodes.Interrupted;
            }
            catch (Moldau.Protocol.KafkaProtocolException e)
            {
                Console.Error.WriteLine($"moldau: cannot decode the broker's answer: {e.Message}");
                return ExitCodes.Failed;
            }
            catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"moldau: {e.Message}");
                return ExitCodes.Failed;
            }
        });
    }
}

/// <summary>What a command's action works with.</summary>
internal sealed record CommandContext(ParseResult Parse, KafkaCluster Cluster, Output Output, CancellationToken Token)
{
    /// <summary>The value of <paramref name="option"/>.</summary>
    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    /// <summary>The value of <paramref name="argument"/>.</summary>
    public T? Get<T>(Argument<T> argument) => Parse.GetValue(argument);
}
