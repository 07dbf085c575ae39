namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// Where the JWK Set comes from, kept current. An <c>http://</c> or <c>https://</c> URL is fetched in
/// the background at start (retried with back-off until it works), again every
/// <c>sasl.oauthbearer.jwks.endpoint.refresh.ms</c>, and early when a token names a kid the set
/// lacks (an issuer rotating its keys; at most once per <see cref="ExpediteInterval"/>). A
/// <c>file:</c> URL or a plain path is read at start (a failure stops the broker, as an unreadable
/// file is a configuration error) and read again when its modification time or length changes,
/// checked at most once a second and at once for an unknown kid. A failed refresh keeps the keys
/// it had.
/// </summary>
internal sealed class JwksSource : IDisposable
{
    /// <summary>The least time between two refreshes asked for by unknown kids.</summary>
    public static readonly TimeSpan ExpediteInterval = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan FileCheckInterval = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly string? _path;
    private readonly Uri? _uri;
    private readonly HttpClient? _http;
    private readonly ITimer? _timer;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private volatile JsonWebKeySet? _current;
    private Task _refresh = Task.CompletedTask;
    private DateTimeOffset _lastRefreshStart = DateTimeOffset.MinValue;
    private DateTimeOffset _lastFileCheck;
    private (DateTime Stamp, long Length) _fileVersion;

    public JwksSource(string location, TimeSpan refreshInterval, TimeSpan retryBackoff, TimeSpan retryBackoffMax, TimeProvider time, HttpMessageHandler? httpHandler, Action<string> log)
    {
        _time = time;
        _log = log;
        Location = location;
        if (location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(location, UriKind.Absolute, out _uri))
            {
                throw new OAuthBearerConfigException($"sasl.oauthbearer.jwks.endpoint.url: '{location}' is not a URL");
            }

            _http = httpHandler is null ? new HttpClient() : new HttpClient(httpHandler, disposeHandler: false);
            _http.Timeout = TimeSpan.FromSeconds(10);
            _http.MaxResponseContentBufferSize = 1 << 20;
            _lastRefreshStart = time.GetUtcNow();
            FirstLoad = LoadUntilItWorksAsync(retryBackoff, retryBackoffMax);
            _refresh = FirstLoad;
            _timer = time.CreateTimer(_ => StartRefresh(), null, refreshInterval, refreshInterval);
        }
        else
        {
            if (location.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
            {
                _path = Uri.TryCreate(location, UriKind.Absolute, out var fileUri) && fileUri.IsFile
                    ? fileUri.LocalPath
                    : throw new OAuthBearerConfigException($"sasl.oauthbearer.jwks.endpoint.url: '{location}' is not a file: URL");
            }
            else if (Path.IsPathFullyQualified(location))
            {
                _path = location;
            }
            else
            {
                throw new OAuthBearerConfigException($"sasl.oauthbearer.jwks.endpoint.url: '{location}' is not an http(s) URL, a file: URL or an absolute path");
            }

            try
            {
                ReadFile();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                throw new OAuthBearerConfigException($"sasl.oauthbearer.jwks.endpoint.url: can't read the JWKS file {_path}: {e.Message}", e);
            }

            _lastFileCheck = time.GetUtcNow();
            FirstLoad = Task.CompletedTask;
        }
    }

    /// <summary>The configured URL or path.</summary>
    public string Location { get; }

    /// <summary>Completes when keys were first loaded (at once for a file).</summary>
    public Task FirstLoad { get; }

    /// <summary>The refresh in flight, or the last one (for tests to await).</summary>
    internal Task LastRefresh
    {
        get
        {
            lock (_gate)
            {
                return _refresh;
            }
        }
    }

    /// <summary>The keys; waits up to <paramref name="firstLoadWait"/> for the first HTTP fetch. Null when there are none yet.</summary>
    public JsonWebKeySet? GetKeys(TimeSpan firstLoadWait)
    {
        if (_path is not null)
        {
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                if (now - _lastFileCheck >= FileCheckInterval)
                {
                    _lastFileCheck = now;
                    RereadFileIfChanged();
                }
            }
        }
        else if (_current is null && !FirstLoad.IsCompleted)
        {
            // Only the first authentications after start-up can wait here, and only while the
            // identity provider is being reached for the first time.
            FirstLoad.Wait(firstLoadWait);
        }

        return _current;
    }

    /// <summary>
    /// A token named a kid the keys lack. A file is checked for changes now (true when it was read
    /// again); an HTTP set is fetched in the background (false: this token fails, the client's
    /// next attempt may pass).
    /// </summary>
    public bool RequestRefresh()
    {
        lock (_gate)
        {
            if (_path is not null)
            {
                _lastFileCheck = _time.GetUtcNow();
                return RereadFileIfChanged();
            }

            if (_time.GetUtcNow() - _lastRefreshStart >= ExpediteInterval)
            {
                StartRefreshLocked();
            }
        }

        return false;
    }

    /// <summary>Fetches the HTTP set now (or joins the fetch in flight).</summary>
    internal Task RefreshNowAsync()
    {
        lock (_gate)
        {
            return StartRefreshLocked();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _timer?.Dispose();
        _http?.Dispose();
        _stop.Dispose();
    }

    private void StartRefresh()
    {
        lock (_gate)
        {
            StartRefreshLocked();
        }
    }

    private Task StartRefreshLocked()
    {
        if (!_refresh.IsCompleted || _stop.IsCancellationRequested)
        {
            return _refresh;
        }

        _lastRefreshStart = _time.GetUtcNow();
        _refresh = Task.Run(async () =>
        {
            try
            {
                await FetchAsync();
            }
            catch (Exception e) when (e is HttpRequestException or FormatException or TaskCanceledException or IOException)
            {
                if (!_stop.IsCancellationRequested)
                {
                    _log($"OAUTHBEARER: refreshing the JWKS from {Location} failed, keeping the {_current?.Keys.Count ?? 0} keys held: {e.Message}");
                }
            }
        });
        return _refresh;
    }

    private async Task LoadUntilItWorksAsync(TimeSpan backoff, TimeSpan backoffMax)
    {
        // Run off the constructor's thread: the factory is built during start-up.
        await Task.Yield();
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await FetchAsync();
                return;
            }
            catch (Exception e) when (e is HttpRequestException or FormatException or TaskCanceledException or IOException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                _log($"OAUTHBEARER: fetching the JWKS from {Location} failed, retrying in {backoff.TotalMilliseconds} ms: {e.Message}");
            }

            try
            {
                await Task.Delay(backoff, _time, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, backoffMax.Ticks));
        }
    }

    private async Task FetchAsync()
    {
        using var response = await _http!.GetAsync(_uri, _stop.Token);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
        }

        var body = await response.Content.ReadAsByteArrayAsync(_stop.Token);
        Publish(JsonWebKeySet.Parse(body));
    }

    private bool RereadFileIfChanged()
    {
        try
        {
            var info = new FileInfo(_path!);
            if ((info.LastWriteTimeUtc, info.Length) == _fileVersion)
            {
                return false;
            }

            ReadFile();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            _log($"OAUTHBEARER: reading the JWKS file {_path} failed, keeping the {_current?.Keys.Count ?? 0} keys held: {e.Message}");
            return false;
        }
    }

    private void ReadFile()
    {
        var info = new FileInfo(_path!);
        var version = (info.LastWriteTimeUtc, info.Length);
        Publish(JsonWebKeySet.Parse(File.ReadAllBytes(_path!)));
        _fileVersion = version;
    }

    private void Publish(JsonWebKeySet set)
    {
        foreach (var skipped in set.Skipped)
        {
            _log($"OAUTHBEARER: JWKS {Location}: skipped {skipped}");
        }

        _current = set;
    }
}
