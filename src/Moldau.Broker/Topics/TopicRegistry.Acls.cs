using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>ACLs, changed as every other metadata: records appended to the metadata log, then replayed.</summary>
internal sealed partial class TopicRegistry
{
    /// <summary>
    /// Stores <paramref name="acls"/> (already valid, see <see cref="AclBinding.Invalid"/>) as
    /// AccessControlEntryRecords in one batch; an ACL that exists already is left as it is, as
    /// Kafka's controller does.
    /// </summary>
    public void CreateAcls(IReadOnlyList<AclBinding> acls)
    {
        lock (_changeLock)
        {
            var table = _image.Acls;
            var records = new List<IKafkaMessage>();
            var batch = new List<AclBinding>();
            foreach (var acl in acls)
            {
                if (table.FindSame(acl) is null && !batch.Any(acl.SameAs))
                {
                    var stored = acl with { Id = Uuid.NewRandom() };
                    batch.Add(stored);
                    records.Add(stored.ToRecord());
                }
            }

            if (records.Count > 0)
            {
                CommitAndPublish(records);
                _log.LogInformation("created {Count} ACLs", records.Count);
            }
        }
    }

    /// <summary>
    /// Removes the ACLs each of <paramref name="filters"/> matches, with RemoveAccessControlEntryRecords
    /// in one batch; returns, per filter, the ACLs it matched.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<AclBinding>> DeleteAcls(IReadOnlyList<AclFilter> filters)
    {
        lock (_changeLock)
        {
            var table = _image.Acls;
            var matched = filters.Select(f => (IReadOnlyList<AclBinding>)[.. table.Matching(f)]).ToList();
            var ids = matched.SelectMany(m => m).Select(a => a.Id).Distinct().ToList();
            if (ids.Count > 0)
            {
                CommitAndPublish([.. ids.Select(id => new RemoveAccessControlEntryRecord { Id = id })]);
                _log.LogInformation("deleted {Count} ACLs", ids.Count);
            }

            return matched;
        }
    }
}
