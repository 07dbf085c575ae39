using System.Globalization;
using Microsoft.Diagnostics.Runtime;

namespace Moldau.Benchmarks;

/// <summary>
/// Where a running broker's managed memory goes, per partition: attaches to the process (ptrace,
/// so the same user or root), marks the objects reachable from the GC roots, and prints the live
/// bytes and counts per type, divided by the partition count, with the types grouped by their
/// namespace (Moldau.Storage, Moldau.Broker, ...; a generic collection counts under the namespace
/// of its first Moldau type argument) and strings split into paths and the rest. Issue 11.
/// </summary>
/// <remarks>
/// <c>dotnet Moldau.Benchmarks.dll heap &lt;pid&gt; &lt;partitions&gt; [top]</c>. The process is
/// suspended while it is walked (a second or two at 10,000 partitions). Dead objects (garbage the
/// GC has not collected yet) are counted apart, since RSS holds them until the next GC.
/// </remarks>
internal static class HeapCensus
{
    public static int Run(string[] args)
    {
        if (args.Length < 2 || !int.TryParse(args[0], out var pid) || !int.TryParse(args[1], out var partitions) || partitions <= 0)
        {
            Console.Error.WriteLine("usage: heap <pid> <partitions> [top]");
            return 2;
        }

        var top = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 40;
        using var target = DataTarget.AttachToProcess(pid, suspend: true);
        using var runtime = target.ClrVersions[0].CreateRuntime();
        var heap = runtime.Heap;
        var live = Mark(heap);

        var byType = new Dictionary<string, (long Count, long Bytes)>();
        var byGroup = new Dictionary<string, long>();
        long liveBytes = 0, deadBytes = 0;
        foreach (var obj in heap.EnumerateObjects())
        {
            if (!obj.IsValid || obj.IsFree)
            {
                continue;
            }

            var size = (long)obj.Size;
            if (!live.Contains(obj.Address))
            {
                deadBytes += size;
                continue;
            }

            liveBytes += size;
            var name = obj.Type?.Name ?? "?";
            if (name == "System.String")
            {
                name = IsPath(obj.AsString(4096)) ? "System.String (path)" : "System.String (other)";
            }

            var (count, bytes) = byType.GetValueOrDefault(name);
            byType[name] = (count + 1, bytes + size);
            var group = GroupOf(name);
            byGroup[group] = byGroup.GetValueOrDefault(group) + size;
        }

        Console.WriteLine($"pid {pid}, {partitions:N0} partitions: live {liveBytes / 1048576.0:F1} MB ({(double)liveBytes / partitions:F0} B/partition), dead (not yet collected) {deadBytes / 1048576.0:F1} MB");
        long committed = 0;
        foreach (var segment in heap.Segments)
        {
            committed += (long)segment.CommittedMemory.Length;
        }

        Console.WriteLine($"GC heap committed {committed / 1048576.0:F1} MB; {ProcStatus(pid)}");
        Console.WriteLine();
        Console.WriteLine("| group | live B/partition |");
        Console.WriteLine("|---|---|");
        foreach (var (group, bytes) in byGroup.OrderByDescending(g => g.Value))
        {
            Console.WriteLine($"| {group} | {(double)bytes / partitions:F0} |");
        }

        Console.WriteLine();
        Console.WriteLine("| type | objects/partition | live B/partition |");
        Console.WriteLine("|---|---|---|");
        foreach (var (name, (count, bytes)) in byType.OrderByDescending(t => t.Value.Bytes).Take(top))
        {
            Console.WriteLine($"| `{name}` | {(double)count / partitions:F2} | {(double)bytes / partitions:F0} |");
        }

        return 0;
    }

    private static HashSet<ulong> Mark(ClrHeap heap)
    {
        var live = new HashSet<ulong>();
        var stack = new Stack<ClrObject>();
        foreach (var root in heap.EnumerateRoots())
        {
            if (root.Object.IsValid && live.Add(root.Object.Address))
            {
                stack.Push(root.Object);
            }
        }

        while (stack.Count > 0)
        {
            var obj = stack.Pop();
            foreach (var child in obj.EnumerateReferences(carefully: false, considerDependantHandles: true))
            {
                if (child.IsValid && live.Add(child.Address))
                {
                    stack.Push(child);
                }
            }
        }

        return live;
    }

    /// <summary>RSS and its anonymous and file-backed parts, from /proc (Linux).</summary>
    private static string ProcStatus(int pid)
    {
        try
        {
            var wanted = new[] { "VmRSS", "RssAnon", "RssFile", "Threads" };
            return string.Join(", ", File.ReadLines($"/proc/{pid}/status")
                .Where(l => wanted.Any(w => l.StartsWith(w + ":", StringComparison.Ordinal)))
                .Select(l => string.Join(' ', l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))));
        }
        catch (IOException)
        {
            return "(no /proc)";
        }
    }

    private static bool IsPath(string? s) => s is not null && s.Length > 1 && s[0] == '/';

    private static string GroupOf(string type)
    {
        var moldau = type.IndexOf("Moldau.", StringComparison.Ordinal);
        if (moldau >= 0)
        {
            var rest = type.AsSpan(moldau + "Moldau.".Length);
            var end = rest.IndexOfAny('.', '+', '<');
            return "Moldau." + (end < 0 ? rest : rest[..end]).ToString();
        }

        return type.StartsWith("System.String", StringComparison.Ordinal) ? type : "other (runtime, collections of non-Moldau types)";
    }
}
