using System.Text;

namespace Moldau.Server.Configuration;

/// <summary>
/// Reads Java properties files as Kafka's server.properties uses them: <c>key=value</c>,
/// <c>key: value</c> or <c>key value</c>; <c>#</c> and <c>!</c> comments; a trailing backslash
/// continues a line; backslash escapes (\t \n \r \f \uXXXX and any other character as itself).
/// </summary>
internal static class PropertiesFile
{
    /// <summary>Parses properties text; later keys win.</summary>
    public static Dictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var lines = text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimStart(' ', '\t', '\f');
            if (line.Length == 0 || line[0] is '#' or '!')
            {
                continue;
            }

            // Join continuation lines: an odd number of trailing backslashes continues.
            while (EndsWithContinuation(line) && i + 1 < lines.Length)
            {
                line = line[..^1] + lines[++i].TrimStart(' ', '\t', '\f');
            }

            if (EndsWithContinuation(line))
            {
                line = line[..^1];
            }

            var (key, value) = Split(line);
            result[Unescape(key)] = Unescape(value);
        }

        return result;
    }

    private static bool EndsWithContinuation(string line)
    {
        var count = 0;
        for (var j = line.Length - 1; j >= 0 && line[j] == '\\'; j--)
        {
            count++;
        }

        return count % 2 == 1;
    }

    private static (string Key, string Value) Split(string line)
    {
        var i = 0;
        while (i < line.Length)
        {
            var c = line[i];
            if (c == '\\')
            {
                i += 2;
                continue;
            }

            if (c is '=' or ':' or ' ' or '\t' or '\f')
            {
                break;
            }

            i++;
        }

        var key = line[..Math.Min(i, line.Length)];
        var rest = i < line.Length ? line[i..] : string.Empty;

        // Skip whitespace, then at most one '=' or ':', then whitespace.
        var j = 0;
        while (j < rest.Length && rest[j] is ' ' or '\t' or '\f')
        {
            j++;
        }

        if (j < rest.Length && rest[j] is '=' or ':')
        {
            j++;
        }

        while (j < rest.Length && rest[j] is ' ' or '\t' or '\f')
        {
            j++;
        }

        return (key, rest[j..]);
    }

    private static string Unescape(string s)
    {
        if (!s.Contains('\\', StringComparison.Ordinal))
        {
            return s;
        }

        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c != '\\' || i + 1 >= s.Length)
            {
                sb.Append(c);
                continue;
            }

            var n = s[++i];
            switch (n)
            {
                case 't': sb.Append('\t'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 'f': sb.Append('\f'); break;
                case 'u' when i + 4 < s.Length && ushort.TryParse(s.AsSpan(i + 1, 4), System.Globalization.NumberStyles.HexNumber, null, out var code):
                    sb.Append((char)code);
                    i += 4;
                    break;
                default: sb.Append(n); break;
            }
        }

        return sb.ToString();
    }
}
