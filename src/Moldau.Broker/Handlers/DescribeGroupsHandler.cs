using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeGroups: state, protocol and members with their subscriptions and assignments.</summary>
internal sealed class DescribeGroupsHandler(GroupCoordinator coordinator)
{
    public DescribeGroupsResponse Handle(DescribeGroupsRequest request) => new()
    {
        Groups = request.Groups.Select(id =>
        {
            var d = coordinator.Describe(id);
            return new DescribeGroupsResponse.DescribedGroup
            {
                GroupId = d.GroupId,
                GroupState = d.State,
                ProtocolType = d.ProtocolType,
                ProtocolData = d.ProtocolName,
                Members = d.Members.Select(m => new DescribeGroupsResponse.DescribedGroupMember
                {
                    MemberId = m.MemberId,
                    GroupInstanceId = m.InstanceId,
                    ClientId = m.ClientId,
                    ClientHost = m.ClientHost,
                    MemberMetadata = m.Metadata,
                    MemberAssignment = m.Assignment,
                }).ToList(),
            };
        }).ToList(),
    };
}
