namespace Moldau.Codegen;

/// <summary>Finds the repository root (the folder holding Moldau.slnx).</summary>
public static class RepoRoot
{
    /// <summary>Walks up from <paramref name="start"/> (default: the current directory, then this assembly's folder).</summary>
    public static string Find(string? start = null)
    {
        foreach (var origin in new[] { start, Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = origin is null ? null : new DirectoryInfo(origin); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Moldau.slnx")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new DirectoryNotFoundException("Moldau.slnx not found above the current directory");
    }
}
