using Moldau.Server.Configuration;

namespace Moldau.Server;

/// <summary>
/// <c>moldau [server.properties] [--override key=value]...</c>, as Kafka's kafka-server-start.sh.
/// </summary>
internal sealed record CommandLine(string? PropertiesPath, IReadOnlyDictionary<string, string> Overrides, bool Help)
{
    /// <summary>SCRAM credentials from --add-scram, written before the broker serves.</summary>
    public IReadOnlyList<Moldau.Security.Sasl.ScramCredentialSpec> AddScram { get; init; } = [];

    public const string Usage = """
        Usage: moldau [PATH/server.properties] [--override key=value]...

        Starts a Moldau broker. With no file it runs with Kafka's defaults and an embedded
        data directory: listeners=PLAINTEXT://:9092, log.dirs=./data.
        Options:
          --override key=value   set a server.properties key (repeatable; wins over the file)
          --add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]'
                                 store a SCRAM credential in the metadata log before serving,
                                 as kafka-storage format --add-scram (repeatable; also
                                 iterations=4096..16384, salt=<base64>, saltedpassword=<base64>)
          --help                 show this text
          --version              print the version
        Admin commands (Kafka protocol; against Moldau or Kafka; each has --help):
          moldau topic list|describe|create|alter-config|add-partitions|delete
          moldau group list|describe|reset|delete
          moldau produce TOPIC / moldau consume TOPIC
          moldau configs describe|alter   moldau acl list|create|delete
          moldau user list|create|delete  moldau cluster info
          moldau completion bash|zsh|fish
          common options: --bootstrap host:port, --config client.properties, --output json
        Environment: MOLDAU_LOG_LEVEL=debug|info|warning|error (default info)
        """;

    public static CommandLine Parse(string[] args)
    {
        string? path = null;
        var overrides = new Dictionary<string, string>(StringComparer.Ordinal);
        var scram = new List<Moldau.Security.Sasl.ScramCredentialSpec>();
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a is "--help" or "-h")
            {
                return new CommandLine(null, overrides, true);
            }

            if (a == "--add-scram")
            {
                if (i + 1 >= args.Length)
                {
                    throw new ConfigException("--add-scram needs 'SCRAM-SHA-256=[name=...,password=...]'");
                }

                try
                {
                    scram.Add(Moldau.Security.Sasl.ScramCredentialSpec.Parse(args[++i]));
                }
                catch (FormatException e)
                {
                    throw new ConfigException($"--add-scram: {e.Message}");
                }
            }
            else if (a == "--override")
            {
                if (i + 1 >= args.Length)
                {
                    throw new ConfigException("--override needs key=value");
                }

                var kv = args[++i];
                var eq = kv.IndexOf('=');
                if (eq <= 0)
                {
                    throw new ConfigException($"--override: '{kv}' is not key=value");
                }

                overrides[kv[..eq].Trim()] = kv[(eq + 1)..].Trim();
            }
            else if (a.StartsWith("--", StringComparison.Ordinal))
            {
                throw new ConfigException($"unknown option '{a}'");
            }
            else if (path is null)
            {
                path = a;
            }
            else
            {
                throw new ConfigException($"unexpected argument '{a}'");
            }
        }

        return new CommandLine(path, overrides, false) { AddScram = scram };
    }

    /// <summary>The properties from the file (if any) with the overrides applied.</summary>
    public Dictionary<string, string> LoadProperties()
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        if (PropertiesPath is not null)
        {
            if (!File.Exists(PropertiesPath))
            {
                throw new ConfigException($"properties file '{PropertiesPath}' not found");
            }

            props = PropertiesFile.Parse(File.ReadAllText(PropertiesPath));
        }

        foreach (var (k, v) in Overrides)
        {
            props[k] = v;
        }

        return props;
    }
}
