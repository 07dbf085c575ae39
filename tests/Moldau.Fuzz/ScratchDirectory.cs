namespace Moldau.Fuzz;

/// <summary>
/// A directory under the temp dir for targets that read files, one per process and emptied
/// before each input (AFL++ runs thousands of inputs in one process).
/// </summary>
internal static class ScratchDirectory
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"moldau-fuzz-{Environment.ProcessId}");

    static ScratchDirectory() => AppDomain.CurrentDomain.ProcessExit += (_, _) => Delete();

    /// <summary>An empty directory named <paramref name="name"/> under this process's root.</summary>
    public static string Fresh(string name)
    {
        var dir = Path.Combine(Root, name);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void Delete()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
