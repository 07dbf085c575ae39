using Moldau.Cluster.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.Cluster.Tests.ObjectStore;

/// <summary>The RGW the tests share: its three daemons run, and what it cost to start is printed.</summary>
[Collection(CephRgwCollection.Name)]
public sealed class CephRgwServerTests(CephRgwServer rgw, ITestOutputHelper output)
{
    [Fact]
    public void MonitorOsdAndGatewayRunUnderTheTemporaryDirectory()
    {
        Assert.Equal(3, rgw.Pids.Count);
        var rss = rgw.ResidentKiB();
        Assert.Equal(["mon", "osd", "rgw"], rss.Keys.ToArray());
        foreach (var pid in rgw.Pids)
        {
            // Each process we started is alive and was given our ceph.conf, not the system's.
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            Assert.Contains(Path.Combine(rgw.Directory, "ceph.conf"), commandLine);
        }

        Assert.True(File.Exists(Path.Combine(rgw.Directory, "log", "client.rgw.0.log")));
        output.WriteLine($"RGW at {rgw.Endpoint} started in {rgw.StartTime.TotalSeconds:F1} s; RSS KiB: {string.Join(", ", rss.Select(p => $"{p.Key} {p.Value}"))}, total {rss.Values.Sum() / 1024} MiB");
    }
}
