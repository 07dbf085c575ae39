using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Moldau.Cluster.ObjectStore;

/// <summary>
/// <see cref="IObjectStore"/> over an S3-compatible service through the AWS SDK for .NET. Puts are
/// create-only with <c>If-None-Match: *</c>: the service refuses an existing key with 412
/// Precondition Failed, atomically (AWS S3 since 2024, Ceph RGW, MinIO), which is how a retried
/// upload of the same key is recognised and how two writers can never replace each other's data.
/// </summary>
/// <remarks>
/// The SDK's request checksums (CRC32 trailers in aws-chunked bodies, added by default since 2025)
/// are limited to where S3 requires them, because older S3-compatible servers such as RGW 16 do not
/// understand the trailers; the SigV4 payload hash still covers every body. Retries: the SDK retries
/// <see cref="S3ObjectStoreOptions.MaxSdkRetries"/> times, then the failure reaches the caller as
/// an <see cref="ObjectStoreException"/>.
/// </remarks>
public sealed class S3ObjectStore : IObjectStore, IDisposable
{
    private readonly IAmazonS3 _client;
    private readonly string _bucket;
    private readonly bool _ownsClient;

    /// <summary>A store over <paramref name="options"/>, with a client of its own.</summary>
    public S3ObjectStore(S3ObjectStoreOptions options)
        : this(CreateClient(options), options.Bucket, ownsClient: true)
    {
    }

    /// <summary>A store over <paramref name="bucket"/> through <paramref name="client"/>.</summary>
    public S3ObjectStore(IAmazonS3 client, string bucket, bool ownsClient = false)
    {
        _client = client;
        _bucket = bucket;
        _ownsClient = ownsClient;
    }

    /// <summary>The bucket it writes to.</summary>
    public string Bucket => _bucket;

    /// <summary>An S3 client as the store configures it (endpoint, region, path style, credentials, checksums).</summary>
    public static AmazonS3Client CreateClient(S3ObjectStoreOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.PathStyle ?? options.Endpoint != null,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = options.RequestTimeout,
            MaxErrorRetry = options.MaxSdkRetries,
        };
        if (options.Endpoint != null)
        {
            config.ServiceURL = options.Endpoint;
            config.AuthenticationRegion = options.Region;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }

        return options.AccessKey != null && options.SecretKey != null
            ? new AmazonS3Client(new BasicAWSCredentials(options.AccessKey, options.SecretKey), config)
            : new AmazonS3Client(config); // the SDK's default chain: environment, profile, instance role
    }

    /// <inheritdoc />
    public async Task<PutResult> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        var request = new PutObjectRequest
        {
            BucketName = _bucket,
            Key = key,
            InputStream = AsStream(data),
            AutoCloseStream = true,
            IfNoneMatch = "*",
            ContentType = "application/octet-stream",
            UseChunkEncoding = false,
        };
        try
        {
            await _client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
            return PutResult.Created;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            return PutResult.AlreadyExists;
        }
        catch (Exception e) when (Map(e, "put", key, cancellationToken) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <inheritdoc />
    public async Task<int> ReadAsync(string key, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        if (destination.IsEmpty)
        {
            return 0;
        }

        var request = new GetObjectRequest
        {
            BucketName = _bucket,
            Key = key,
            ByteRange = new ByteRange(position, position + destination.Length - 1),
        };
        try
        {
            using var response = await _client.GetObjectAsync(request, cancellationToken).ConfigureAwait(false);
            var read = 0;
            while (read < destination.Length)
            {
                var n = await response.ResponseStream.ReadAsync(destination[read..], cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            return read;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // A range starting at or past the end: nothing to read there (the object exists; S3
            // answers 404 otherwise).
            return 0;
        }
        catch (Exception e) when (Map(e, "get", key, cancellationToken) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <inheritdoc />
    public async Task<byte[]> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            using var response = await _client.GetObjectAsync(_bucket, key, cancellationToken).ConfigureAwait(false);
            var length = response.ContentLength;
            using var buffer = new MemoryStream(length is > 0 and <= int.MaxValue ? (int)length : 0);
            await response.ResponseStream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
        catch (Exception e) when (Map(e, "get", key, cancellationToken) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <inheritdoc />
    public async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            await _client.DeleteObjectAsync(_bucket, key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Map(e, "delete", key, cancellationToken) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? continuation = null;
        do
        {
            var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = prefix, ContinuationToken = continuation };
            ListObjectsV2Response response;
            try
            {
                response = await _client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Map(e, "list", prefix, cancellationToken) is { } mapped)
            {
                throw mapped;
            }

            foreach (var o in response.S3Objects ?? [])
            {
                yield return new ObjectInfo(o.Key, o.Size ?? 0, new DateTimeOffset(o.LastModified?.ToUniversalTime() ?? default, TimeSpan.Zero));
            }

            continuation = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (continuation != null);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> data) =>
        MemoryMarshal.TryGetArray(data, out var segment) && segment.Array != null
            ? new MemoryStream(segment.Array, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);

    /// <summary>
    /// The <see cref="ObjectStoreException"/> for a failure, or null for one that is not the
    /// store's (the caller's own cancellation, a bug): those propagate unchanged.
    /// </summary>
    internal static ObjectStoreException? Map(Exception e, string operation, string key, CancellationToken cancellationToken)
    {
        switch (e)
        {
            case OperationCanceledException when cancellationToken.IsCancellationRequested:
                return null;
            case AmazonS3Exception s3:
                {
                    var status = (int)s3.StatusCode;
                    var kind = Classify(status, s3.ErrorCode);
                    return new ObjectStoreException(kind, $"S3 {operation} {key}: {status} {s3.ErrorCode} {s3.Message}", e)
                    {
                        StatusCode = status,
                        ErrorCode = s3.ErrorCode,
                    };
                }
            case AmazonServiceException service when service.StatusCode != 0:
                {
                    var status = (int)service.StatusCode;
                    return new ObjectStoreException(Classify(status, service.ErrorCode), $"S3 {operation} {key}: {status} {service.Message}", e)
                    {
                        StatusCode = status,
                        ErrorCode = service.ErrorCode,
                    };
                }
            case AmazonServiceException or AmazonClientException or HttpRequestException or IOException or SocketException or TimeoutException or OperationCanceledException:
                // No answer from the store (refused, reset, timed out): the request may or may not
                // have taken effect.
                return new ObjectStoreException(ObjectStoreErrorKind.Retriable, $"S3 {operation} {key}: no answer: {e.Message}", e);
            default:
                return null;
        }
    }

    internal static ObjectStoreErrorKind Classify(int status, string? errorCode) => status switch
    {
        404 when errorCode is null or "NoSuchKey" or "NotFound" => ObjectStoreErrorKind.NotFound,
        408 or 429 => ObjectStoreErrorKind.Retriable,
        409 when errorCode is "ConditionalRequestConflict" or "OperationAborted" => ObjectStoreErrorKind.Retriable, // a concurrent conditional write (AWS)
        >= 500 => ObjectStoreErrorKind.Retriable,
        _ when errorCode is "SlowDown" or "RequestTimeout" or "RequestTimeTooSkewed" or "InternalError" or "ServiceUnavailable" => ObjectStoreErrorKind.Retriable,
        _ => ObjectStoreErrorKind.Permanent,
    };
}
