using System.Text;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// The options of one <c>sasl.jaas.config</c> entry, as Kafka's JaasConfig reads it:
/// <c>&lt;LoginModule class&gt; &lt;required|requisite|sufficient|optional&gt; key=value key="quoted value" ...;</c>.
/// Only the options matter here; the class name is kept for the log.
/// </summary>
internal sealed class JaasOptions
{
    private JaasOptions(string loginModule, IReadOnlyDictionary<string, string> options)
    {
        LoginModule = loginModule;
        Options = options;
    }

    /// <summary>An entry with no options (no sasl.jaas.config).</summary>
    public static JaasOptions Empty { get; } = new("", new Dictionary<string, string>());

    /// <summary>The login module's class name.</summary>
    public string LoginModule { get; }

    /// <summary>The options, by name (case-sensitive, as in JAAS).</summary>
    public IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>The option <paramref name="name"/>, or null.</summary>
    public string? Get(string name) => Options.TryGetValue(name, out var v) ? v : null;

    /// <summary>Parses one JAAS entry; throws <see cref="OAuthBearerConfigException"/> when it is malformed.</summary>
    public static JaasOptions Parse(string text)
    {
        var i = 0;
        var module = ReadWord(text, ref i);
        var flag = ReadWord(text, ref i, stopAtSemicolon: true);
        if (module.Length == 0 || flag is not ("required" or "requisite" or "sufficient" or "optional"))
        {
            throw new OAuthBearerConfigException("sasl.jaas.config: expected '<LoginModule> <required|requisite|sufficient|optional> key=value ...;'");
        }

        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        while (true)
        {
            SkipSpace(text, ref i);
            if (i >= text.Length)
            {
                throw new OAuthBearerConfigException("sasl.jaas.config: the entry does not end with ';'");
            }

            if (text[i] == ';')
            {
                i++;
                SkipSpace(text, ref i);
                if (i != text.Length)
                {
                    throw new OAuthBearerConfigException("sasl.jaas.config: more than one login module (one is allowed)");
                }

                return new JaasOptions(module, options);
            }

            var eq = text.IndexOf('=', i);
            if (eq < 0)
            {
                throw new OAuthBearerConfigException($"sasl.jaas.config: option without '=' at '{text[i..]}'");
            }

            var key = text[i..eq].Trim();
            if (key.Length == 0 || key.Any(char.IsWhiteSpace))
            {
                throw new OAuthBearerConfigException($"sasl.jaas.config: malformed option name '{key}'");
            }

            i = eq + 1;
            SkipSpace(text, ref i);
            options[key] = i < text.Length && text[i] == '"' ? ReadQuoted(text, ref i) : ReadWord(text, ref i, stopAtSemicolon: true);
        }
    }

    private static void SkipSpace(string text, ref int i)
    {
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }
    }

    private static string ReadWord(string text, ref int i, bool stopAtSemicolon = false)
    {
        SkipSpace(text, ref i);
        var start = i;
        while (i < text.Length && !char.IsWhiteSpace(text[i]) && !(stopAtSemicolon && text[i] == ';'))
        {
            i++;
        }

        return text[start..i];
    }

    private static string ReadQuoted(string text, ref int i)
    {
        var sb = new StringBuilder();
        i++; // the opening quote
        while (i < text.Length)
        {
            var c = text[i++];
            if (c == '"')
            {
                return sb.ToString();
            }

            if (c == '\\' && i < text.Length)
            {
                c = text[i++];
            }

            sb.Append(c);
        }

        throw new OAuthBearerConfigException("sasl.jaas.config: unterminated quoted value");
    }
}

/// <summary>An OAUTHBEARER setting is missing or malformed; the message names the key.</summary>
public sealed class OAuthBearerConfigException(string message, Exception? inner = null) : Exception(message, inner);
