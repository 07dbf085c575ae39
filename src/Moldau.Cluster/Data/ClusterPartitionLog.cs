using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Moldau.Cluster.Catalog;
using Moldau.Protocol.Records;
using Moldau.Storage;
using Moldau.Storage.Cleaning;

namespace Moldau.Cluster.Data;

/// <summary>
/// A partition in cluster mode as the broker's handlers see it (<see cref="IPartitionLog"/>): its
/// offsets are what PostgreSQL last said (the commit's NOTIFY, this broker's own commits, a poll),
/// appends go through the broker's <see cref="CommitPipeline"/> (<see cref="ICommitAssignedLog"/>),
/// and reads are served from an in-memory cache of batches (base offsets already patched) that a
/// background load fills from the object store: a read that misses starts the load and returns
/// nothing, and the load's end wakes the waiting fetches as an append would
/// (<see cref="IPartitionLog.OnHighWatermarkAdvanced"/>).
/// </summary>
public sealed class ClusterPartitionLog : ICommitAssignedLog
{
    private readonly ClusterData _data;
    private readonly SortedList<long, byte[]> _cache = [];
    private readonly Lock _cacheLock = new();
    private long _cacheBytes;
    private long _highWatermark;
    private long _logStartOffset;
    private int _epoch;
    private int _loading;
    private int _disposed;

    internal ClusterPartitionLog(ClusterData data, TopicIdPartition id, string name, PartitionLogOptions options, PartitionState state)
    {
        _data = data;
        Id = id;
        Name = name;
        Options = options;
        _highWatermark = state.HighWatermark;
        _logStartOffset = state.LogStartOffset;
    }

    /// <summary>The partition's id in the catalog.</summary>
    public TopicIdPartition Id { get; }

    /// <summary>topic-partition, for logs.</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public string Directory => $"cluster:{Name}";

    /// <inheritdoc/>
    public long LogStartOffset => Volatile.Read(ref _logStartOffset);

    /// <inheritdoc/>
    public long HighWatermark => Volatile.Read(ref _highWatermark);

    /// <inheritdoc/>
    public long LastStableOffset => HighWatermark; // no transactions in cluster mode yet

    /// <inheritdoc/>
    public long LogEndOffset => HighWatermark; // nothing is readable before it is committed

    /// <inheritdoc/>
    public long RecoveryPoint => HighWatermark;

    /// <inheritdoc/>
    public Action? OnHighWatermarkAdvanced { get; set; }

    /// <inheritdoc/>
    public PartitionLogOptions Options { get; private set; }

    /// <summary>Bytes of batches this partition holds in memory.</summary>
    public long CachedBytes => Interlocked.Read(ref _cacheBytes);

    /// <inheritdoc/>
    public Task<AppendResult> AppendAsync(Span<byte> batch, int leaderEpoch)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        // The pipeline writes the leader epoch into its own copy.
        return _data.Pipeline.Add(this, batch, leaderEpoch);
    }

    /// <inheritdoc/>
    public AppendResult Append(Span<byte> batch, int leaderEpoch, bool durabilityWanted = false) =>
        throw new NotSupportedException("cluster mode assigns offsets at commit: use AppendAsync");

    /// <summary>PostgreSQL says the high watermark (and log start) are at least these: move forward and wake waiting fetches.</summary>
    internal void Advance(long highWatermark, long logStartOffset = -1)
    {
        if (logStartOffset > Volatile.Read(ref _logStartOffset))
        {
            Volatile.Write(ref _logStartOffset, logStartOffset);
        }

        long current;
        do
        {
            current = Volatile.Read(ref _highWatermark);
            if (highWatermark <= current)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _highWatermark, highWatermark, current) != current);
        OnHighWatermarkAdvanced?.Invoke();
    }

    /// <summary>This broker committed <paramref name="batch"/> at these offsets: cache it (patched) and move the high watermark.</summary>
    internal void Committed(ReadOnlySpan<byte> batch, long baseOffset, long lastOffset)
    {
        var copy = batch.ToArray();
        BinaryPrimitives.WriteInt64BigEndian(copy, baseOffset); // outside the CRC
        Cache(baseOffset, copy);
        Advance(lastOffset + 1);
    }

    private void Cache(long baseOffset, byte[] batch)
    {
        lock (_cacheLock)
        {
            if (_cache.TryAdd(baseOffset, batch))
            {
                _cacheBytes += batch.Length;
            }

            // The oldest batches go first once the partition holds more than its share.
            while (_cacheBytes > _data.CacheBytesPerPartition && _cache.Count > 1)
            {
                _cacheBytes -= _cache.Values[0].Length;
                _cache.RemoveAt(0);
            }
        }
    }

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> Read(long offset, int maxBytes, bool minOneBatch, long maxOffset) =>
        Read(offset, maxBytes, minOneBatch ? long.MaxValue : 0, maxOffset, null);

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> Read(long offset, int maxBytes, long wholeFirstBatchUpTo, long maxOffset, List<byte[]>? rented)
    {
        var end = Math.Min(maxOffset, HighWatermark);
        if (offset >= end)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        var taken = new List<byte[]>();
        long total = 0;
        long loadFrom = -1;
        lock (_cacheLock)
        {
            var keys = _cache.Keys;
            var index = FloorIndex(keys, offset);
            if (index < 0 || LastOffset(_cache.Values[index]) < offset)
            {
                loadFrom = offset;
            }
            else
            {
                var next = offset;
                for (var i = index; i < keys.Count; i++)
                {
                    var batch = _cache.Values[i];
                    if (keys[i] >= end)
                    {
                        break;
                    }

                    if (i > index && keys[i] != next)
                    {
                        loadFrom = next; // a hole in the cache
                        break;
                    }

                    if (total + batch.Length > maxBytes && !(total == 0 && batch.Length <= wholeFirstBatchUpTo))
                    {
                        next = -1;
                        break;
                    }

                    taken.Add(batch);
                    total += batch.Length;
                    next = LastOffset(batch) + 1;
                }

                if (loadFrom < 0 && next >= 0 && next < end)
                {
                    loadFrom = next; // read ahead what is committed but not cached
                }
            }
        }

        if (loadFrom >= 0)
        {
            StartLoad(loadFrom);
        }

        if (total == 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        var buffer = rented is null ? new byte[total] : ArrayPool<byte>.Shared.Rent((int)total);
        rented?.Add(buffer);
        var position = 0;
        foreach (var batch in taken)
        {
            batch.CopyTo(buffer, position);
            position += batch.Length;
        }

        return buffer.AsMemory(0, position);
    }

    private static long LastOffset(byte[] batch) => new RecordBatchHeader(batch).LastOffset;

    private static int FloorIndex(IList<long> keys, long offset)
    {
        int lo = 0, hi = keys.Count - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (keys[mid] <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }

    /// <summary>One load at a time per partition: the batches from <paramref name="offset"/>, looked up in PostgreSQL, read with ranged GETs.</summary>
    private void StartLoad(long offset)
    {
        if (Interlocked.Exchange(ref _loading, 1) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            var loaded = false;
            try
            {
                loaded = await LoadAsync(offset).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _data.Log.LogWarning("cluster: {Partition}: reading from offset {Offset} failed: {Error}", Name, offset, e.Message);
            }
            finally
            {
                Volatile.Write(ref _loading, 0);
            }

            if (loaded)
            {
                OnHighWatermarkAdvanced?.Invoke(); // the fetches waiting for these bytes read again
            }
        });
    }

    private async Task<bool> LoadAsync(long offset)
    {
        var found = await _data.Catalog.FindBatchesAsync(Id, offset, _data.BatchesPerLookup).ConfigureAwait(false);
        if (found is null)
        {
            return false;
        }

        Advance(found.State.HighWatermark, found.State.LogStartOffset);
        var batches = found.Batches;
        var i = 0;
        long bytes = 0;
        while (i < batches.Count && bytes < _data.ReadAheadBytes)
        {
            // Neighbours in the same object are read with one ranged GET.
            var first = batches[i];
            var j = i + 1;
            var length = (long)first.ByteSize;
            while (j < batches.Count && batches[j].ObjectKey == first.ObjectKey && batches[j].BytePosition == first.BytePosition + length)
            {
                length += batches[j].ByteSize;
                j++;
            }

            var buffer = new byte[length];
            var read = 0;
            while (read < length)
            {
                var n = await _data.Store.ReadAsync(first.ObjectKey, first.BytePosition + read, buffer.AsMemory(read)).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException($"object {first.ObjectKey} ends at {first.BytePosition + read}, before its batches");
                }

                read += n;
            }

            var position = 0;
            for (var k = i; k < j; k++)
            {
                var batch = buffer.AsSpan(position, batches[k].ByteSize).ToArray();
                BinaryPrimitives.WriteInt64BigEndian(batch, batches[k].BaseOffset); // outside the CRC
                Cache(batches[k].BaseOffset, batch);
                position += batches[k].ByteSize;
            }

            bytes += length;
            i = j;
        }

        return i > 0;
    }

    /// <inheritdoc/>
    public Task WaitDurableAsync(long offset) => Task.CompletedTask; // a committed batch is durable

    /// <inheritdoc/>
    public void RequestDurableSoon()
    {
    }

    /// <inheritdoc/>
    public void Flush()
    {
    }

    /// <inheritdoc/>
    public OffsetAndTimestamp? FindOffsetForTimestamp(long timestamp, long fromOffset = 0) => null; // not served yet (docs/cluster.md)

    /// <inheritdoc/>
    public OffsetAndTimestamp? FindMaxTimestamp() => null;

    /// <inheritdoc/>
    public void StartEpoch(int epoch)
    {
        if (epoch > Volatile.Read(ref _epoch))
        {
            Volatile.Write(ref _epoch, epoch);
        }
    }

    /// <summary>
    /// Nothing committed is ever taken back in cluster mode, so every epoch up to the current one
    /// "ends" at the high watermark: a client validating its position never finds a truncation.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch) =>
        epoch < 0 || epoch > Volatile.Read(ref _epoch) ? (-1, -1) : (epoch, HighWatermark);

    /// <inheritdoc/>
    public int EpochForOffset(long offset) => offset < HighWatermark ? Volatile.Read(ref _epoch) : -1;

    /// <inheritdoc/>
    public IReadOnlyList<ActiveProducer> ActiveProducers() => [];

    /// <inheritdoc/>
    public IReadOnlyList<AbortedTransaction> AbortedTransactions(long fetchOffset, long upperBoundOffset) => [];

    /// <inheritdoc/>
    public void AdvanceLogStartOffset(long offset) =>
        throw new NotSupportedException("DeleteRecords is not served in cluster mode yet");

    /// <inheritdoc/>
    public IReadOnlyList<SegmentInfo> Segments() => [];

    /// <inheritdoc/>
    public long SizeInBytes => 0;

    /// <inheritdoc/>
    public CleaningResult? CleanIfDirty(CleanerSettings settings) => null;

    /// <inheritdoc/>
    public void Reconfigure(PartitionLogOptions options) => Options = options;

    /// <inheritdoc/>
    public void Dispose()
    {
        Interlocked.Exchange(ref _disposed, 1);
        _data.Forget(this);
    }
}
