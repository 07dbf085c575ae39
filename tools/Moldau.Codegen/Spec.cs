using System.Text.Json;
using System.Text.RegularExpressions;

namespace Moldau.Codegen;

/// <summary>A version range from a spec: "0-4", "3+", "7", "none".</summary>
internal readonly record struct Versions(short Lowest, short Highest)
{
    public static readonly Versions None = new(1, 0);
    public static readonly Versions All = new(0, short.MaxValue);

    public bool IsEmpty => Lowest > Highest;

    public static Versions Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text == "none")
        {
            return None;
        }

        text = text.Trim();
        if (text.EndsWith('+'))
        {
            return new(short.Parse(text[..^1]), short.MaxValue);
        }

        var dash = text.IndexOf('-');
        return dash < 0
            ? new(short.Parse(text), short.Parse(text))
            : new(short.Parse(text[..dash]), short.Parse(text[(dash + 1)..]));
    }

    public Versions Intersect(Versions other) =>
        new(Math.Max(Lowest, other.Lowest), Math.Min(Highest, other.Highest));

    public bool Contains(short v) => v >= Lowest && v <= Highest;

    public bool ContainsAll(Versions other) => other.IsEmpty || (other.Lowest >= Lowest && other.Highest <= Highest);

    /// <summary>A C# condition on <c>version</c> for this range, within the message's valid range.</summary>
    public string Condition(Versions within)
    {
        var r = Intersect(within);
        if (r.IsEmpty)
        {
            return "false";
        }

        var low = r.Lowest > within.Lowest;
        var high = r.Highest < within.Highest;
        return (low, high) switch
        {
            (false, false) => "true",
            (true, false) => $"version >= {r.Lowest}",
            (false, true) => $"version <= {r.Highest}",
            _ when r.Lowest == r.Highest => $"version == {r.Lowest}",
            _ => $"version >= {r.Lowest} && version <= {r.Highest}",
        };
    }
}

/// <summary>One message spec file.</summary>
internal sealed class MessageSpec
{
    public required string Name { get; init; }
    public required string Kind { get; init; }
    public short? ApiKey { get; init; }
    public required Versions Valid { get; init; }
    public required Versions Flexible { get; init; }
    public bool LatestVersionUnstable { get; init; }
    public required List<FieldSpec> Fields { get; init; }
    public required List<StructSpec> CommonStructs { get; init; }
    public required string SourceFile { get; init; }
    public string Listeners { get; init; } = string.Empty;

    public static MessageSpec Load(string path)
    {
        var text = File.ReadAllText(path);
        var options = new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
        using var doc = JsonDocument.Parse(text, options);
        var root = doc.RootElement;
        var common = new List<StructSpec>();
        if (root.TryGetProperty("commonStructs", out var cs))
        {
            foreach (var s in cs.EnumerateArray())
            {
                common.Add(new StructSpec(s.GetProperty("name").GetString()!, ParseFields(s.GetProperty("fields"))));
            }
        }

        return new MessageSpec
        {
            Name = root.GetProperty("name").GetString()!,
            Kind = root.GetProperty("type").GetString()!,
            ApiKey = root.TryGetProperty("apiKey", out var k) ? (k.ValueKind == JsonValueKind.String ? short.Parse(k.GetString()!) : k.GetInt16()) : null,
            Valid = Versions.Parse(root.GetProperty("validVersions").GetString()),
            Flexible = Versions.Parse(root.TryGetProperty("flexibleVersions", out var f) ? f.GetString() : "none"),
            LatestVersionUnstable = root.TryGetProperty("latestVersionUnstable", out var u) && u.GetBoolean(),
            Fields = ParseFields(root.GetProperty("fields")),
            CommonStructs = common,
            SourceFile = Path.GetFileName(path),
            Listeners = root.TryGetProperty("listeners", out var l) ? string.Join(",", l.EnumerateArray().Select(e => e.GetString())) : string.Empty,
        };
    }

    private static List<FieldSpec> ParseFields(JsonElement array)
    {
        var list = new List<FieldSpec>();
        foreach (var e in array.EnumerateArray())
        {
            string? Str(string name) => e.TryGetProperty(name, out var p) ? p.ValueKind == JsonValueKind.String ? p.GetString() : p.ToString() : null;
            list.Add(new FieldSpec
            {
                Name = Str("name")!,
                Type = Str("type")!,
                Versions = Versions.Parse(Str("versions")),
                NullableVersions = Versions.Parse(Str("nullableVersions")),
                TaggedVersions = Versions.Parse(Str("taggedVersions")),
                Tag = e.TryGetProperty("tag", out var t) ? (t.ValueKind == JsonValueKind.String ? int.Parse(t.GetString()!) : t.GetInt32()) : null,
                Default = Str("default"),
                FlexibleVersionsOverride = Str("flexibleVersions"),
                About = Str("about"),
                Fields = e.TryGetProperty("fields", out var fs) ? ParseFields(fs) : null,
            });
        }

        return list;
    }
}

/// <summary>A struct type: the fields of an array element or of a struct field.</summary>
internal sealed record StructSpec(string Name, List<FieldSpec> Fields);

/// <summary>One field of a spec.</summary>
internal sealed class FieldSpec
{
    public required string Name { get; init; }
    public required string Type { get; init; }
    public required Versions Versions { get; init; }
    public required Versions NullableVersions { get; init; }
    public required Versions TaggedVersions { get; init; }
    public int? Tag { get; init; }
    public string? Default { get; init; }
    public string? FlexibleVersionsOverride { get; init; }
    public string? About { get; init; }
    public List<FieldSpec>? Fields { get; init; }

    public bool IsArray => Type.StartsWith("[]", StringComparison.Ordinal);

    public string ElementType => IsArray ? Type[2..] : Type;

    public bool IsTagged => Tag.HasValue;

    public static bool IsPrimitive(string type) => type is "bool" or "int8" or "int16" or "uint16" or "int32" or "int64"
        or "float64" or "uuid" or "string" or "bytes" or "records";

    public bool IsStruct => !IsPrimitive(ElementType);

    public static string PascalCase(string name) =>
        name.Length == 0 ? name : char.ToUpperInvariant(name[0]) + Regex.Replace(name[1..], "_([a-z])", m => m.Groups[1].Value.ToUpperInvariant());
}
