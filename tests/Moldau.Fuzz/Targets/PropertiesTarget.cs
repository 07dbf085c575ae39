using System.Text;
using Moldau.Server.Configuration;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// server.properties: the input is the file's text (UTF-8), parsed and turned into the server's
/// configuration. A bad value must end in <see cref="ConfigException"/> (one clear line at start),
/// never anything else.
/// </summary>
internal sealed class PropertiesTarget : FuzzTarget
{
    public override string Name => "properties";

    public override string Description => "PropertiesFile.Parse and ServerConfig.From";

    public override bool IsExpected(Exception e) => e is ConfigException;

    public override void Run(ReadOnlyMemory<byte> input)
    {
        var props = PropertiesFile.Parse(Encoding.UTF8.GetString(input.Span));
        ServerConfig.From(props);
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        yield return ("kraft", Encoding.UTF8.GetBytes(
            "# a KRaft single node\nprocess.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@localhost:9093\n" +
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n" +
            "advertised.listeners=PLAINTEXT://localhost:9092\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n" +
            "log.dirs=/tmp/kraft-combined-logs\nnum.partitions=3\noffsets.topic.num.partitions=50\nlog.segment.bytes=1073741824\n"));
        yield return ("escapes", Encoding.UTF8.GetBytes(
            "! comment\nkey\\ with\\ spaces = a\\tb\\u0041\\\n   continued\nlog.dir: ./data\nsocket.request.max.bytes 1048576\nauto.create.topics.enable=FALSE\n"));
    }
}
