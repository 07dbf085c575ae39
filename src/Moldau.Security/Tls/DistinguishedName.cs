using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Moldau.Security.Tls;

/// <summary>
/// A certificate's subject as Kafka sees it: RFC 2253 form, as Java's
/// <c>X500Principal.getName()</c> prints it (most specific name first, <c>,</c> between names
/// without spaces, <c>+</c> inside a multi-valued one, RFC 2253 escapes; attribute types without a
/// keyword as a dotted OID with the value's DER encoding in hex), so that
/// <c>ssl.principal.mapping.rules</c> written for Kafka match the same strings here.
/// </summary>
public static class DistinguishedName
{
    // The keywords RFC 2253 (and Java's default) prints; other types print as OIDs.
    private static readonly Dictionary<string, string> Keywords = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "CN",
        ["2.5.4.6"] = "C",
        ["2.5.4.7"] = "L",
        ["2.5.4.8"] = "ST",
        ["2.5.4.10"] = "O",
        ["2.5.4.11"] = "OU",
        ["2.5.4.9"] = "STREET",
        ["0.9.2342.19200300.100.1.25"] = "DC",
        ["0.9.2342.19200300.100.1.1"] = "UID",
    };

    /// <summary>The RFC 2253 form of <paramref name="name"/>.</summary>
    public static string Format(X500DistinguishedName name)
    {
        var rdns = name.EnumerateRelativeDistinguishedNames(reversed: true).ToList();
        var sb = new StringBuilder();
        foreach (var rdn in rdns)
        {
            if (sb.Length > 0)
            {
                sb.Append(',');
            }

            AppendRdn(sb, rdn.RawData);
        }

        return sb.ToString();
    }

    // An RDN is a SET OF AttributeTypeAndValue { type OID, value ANY }.
    private static void AppendRdn(StringBuilder sb, ReadOnlyMemory<byte> der)
    {
        var set = new AsnReader(der, AsnEncodingRules.DER).ReadSetOf();
        var first = true;
        while (set.HasData)
        {
            var pair = set.ReadSequence();
            var oid = pair.ReadObjectIdentifier();
            var value = pair.ReadEncodedValue();
            if (!first)
            {
                sb.Append('+');
            }

            first = false;
            if (Keywords.TryGetValue(oid, out var keyword) && TryReadString(value, out var text))
            {
                sb.Append(keyword).Append('=');
                AppendEscaped(sb, text);
            }
            else
            {
                sb.Append(oid).Append("=#").Append(Convert.ToHexStringLower(value.Span));
            }
        }
    }

    private static bool TryReadString(ReadOnlyMemory<byte> value, out string text)
    {
        text = string.Empty;
        try
        {
            var reader = new AsnReader(value, AsnEncodingRules.BER);
            var tag = reader.PeekTag();
            if (tag.TagClass != TagClass.Universal)
            {
                return false;
            }

            switch ((UniversalTagNumber)tag.TagValue)
            {
                case UniversalTagNumber.UTF8String:
                case UniversalTagNumber.PrintableString:
                case UniversalTagNumber.IA5String:
                case UniversalTagNumber.BMPString:
                case UniversalTagNumber.T61String:
                case UniversalTagNumber.VisibleString:
                    text = reader.ReadCharacterString((UniversalTagNumber)tag.TagValue);
                    return true;
                default:
                    return false;
            }
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    // RFC 2253 section 2.4: ,+"\<>; escaped anywhere, '#' and space at the start, space at the end.
    private static void AppendEscaped(StringBuilder sb, string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';'
                || (i == 0 && (c == '#' || c == ' '))
                || (i == value.Length - 1 && c == ' '))
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }
    }
}
