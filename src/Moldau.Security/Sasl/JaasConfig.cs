using System.Text;

namespace Moldau.Security.Sasl;

/// <summary>One login module of a JAAS configuration: its class, its control flag and its options.</summary>
/// <param name="LoginModule">The class name, e.g. org.apache.kafka.common.security.plain.PlainLoginModule.</param>
/// <param name="Flag">required, requisite, sufficient or optional.</param>
/// <param name="Options">The key="value" options in order of appearance (a key given twice: the last wins).</param>
public sealed record JaasModule(string LoginModule, string Flag, IReadOnlyDictionary<string, string> Options);

/// <summary>
/// Reads the value of <c>sasl.jaas.config</c> as Kafka's JaasConfig does:
/// <code>
/// module-class flag [key=value]... ; [module-class flag [key=value]... ;]...
/// </code>
/// Values are "double-quoted" (backslash escapes the next character) or bare words; comments
/// (<c>//</c> and <c>/* */</c>) are skipped.
/// </summary>
public static class JaasConfig
{
    /// <summary>PLAIN's login module, whose <c>user_&lt;name&gt;</c> options are the users.</summary>
    public const string PlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule";

    private static readonly HashSet<string> Flags = new(StringComparer.OrdinalIgnoreCase) { "required", "requisite", "sufficient", "optional" };

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> with what is wrong.</summary>
    public static IReadOnlyList<JaasModule> Parse(string text)
    {
        var tokens = Tokenize(text);
        var modules = new List<JaasModule>();
        var i = 0;
        while (i < tokens.Count)
        {
            if (tokens[i].Quoted || tokens[i].Text is ";" or "=")
            {
                throw new FormatException($"expected a login module class, found '{tokens[i].Text}'");
            }

            var module = tokens[i++].Text;
            if (i >= tokens.Count || tokens[i].Quoted || !Flags.Contains(tokens[i].Text))
            {
                throw new FormatException($"login module {module}: expected a flag (required, requisite, sufficient, optional)");
            }

            var flag = tokens[i++].Text.ToLowerInvariant();
            var options = new Dictionary<string, string>(StringComparer.Ordinal);
            while (true)
            {
                if (i >= tokens.Count)
                {
                    throw new FormatException($"login module {module}: missing ';' at the end");
                }

                if (!tokens[i].Quoted && tokens[i].Text == ";")
                {
                    i++;
                    break;
                }

                var key = tokens[i++];
                if (key.Quoted || i + 1 >= tokens.Count || tokens[i].Quoted || tokens[i].Text != "=" || (!tokens[i + 1].Quoted && tokens[i + 1].Text is ";" or "="))
                {
                    throw new FormatException($"login module {module}: expected key=value at '{key.Text}'");
                }

                options[key.Text] = tokens[i + 1].Text;
                i += 2;
            }

            modules.Add(new JaasModule(module, flag, options));
        }

        if (modules.Count == 0)
        {
            throw new FormatException("no login module");
        }

        return modules;
    }

    /// <summary>
    /// The PLAIN users of a JAAS configuration, as Kafka's PlainServerCallbackHandler reads them:
    /// each option <c>user_&lt;name&gt;="&lt;password&gt;"</c> of the PlainLoginModule.
    /// </summary>
    public static IReadOnlyDictionary<string, string> PlainUsers(IReadOnlyList<JaasModule> modules)
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var module in modules.Where(m => m.LoginModule == PlainLoginModule))
        {
            foreach (var (key, value) in module.Options)
            {
                if (key.StartsWith("user_", StringComparison.Ordinal) && key.Length > "user_".Length)
                {
                    users[key["user_".Length..]] = value;
                }
            }
        }

        return users;
    }

    private readonly record struct Token(string Text, bool Quoted);

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '/' && i + 1 < text.Length && text[i + 1] == '/')
            {
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
            }
            else if (c == '/' && i + 1 < text.Length && text[i + 1] == '*')
            {
                var end = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? throw new FormatException("unterminated comment") : end + 2;
            }
            else if (c is ';' or '=')
            {
                tokens.Add(new Token(c.ToString(), false));
                i++;
            }
            else if (c is '"' or '\'')
            {
                var value = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= text.Length)
                    {
                        throw new FormatException("unterminated quoted value");
                    }

                    if (text[i] == c)
                    {
                        i++;
                        break;
                    }

                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    value.Append(text[i++]);
                }

                tokens.Add(new Token(value.ToString(), true));
            }
            else
            {
                var start = i;
                while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] is not (';' or '=' or '"' or '\''))
                {
                    i++;
                }

                tokens.Add(new Token(text[start..i], false));
            }
        }

        return tokens;
    }
}
