using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Moldau.Security.Tls;

/// <summary>
/// Maps a client certificate's subject distinguished name to a principal name with Kafka's
/// <c>ssl.principal.mapping.rules</c>: a comma-separated list of <c>DEFAULT</c> (the name as it
/// is) and <c>RULE:pattern/replacement/[LU]</c> (when <c>pattern</c> matches the whole name, the
/// name with every match of <c>pattern</c> replaced, Java style: <c>$n</c> groups, <c>\x</c> a
/// literal x; <c>L</c>/<c>U</c> lower or upper case the result), tried in order. A name no rule
/// matches fails authentication, as in Kafka.
/// </summary>
public sealed class SslPrincipalMapper
{
    // Kafka's rule grammar: DEFAULT, or RULE: then two '/'-terminated parts in which '\' escapes
    // the next character, then an optional L or U; anything else is an invalid rule.
    private const string RulePattern = @"(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?).*?|(.*?)";
    private static readonly Regex RuleSplitter = new(@"\G\s*(" + RulePattern + @")\s*(,\s*|$)", RegexOptions.CultureInvariant);
    private static readonly Regex RuleParser = new(@"\A(?:" + RulePattern + ")", RegexOptions.CultureInvariant);

    private readonly Rule[] _rules;

    private SslPrincipalMapper(Rule[] rules) => _rules = rules;

    /// <summary>Kafka's default: the distinguished name as it is.</summary>
    public static SslPrincipalMapper Default { get; } = new([Rule.DefaultRule]);

    /// <summary>Parses <paramref name="rules"/> (null or blank: <c>DEFAULT</c>); throws <see cref="FormatException"/> on an invalid rule.</summary>
    public static SslPrincipalMapper Parse(string? rules)
    {
        if (string.IsNullOrWhiteSpace(rules))
        {
            return Default;
        }

        var text = rules.Trim();
        var result = new List<Rule>();
        var at = 0;
        while (at <= text.Length)
        {
            var m = RuleSplitter.Match(text, at);
            if (!m.Success)
            {
                break;
            }

            if (ParseRule(m.Groups[1].Value) is { } rule)
            {
                result.Add(rule);
            }

            if (m.Index + m.Length == text.Length)
            {
                break;
            }

            at = m.Index + m.Length;
        }

        return new SslPrincipalMapper([.. result]);
    }

    // Null for the empty rule the splitter finds at the end.
    private static Rule? ParseRule(string rule)
    {
        var m = RuleParser.Match(rule);
        if (!m.Success || m.Length != rule.Length)
        {
            throw new FormatException($"ssl.principal.mapping.rules: invalid rule '{rule}'");
        }

        if (m.Groups[1].Success)
        {
            return Rule.DefaultRule;
        }

        if (!m.Groups[2].Success)
        {
            return null;
        }

        Regex pattern, whole;
        try
        {
            pattern = new Regex(m.Groups[2].Value, RegexOptions.CultureInvariant);
            whole = new Regex(@"\A(?:" + m.Groups[2].Value + @")\z", RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"ssl.principal.mapping.rules: invalid pattern in rule '{rule}': {e.Message}");
        }

        return new Rule(pattern, whole, m.Groups[3].Value, m.Groups[4].Value == "L", m.Groups[4].Value == "U");
    }

    /// <summary>The principal name for <paramref name="distinguishedName"/> (RFC 2253 form), or null when no rule applies.</summary>
    public string? GetName(string distinguishedName)
    {
        foreach (var rule in _rules)
        {
            if (rule.Apply(distinguishedName) is { } name)
            {
                return name;
            }
        }

        return null;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(",", _rules.Select(r => r.ToString()));

    private sealed class Rule(Regex? pattern, Regex? whole, string replacement, bool lower, bool upper)
    {
        public static readonly Rule DefaultRule = new(null, null, string.Empty, false, false);

        public string? Apply(string name)
        {
            if (pattern is null)
            {
                return name;
            }

            // The whole name must match (Java's Matcher.matches), then every match is replaced (replaceAll).
            if (!whole!.IsMatch(name))
            {
                return null;
            }

            var result = pattern.Replace(name, m => Expand(m, replacement));
            return lower ? result.ToLowerInvariant() : upper ? result.ToUpperInvariant() : result;
        }

        // Java's replacement syntax: '\' makes the next character literal; '$' and digits name a
        // group, taking digits while the number stays a group that exists (a reference to a group
        // that does not exist is literal text, as Kafka escapes those before replacing).
        private static string Expand(Match m, string replacement)
        {
            var groups = m.Groups.Count - 1;
            var sb = new StringBuilder();
            for (var i = 0; i < replacement.Length; i++)
            {
                var c = replacement[i];
                if (c == '\\' && i + 1 < replacement.Length)
                {
                    sb.Append(replacement[++i]);
                }
                else if (c == '$' && i + 1 < replacement.Length && char.IsAsciiDigit(replacement[i + 1]) && replacement[i + 1] - '0' <= groups)
                {
                    var number = replacement[++i] - '0';
                    while (i + 1 < replacement.Length && char.IsAsciiDigit(replacement[i + 1]) && number * 10 + (replacement[i + 1] - '0') <= groups)
                    {
                        number = number * 10 + (replacement[++i] - '0');
                    }

                    sb.Append(m.Groups[number].Value);
                }
                else
                {
                    sb.Append(c);
                }
            }

            return sb.ToString();
        }

        public override string ToString() => pattern is null
            ? "DEFAULT"
            : string.Create(CultureInfo.InvariantCulture, $"RULE:{pattern}/{replacement}/{(lower ? "L" : upper ? "U" : string.Empty)}");
    }
}
