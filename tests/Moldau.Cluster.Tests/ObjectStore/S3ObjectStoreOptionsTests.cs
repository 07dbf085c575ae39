using Moldau.Cluster.ObjectStore;

namespace Moldau.Cluster.Tests.ObjectStore;

public sealed class S3ObjectStoreOptionsTests
{
    [Fact]
    public void ReadsTheMoldauClusterS3Keys()
    {
        var options = S3ObjectStoreOptions.FromProperties(new Dictionary<string, string>
        {
            ["moldau.cluster.s3.endpoint"] = "http://127.0.0.1:7480",
            ["moldau.cluster.s3.bucket"] = "moldau",
            ["moldau.cluster.s3.region"] = "eu-central-1",
            ["moldau.cluster.s3.access.key"] = "AK",
            ["moldau.cluster.s3.secret.key"] = "SK",
            ["moldau.cluster.s3.path.style"] = "false",
        });

        Assert.NotNull(options);
        Assert.Equal("http://127.0.0.1:7480", options.Endpoint);
        Assert.Equal("moldau", options.Bucket);
        Assert.Equal("eu-central-1", options.Region);
        Assert.Equal("AK", options.AccessKey);
        Assert.Equal("SK", options.SecretKey);
        Assert.False(options.PathStyle);
        Assert.DoesNotContain("SK", options.ToString()); // the secret is never logged
    }

    [Fact]
    public void DefaultsAndAbsence()
    {
        Assert.Null(S3ObjectStoreOptions.FromProperties(new Dictionary<string, string>()));

        var options = S3ObjectStoreOptions.FromProperties(new Dictionary<string, string> { ["moldau.cluster.s3.bucket"] = "b" });
        Assert.NotNull(options);
        Assert.Null(options.Endpoint);
        Assert.Equal("us-east-1", options.Region);
        Assert.Null(options.AccessKey); // from the environment
        Assert.Null(options.PathStyle); // path style when an endpoint is given
    }

    [Theory]
    [InlineData("moldau.cluster.s3.endpoint", "127.0.0.1:7480")]
    [InlineData("moldau.cluster.s3.access.key", "only-the-access-key")]
    [InlineData("moldau.cluster.s3.path.style", "yes")]
    public void BadValuesAreRefused(string key, string value)
    {
        var properties = new Dictionary<string, string> { ["moldau.cluster.s3.bucket"] = "b", [key] = value };
        Assert.Throws<FormatException>(() => S3ObjectStoreOptions.FromProperties(properties));
    }

    [Theory]
    [InlineData(503, "SlowDown", ObjectStoreErrorKind.Retriable)]
    [InlineData(500, "InternalError", ObjectStoreErrorKind.Retriable)]
    [InlineData(429, null, ObjectStoreErrorKind.Retriable)]
    [InlineData(409, "ConditionalRequestConflict", ObjectStoreErrorKind.Retriable)]
    [InlineData(409, "BucketAlreadyExists", ObjectStoreErrorKind.Permanent)]
    [InlineData(404, "NoSuchKey", ObjectStoreErrorKind.NotFound)]
    [InlineData(404, "NoSuchBucket", ObjectStoreErrorKind.Permanent)]
    [InlineData(403, "SignatureDoesNotMatch", ObjectStoreErrorKind.Permanent)]
    [InlineData(400, "RequestTimeout", ObjectStoreErrorKind.Retriable)]
    public void StatusesAreClassified(int status, string? code, ObjectStoreErrorKind kind)
    {
        Assert.Equal(kind, S3ObjectStore.Classify(status, code));
    }
}
