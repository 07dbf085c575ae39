using System.Globalization;

namespace Moldau.Cluster.ObjectStore;

/// <summary>
/// Where cluster mode keeps its objects: an S3-compatible endpoint (AWS S3, Ceph RGW, MinIO, R2),
/// a bucket, a region and credentials. Read from server.properties keys <c>moldau.cluster.s3.*</c>
/// (docs/cluster.md); credentials left out come from the environment (AWS_ACCESS_KEY_ID /
/// AWS_SECRET_ACCESS_KEY, then the SDK's other default sources).
/// </summary>
public sealed record S3ObjectStoreOptions
{
    /// <summary>server.properties key of <see cref="Endpoint"/>.</summary>
    public const string EndpointKey = "moldau.cluster.s3.endpoint";

    /// <summary>server.properties key of <see cref="Bucket"/>.</summary>
    public const string BucketKey = "moldau.cluster.s3.bucket";

    /// <summary>server.properties key of <see cref="Region"/>.</summary>
    public const string RegionKey = "moldau.cluster.s3.region";

    /// <summary>server.properties key of <see cref="AccessKey"/>.</summary>
    public const string AccessKeyKey = "moldau.cluster.s3.access.key";

    /// <summary>server.properties key of <see cref="SecretKey"/>.</summary>
    public const string SecretKeyKey = "moldau.cluster.s3.secret.key";

    /// <summary>server.properties key of <see cref="PathStyle"/>.</summary>
    public const string PathStyleKey = "moldau.cluster.s3.path.style";

    /// <summary>
    /// The endpoint URL (<c>http://127.0.0.1:7480</c>); null for AWS S3 itself, whose endpoint
    /// follows from <see cref="Region"/>.
    /// </summary>
    public string? Endpoint { get; init; }

    /// <summary>The bucket; it must exist.</summary>
    public required string Bucket { get; init; }

    /// <summary>The region requests are signed for (default <c>us-east-1</c>; RGW and MinIO accept any).</summary>
    public string Region { get; init; } = "us-east-1";

    /// <summary>The access key id; null to take credentials from the environment.</summary>
    public string? AccessKey { get; init; }

    /// <summary>The secret access key; given together with <see cref="AccessKey"/>.</summary>
    public string? SecretKey { get; init; }

    /// <summary>
    /// Path-style addressing (<c>http://host/bucket/key</c>) instead of virtual hosts
    /// (<c>http://bucket.host/key</c>): what RGW and MinIO without wildcard DNS need. Default: true
    /// when <see cref="Endpoint"/> is set, false for AWS.
    /// </summary>
    public bool? PathStyle { get; init; }

    /// <summary>How long one HTTP request may take before it counts as failed (retriable).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the SDK itself retries a retriable failure before it reaches the caller (default
    /// 2): cluster mode retries at its own level, with the same key, so this stays small.
    /// </summary>
    public int MaxSdkRetries { get; init; } = 2;

    /// <summary>
    /// Reads the <c>moldau.cluster.s3.*</c> keys of <paramref name="properties"/>; null when
    /// <see cref="BucketKey"/> is absent (cluster mode's object storage is not configured).
    /// </summary>
    /// <exception cref="FormatException">A key has a value that cannot be used, or only one of access key and secret is given.</exception>
    public static S3ObjectStoreOptions? FromProperties(IReadOnlyDictionary<string, string> properties)
    {
        if (!properties.TryGetValue(BucketKey, out var bucket) || string.IsNullOrWhiteSpace(bucket))
        {
            return null;
        }

        var endpoint = Value(EndpointKey);
        if (endpoint != null && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
        {
            throw new FormatException($"{EndpointKey}={endpoint} is not an absolute URL (such as http://127.0.0.1:7480)");
        }

        var accessKey = Value(AccessKeyKey);
        var secretKey = Value(SecretKeyKey);
        if ((accessKey == null) != (secretKey == null))
        {
            throw new FormatException($"{AccessKeyKey} and {SecretKeyKey} go together: give both, or neither to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
        }

        bool? pathStyle = null;
        if (Value(PathStyleKey) is { } text)
        {
            pathStyle = text.ToLowerInvariant() switch
            {
                "true" => true,
                "false" => false,
                _ => throw new FormatException($"{PathStyleKey}={text} is not true or false"),
            };
        }

        return new S3ObjectStoreOptions
        {
            Endpoint = endpoint,
            Bucket = bucket.Trim(),
            Region = Value(RegionKey) ?? "us-east-1",
            AccessKey = accessKey,
            SecretKey = secretKey,
            PathStyle = pathStyle,
        };

        string? Value(string key) =>
            properties.TryGetValue(key, out var value) && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"s3 endpoint={Endpoint ?? "(aws)"} bucket={Bucket} region={Region} pathStyle={PathStyle} credentials={(AccessKey != null ? "configured" : "environment")}");
}
