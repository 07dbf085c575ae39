using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Npgsql;

namespace Moldau.Cluster.Catalog;

/// <summary>A partition's new high watermark, as a commit announced it.</summary>
/// <param name="Partition">The partition.</param>
/// <param name="HighWatermark">Its high watermark after the commit.</param>
public readonly record struct HighWatermarkAdvanced(TopicIdPartition Partition, long HighWatermark);

/// <summary>
/// LISTENs on <see cref="ClusterCatalog.CommitChannel"/> over a connection of its own and reports
/// each commit's partitions, so a fetch waiting at the high watermark wakes without polling. When the
/// connection is lost, notifications sent meanwhile are lost with it: after reconnecting it calls
/// <c>onResync</c>, meaning "any partition may have moved", and waiters re-read.
/// </summary>
public sealed class CommitListener : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly Action<IReadOnlyList<HighWatermarkAdvanced>> _onCommit;
    private readonly Action _onResync;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;

    /// <summary>Starts listening.</summary>
    /// <param name="dataSource">Where to connect (<see cref="ClusterCatalog.DataSource"/>).</param>
    /// <param name="onCommit">Called with each notification's partitions, on the listener's task.</param>
    /// <param name="onResync">Called after the connection was lost and is back: notifications may have been missed.</param>
    /// <param name="time">The clock for the reconnect back-off.</param>
    /// <param name="logger">Where a lost connection is logged.</param>
    public CommitListener(
        NpgsqlDataSource dataSource,
        Action<IReadOnlyList<HighWatermarkAdvanced>> onCommit,
        Action onResync,
        TimeProvider? time = null,
        ILogger? logger = null)
    {
        _dataSource = dataSource;
        _onCommit = onCommit;
        _onResync = onResync;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Completes once the first LISTEN is in place: commits from then on are reported.</summary>
    public Task Listening => _listening.Task;

    private async Task RunAsync()
    {
        var token = _stop.Token;
        var lost = false;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(token);
                connection.Notification += (_, e) =>
                {
                    if (e.Channel == ClusterCatalog.CommitChannel)
                    {
                        _onCommit(Parse(e.Payload));
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {ClusterCatalog.CommitChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(token);
                }

                _listening.TrySetResult();
                if (lost)
                {
                    _onResync();
                    lost = false;
                }

                while (true)
                {
                    await connection.WaitAsync(token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
            {
                lost = true;
                _logger.LogWarning(e, "cluster catalog: LISTEN {Channel} connection lost; reconnecting", ClusterCatalog.CommitChannel);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Reads a payload of <see cref="ClusterCatalog.NotifyPayloads"/>; entries it can't read are skipped.</summary>
    internal static IReadOnlyList<HighWatermarkAdvanced> Parse(string payload)
    {
        var list = new List<HighWatermarkAdvanced>();
        foreach (var entry in payload.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split(':');
            if (parts.Length == 3
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var partition)
                && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var hw))
            {
                try
                {
                    list.Add(new HighWatermarkAdvanced(new TopicIdPartition(Uuid.Parse(parts[0]), partition), hw));
                }
                catch (FormatException)
                {
                }
            }
        }

        return list;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
