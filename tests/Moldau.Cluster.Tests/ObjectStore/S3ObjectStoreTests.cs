using System.Net;
using System.Net.Sockets;
using System.Text;
using Moldau.Cluster.ObjectStore;
using Moldau.Cluster.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.Cluster.Tests.ObjectStore;

/// <summary><see cref="S3ObjectStore"/> against a real Ceph RGW (one per run, a bucket per test).</summary>
[Collection(CephRgwCollection.Name)]
public sealed class S3ObjectStoreTests(CephRgwServer rgw, ITestOutputHelper output) : IAsyncLifetime
{
    private S3ObjectStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = new S3ObjectStore(rgw.Options(await rgw.CreateBucketAsync()));
    }

    public Task DisposeAsync()
    {
        _store.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task PutGetRangedGetDeleteRoundTrip()
    {
        var data = Encoding.ASCII.GetBytes("0123456789abcdefghijklmnopqrstuvwxyz");
        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync("c/2026/01/01/a", data));

        Assert.Equal(data, await _store.GetAsync("c/2026/01/01/a"));

        var range = new byte[5];
        Assert.Equal(5, await _store.ReadAsync("c/2026/01/01/a", 10, range));
        Assert.Equal("abcde", Encoding.ASCII.GetString(range));

        // A range running past the end returns what there is; one starting at the end returns nothing.
        var tail = new byte[10];
        Assert.Equal(4, await _store.ReadAsync("c/2026/01/01/a", 32, tail));
        Assert.Equal("wxyz", Encoding.ASCII.GetString(tail, 0, 4));
        Assert.Equal(0, await _store.ReadAsync("c/2026/01/01/a", data.Length, tail));

        await _store.DeleteAsync("c/2026/01/01/a");
        var missing = await Assert.ThrowsAsync<ObjectStoreException>(() => _store.GetAsync("c/2026/01/01/a"));
        Assert.Equal(ObjectStoreErrorKind.NotFound, missing.Kind);
        Assert.Equal(404, missing.StatusCode);
        var missingRange = await Assert.ThrowsAsync<ObjectStoreException>(() => _store.ReadAsync("c/2026/01/01/a", 0, range));
        Assert.Equal(ObjectStoreErrorKind.NotFound, missingRange.Kind);

        // Deleting what is not there succeeds (S3 semantics), so the sweep can repeat itself.
        await _store.DeleteAsync("c/2026/01/01/a");
    }

    [Fact]
    public async Task SecondPutOfTheSameKeyIsRefusedAndLeavesTheFirstObject()
    {
        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync("k", "first"u8.ToArray()));
        Assert.Equal(PutResult.AlreadyExists, await _store.PutIfAbsentAsync("k", "second, longer"u8.ToArray()));
        Assert.Equal("first"u8.ToArray(), await _store.GetAsync("k"));
    }

    [Fact]
    public async Task ConcurrentCreateOnlyPutsOfOneKeyLetExactlyOneWin()
    {
        // RGW checks If-None-Match when it writes the head object; racing writers of one key must
        // still end with exactly one Created and the object holding the winner's bytes.
        for (var round = 0; round < 20; round++)
        {
            var key = "race/" + round;
            var bodies = Enumerable.Range(0, 4).Select(i => Encoding.ASCII.GetBytes($"writer {i} round {round} " + new string('x', 64 * 1024))).ToArray();
            var results = await Task.WhenAll(bodies.Select(b => Task.Run(() => _store.PutIfAbsentAsync(key, b))));
            var winners = results.Select((r, i) => (r, i)).Where(x => x.r == PutResult.Created).Select(x => x.i).ToList();
            Assert.True(winners.Count == 1, $"round {round}: {winners.Count} writers were told Created ({string.Join(", ", results)})");
            Assert.Equal(bodies[winners[0]], await _store.GetAsync(key));
        }
    }

    [Fact]
    public async Task LargeObjectRoundTripsByteExact()
    {
        var data = new byte[(9 << 20) + 12345];
        new Random(14).NextBytes(data);
        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync("big", data));

        Assert.Equal(data, await _store.GetAsync("big"));

        // A range across RGW's internal 4 MiB stripe boundary.
        var range = new byte[1 << 20];
        var position = (4 << 20) - 1000;
        Assert.Equal(range.Length, await _store.ReadAsync("big", position, range));
        Assert.True(range.AsSpan().SequenceEqual(data.AsSpan(position, range.Length)));
    }

    [Fact]
    public async Task ListReturnsTheKeysUnderAPrefixAcrossPages()
    {
        // More keys than one page of ListObjectsV2 (1000), to follow continuation tokens.
        var keys = Enumerable.Range(0, 1010).Select(i => $"a/{i:D5}").ToList();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, ct) =>
            Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync(key, Encoding.ASCII.GetBytes(key), ct)));
        await _store.PutIfAbsentAsync("b/00000", new byte[3]);
        await _store.PutIfAbsentAsync("ab/0", new byte[3]);

        var listed = new List<ObjectInfo>();
        await foreach (var info in _store.ListAsync("a/"))
        {
            listed.Add(info);
        }

        Assert.Equal(keys, listed.Select(o => o.Key).ToList());
        Assert.All(listed, o => Assert.Equal(7, o.Size));
        Assert.All(listed, o => Assert.True(Math.Abs((DateTimeOffset.UtcNow - o.LastModified).TotalMinutes) < 10, $"{o.Key} last modified {o.LastModified}"));

        var b = new List<string>();
        await foreach (var info in _store.ListAsync("b/"))
        {
            b.Add(info.Key);
        }

        Assert.Equal(["b/00000"], b);
    }

    [Fact]
    public async Task WriterPositionsReadBackByteExact()
    {
        var random = new Random(7);
        using var writer = new BatchObjectWriter(initialCapacity: 1024);
        var batches = new List<byte[]>();
        for (var i = 0; i < 200; i++)
        {
            var batch = new byte[random.Next(1, 40_000)];
            random.NextBytes(batch);
            batches.Add(batch);
            writer.Add(batch);
        }

        var key = ObjectKeys.NewProduceKey("moldau-test", DateTimeOffset.UtcNow);
        Assert.Equal(PutResult.Created, await writer.UploadAsync(_store, key));

        // A retried upload of the same object and key is recognised, not written twice.
        Assert.Equal(PutResult.AlreadyExists, await writer.UploadAsync(_store, key));

        for (var i = 0; i < batches.Count; i++)
        {
            var location = writer.Locations[i];
            var read = new byte[location.Size];
            Assert.Equal(location.Size, await _store.ReadAsync(key, location.Position, read));
            Assert.True(read.AsSpan().SequenceEqual(batches[i]), $"batch {i} at {location}");
        }
    }

    [Fact]
    public async Task WrongSecretIsAPermanentError()
    {
        using var store = new S3ObjectStore(rgw.Options(_store.Bucket) with { SecretKey = "not-the-secret" });
        var e = await Assert.ThrowsAsync<ObjectStoreException>(() => store.PutIfAbsentAsync("k", new byte[1]));
        Assert.Equal(ObjectStoreErrorKind.Permanent, e.Kind);
        Assert.Equal(403, e.StatusCode);
        output.WriteLine(e.Message);
    }

    [Fact]
    public async Task MissingBucketIsAPermanentError()
    {
        using var store = new S3ObjectStore(rgw.Options("no-such-bucket-" + Guid.NewGuid().ToString("N")[..8]));
        var e = await Assert.ThrowsAsync<ObjectStoreException>(() => store.PutIfAbsentAsync("k", new byte[1]));
        Assert.Equal(ObjectStoreErrorKind.Permanent, e.Kind);
        Assert.Equal("NoSuchBucket", e.ErrorCode);

        var get = await Assert.ThrowsAsync<ObjectStoreException>(() => store.GetAsync("k"));
        Assert.Equal(ObjectStoreErrorKind.Permanent, get.Kind);
    }

    [Fact]
    public async Task NothingListeningIsARetriableError()
    {
        // A port nobody listens on: the connection is refused, as when RGW is down.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        using var store = new S3ObjectStore(rgw.Options("b") with { Endpoint = $"http://127.0.0.1:{port}", MaxSdkRetries = 0 });
        var put = await Assert.ThrowsAsync<ObjectStoreException>(() => store.PutIfAbsentAsync("k", new byte[1]));
        Assert.True(put.IsRetriable, put.ToString());
        Assert.Null(put.StatusCode);
        var read = await Assert.ThrowsAsync<ObjectStoreException>(() => store.ReadAsync("k", 0, new byte[1]));
        Assert.True(read.IsRetriable, read.ToString());
    }

    [Fact]
    public async Task CancellationByTheCallerIsNotMapped()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _store.PutIfAbsentAsync("k", new byte[1], cancelled.Token));
    }
}
