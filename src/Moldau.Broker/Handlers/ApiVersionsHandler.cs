using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>ApiVersions: the table of served APIs and versions.</summary>
internal static class ApiVersionsHandler
{
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
