using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>ApiVersions: the table of served APIs and versions; records the client's software in the session.</summary>
internal sealed class ApiVersionsHandler : IApiHandler<ApiVersionsRequest, ApiVersionsResponse>
{
    /// <inheritdoc/>
    public ValueTask<ApiVersionsResponse> HandleAsync(RequestContext context, ApiVersionsRequest request, CancellationToken cancellationToken)
    {
        if (context.Version >= 3)
        {
            // KIP-511: what the client runs, kept for the connection (metrics, logs, quotas later).
            context.Session.ClientSoftwareName = request.ClientSoftwareName;
            context.Session.ClientSoftwareVersion = request.ClientSoftwareVersion;
        }

        return ValueTask.FromResult(Handle());
    }

    /// <inheritdoc/>
    public ApiVersionsResponse ErrorResponse(RequestContext context, ApiVersionsRequest request, ErrorCode error) => new() { ErrorCode = (short)error };

    /// <summary>The response at any version, listing <see cref="SupportedApis"/>.</summary>
    public static ApiVersionsResponse Handle(ErrorCode error = ErrorCode.None)
    {
        var response = new ApiVersionsResponse { ErrorCode = (short)error };
        foreach (var api in SupportedApis.All)
        {
            response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion { ApiKey = (short)api.Key, MinVersion = api.MinAdvertised, MaxVersion = api.MaxVersion });
        }

        return response;
    }

    /// <summary>
    /// A version of ApiVersions this broker doesn't know: answer UNSUPPORTED_VERSION in a v0 body
    /// (header v0) that lists the served versions, so the client can retry lower on the same
    /// connection (KIP-511).
    /// </summary>
    public static DispatchResult UnsupportedVersion(int correlationId) =>
        ResponseWriter.Encode(correlationId, 0, Handle(ErrorCode.UnsupportedVersion), 0);
}
