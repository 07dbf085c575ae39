using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Moldau.Cluster.Cleanup;

/// <summary>
/// Runs a broker's <see cref="ClusterCleanupJob"/> every <see cref="ClusterCleanupOptions.Interval"/>
/// until stopped. Every broker runs one; the job's claims share the work. A failed run (PostgreSQL
/// or the bucket unreachable) is logged and the next run tries again.
/// </summary>
public sealed class ClusterCleanupRunner : IAsyncDisposable
{
    private readonly ClusterCleanupJob _job;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _runs;
    private long _failures;

    /// <summary>A runner of <paramref name="job"/>; call <see cref="Start"/>.</summary>
    public ClusterCleanupRunner(ClusterCleanupJob job, TimeProvider? time = null, ILogger? logger = null)
    {
        _job = job;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Runs completed (successful or not).</summary>
    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Runs that failed.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Called after each successful run with what it did (for metrics and tests).</summary>
    public Action<CleanupReport>? OnRun { get; init; }

    /// <summary>Starts the periodic runs (the first at once).</summary>
    public void Start()
    {
        if (_loop is not null)
        {
            throw new InvalidOperationException("the clean-up runner is started already");
        }

        _loop = Task.Run(() => LoopAsync(_stop.Token));
    }

    /// <summary>Stops the runs and waits for the one in progress to end (its claim ends with it).</summary>
    public async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }

        if (_loop is { } loop)
        {
            await loop;
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var report = await _job.RunOnceAsync(cancellationToken);
                OnRun?.Invoke(report);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref _failures);
                _logger.LogWarning(e, "cluster clean-up run failed; next run in {Interval}", _job.Options.Interval);
            }
            finally
            {
                Interlocked.Increment(ref _runs);
            }

            try
            {
                await Task.Delay(_job.Options.Interval, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
