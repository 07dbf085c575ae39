using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Moldau.Broker;
using Moldau.Broker.Metrics;
using Moldau.Server.Network;
using Moldau.Storage;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Moldau.Server.Http;

/// <summary>
/// The broker's HTTP listener (moldau.http.listeners): /metrics in Prometheus' text format, or
/// OpenMetrics when the scraper asks for it in Accept (OpenTelemetry's Prometheus exporter),
/// /health/live and /health/ready. It runs on Kestrel with tight limits, apart from the Kafka
/// listeners: its own sockets and connection limit, headers within 5 s, slow readers cut off by
/// Kestrel's minimum data rate, so a bad or slow HTTP client costs the Kafka side nothing but a
/// little CPU.
/// </summary>
internal sealed class HttpEndpoint : IAsyncDisposable
{
    /// <summary>The meter of the network metrics (connections per listener).</summary>
    public const string MeterName = "Moldau.Server";

    /// <summary>How long /health/ready waits for a readiness check.</summary>
    public static readonly TimeSpan ReadinessTimeout = TimeSpan.FromSeconds(2);

    /// <summary>HTTP connections open at once; more wait in the accept backlog.</summary>
    public const int MaxConnections = 64;

    private readonly WebApplication _app;
    private readonly MeterProvider _meters;
    private readonly Meter _meter;

    private HttpEndpoint(WebApplication app, MeterProvider meters, Meter meter)
    {
        _app = app;
        _meters = meters;
        _meter = meter;
    }

    /// <summary>The addresses bound (port 0 resolved).</summary>
    public IReadOnlyList<string> Urls => [.. _app.Urls];

    /// <summary>
    /// Binds <paramref name="urls"/> and serves them. <paramref name="listening"/> says whether the
    /// Kafka listeners accept connections; <paramref name="checks"/> are what readiness also waits for.
    /// </summary>
    public static async Task<HttpEndpoint> StartAsync(IReadOnlyList<HttpListenerConfig> urls, KafkaBroker broker, IReadOnlyList<KafkaListener> listeners, Func<bool> listening, IReadOnlyList<IReadinessCheck> checks)
    {
        var meter = new Meter(MeterName);
        meter.CreateObservableGauge(
            "kafka_server_socket_server_metrics_connection_count",
            () => listeners.Select(l => new Measurement<int>(l.ConnectionCount, new KeyValuePair<string, object?>("listener", l.Name))),
            null,
            "Connections open, per Kafka listener (Kafka's socket-server-metrics connection-count).");
        meter.CreateObservableCounter(
            "kafka_server_socket_server_metrics_connection_creation",
            () => listeners.Select(l => new Measurement<long>(l.ConnectionsCreated, new KeyValuePair<string, object?>("listener", l.Name))),
            null,
            "Connections accepted, per Kafka listener (connection-creation-total).");

        // The SDK reads the broker's meters, the storage's, the network's and the runtime's own
        // (System.Runtime: GC, heap, thread pool, CPU, working set). Counters get _total.
        var meters = Sdk.CreateMeterProviderBuilder()
            .AddMeter(BrokerMetrics.MeterName, StorageMetrics.MeterName, MeterName, "System.Runtime")
            .AddPrometheusExporter(o =>
            {
                o.ScrapeResponseCacheDurationMilliseconds = 0;
                o.ScopeInfoEnabled = false;
                o.TargetInfoEnabled = false;
            })
            .Build();

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            var limits = kestrel.Limits;
            limits.MaxConcurrentConnections = MaxConnections;
            limits.MaxConcurrentUpgradedConnections = 0;
            limits.RequestHeadersTimeout = TimeSpan.FromSeconds(5);
            limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            limits.MaxRequestLineSize = 4096;
            limits.MaxRequestHeadersTotalSize = 16 * 1024;
            limits.MaxRequestHeaderCount = 50;
            limits.MaxRequestBodySize = 4096;
            limits.MaxRequestBufferSize = 64 * 1024;
            limits.MaxResponseBufferSize = 64 * 1024;
            foreach (var url in urls)
            {
                kestrel.Listen(url.EndPoint, l => l.Protocols = HttpProtocols.Http1);
            }
        });

        var app = builder.Build();
        app.UseOpenTelemetryPrometheusScrapingEndpoint(
            meters,
            context => context.Request.Path == "/metrics" && HttpMethods.IsGet(context.Request.Method),
            null,
            branch => branch.Use(async (context, next) =>
            {
                // Group lag needs the group coordinator, which gauges can't wait for: read it first.
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                try
                {
                    await broker.RefreshMetricsAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
                {
                    // The lag of the last scrape stays; the rest is served.
                }

                await next(context).ConfigureAwait(false);
            }),
            null);
        app.UseRouting();
        // RequestDelegate handlers, not minimal-API lambdas: those are compiled at run time by
        // reflection, which a Native AOT binary cannot do.
        app.MapGet("/health/live", context => TextAsync(context, StatusCodes.Status200OK, "live\n"));
        app.MapGet("/health/ready", async context =>
        {
            var why = new List<string>();
            if (!broker.Ready)
            {
                why.Add("logs: still loading");
            }

            if (!listening())
            {
                why.Add("listeners: not yet accepting");
            }

            foreach (var check in checks)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                timeout.CancelAfter(ReadinessTimeout);
                string? reason;
                try
                {
                    reason = await check.CheckAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
                {
                    reason = e is OperationCanceledException ? $"no answer within {ReadinessTimeout.TotalSeconds:0} s" : e.Message;
                }

                if (reason is not null)
                {
                    why.Add($"{check.Name}: {reason}");
                }
            }

            await (why.Count == 0
                ? TextAsync(context, StatusCodes.Status200OK, "ready\n")
                : TextAsync(context, StatusCodes.Status503ServiceUnavailable, string.Join('\n', why) + "\n")).ConfigureAwait(false);
        });

        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            meters.Dispose();
            meter.Dispose();
            throw;
        }

        return new HttpEndpoint(app, meters, meter);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await _app.StopAsync(stop.Token).ConfigureAwait(false);
        }

        await _app.DisposeAsync().ConfigureAwait(false);
        _meters.Dispose();
        _meter.Dispose();
    }

    private static Task TextAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text, context.RequestAborted);
    }
}
