using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Moldau.Cli;

/// <summary>
/// Where results go: a table that fits the terminal (Spectre.Console) or, with --output json,
/// one JSON document on stdout for scripts. Progress and notes go to stderr, so they never mix
/// with what a script parses.
/// </summary>
public sealed class Output
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// <summary>Renders to <paramref name="json"/> mode or tables.</summary>
    public Output(bool json)
    {
        Json = json;
        Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Out) });
        if (System.Console.IsOutputRedirected)
        {
            // A pipe or file has no width: tables keep their natural width instead of 80 columns.
            Console.Profile.Width = 4096;
        }

        Error = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Error) });
    }

    /// <summary>True with --output json.</summary>
    public bool Json { get; }

    /// <summary>stdout.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>stderr: notes and progress.</summary>
    public IAnsiConsole Error { get; }

    /// <summary>True when progress may be drawn (stderr is a terminal).</summary>
    public bool Interactive => !System.Console.IsErrorRedirected && Error.Profile.Capabilities.Interactive;

    /// <summary>Writes <paramref name="json"/> in JSON mode, else calls <paramref name="table"/>.</summary>
    public void Emit(JsonNode json, Action<IAnsiConsole> table)
    {
        if (Json)
        {
            System.Console.Out.WriteLine(json.ToJsonString(Compact));
        }
        else
        {
            table(Console);
        }
    }

    /// <summary>One JSON line (consume's records).</summary>
    public static void Line(JsonNode json) => System.Console.Out.WriteLine(json.ToJsonString(Compact));

    /// <summary>A table with <paramref name="columns"/>, sized to the terminal.</summary>
    public static Table Table(params string[] columns)
    {
        var t = new Table().Border(TableBorder.Simple);
        foreach (var c in columns)
        {
            t.AddColumn(new TableColumn(Markup.Escape(c)).NoWrap());
        }

        return t;
    }

    /// <summary>Adds a row of plain (escaped) cells.</summary>
    public static void Row(Table table, params object?[] cells) =>
        table.AddRow(cells.Select(c => (Spectre.Console.Rendering.IRenderable)new Text(c?.ToString() ?? "-")).ToArray());

    /// <summary>A note on stderr.</summary>
    public void Note(string text) => Error.MarkupLine(Markup.Escape(text));
}
