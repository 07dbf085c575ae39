using System.CommandLine;

namespace Moldau.Cli.Commands;

/// <summary>
/// <c>moldau completion bash|zsh|fish</c>: a script that asks the binary itself for completions
/// through System.CommandLine's [suggest] directive, so it never goes stale.
/// </summary>
internal static class CompletionCommand
{
    public static Command Build()
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        shell.AcceptOnlyFromAmong("bash", "zsh", "fish");
        var c = new Command("completion", "Print a shell completion script (e.g. source <(moldau completion bash))") { shell };
        c.SetAction(parse =>
        {
            Console.Out.Write(parse.GetValue(shell) switch
            {
                "bash" => """
                    _moldau_complete() {
                        local IFS=$'\n'
                        COMPREPLY=($(compgen -W "$(moldau "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
                    }
                    complete -o default -F _moldau_complete moldau

                    """,
                "zsh" => """
                    #compdef moldau
                    _moldau_complete() {
                        local -a completions
                        completions=("${(@f)$(moldau "[suggest:${#BUFFER}]" "$BUFFER" 2>/dev/null)}")
                        compadd -a completions
                    }
                    compdef _moldau_complete moldau

                    """,
                _ => """
                    complete -c moldau -f -a '(moldau "[suggest:"(string length (commandline -cp))"]" (commandline -cp) 2>/dev/null)'

                    """,
            });
            return ExitCodes.Ok;
        });
        return c;
    }
}
