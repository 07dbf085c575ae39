namespace Moldau.Storage;

/// <summary>
/// A seam over the storage engine's file operations, for tests that simulate a power loss; one per
/// <see cref="StorageRuntime"/>. In production no observer is installed and each hook is one null
/// check. An observer sees every segment write, file creation and successful fsync (of a file up
/// to a length, or of a directory), and may refuse writes, as a machine that lost power does: a
/// test then throws away whatever was not synced and recovers from what remains.
/// </summary>
internal sealed class FileLayer(IFileLayerObserver? observer)
{
    /// <summary>The observer, or null.</summary>
    public IFileLayerObserver? Observer { get; } = observer;

    /// <summary>Before a write to <paramref name="path"/>: throws when the observer refuses it.</summary>
    public void BeforeWrite(string path) => Observer?.BeforeWrite(path);

    /// <summary>A file was created (its directory entry is durable only after a directory sync).</summary>
    public void Created(string path) => Observer?.Created(path);

    /// <summary>An fsync of <paramref name="path"/> succeeded; the first <paramref name="length"/> bytes are durable.</summary>
    public void Synced(string path, long length) => Observer?.Synced(path, length);

    /// <summary>An fsync of the directory succeeded: the entries in it are durable.</summary>
    public void DirectorySynced(string directory) => Observer?.DirectorySynced(directory);

    /// <summary>A <c>syncfs</c> of the file system holding <paramref name="directory"/> succeeded: everything written to it is durable.</summary>
    public void FileSystemSynced(string directory) => Observer?.FileSystemSynced(directory);
}

/// <summary>What a <see cref="FileLayer"/> observer sees.</summary>
internal interface IFileLayerObserver
{
    /// <summary>Before a write or an fsync; throw an <see cref="IOException"/> to refuse it.</summary>
    void BeforeWrite(string path);

    /// <summary>A file was created.</summary>
    void Created(string path);

    /// <summary>The first <paramref name="length"/> bytes of the file are durable.</summary>
    void Synced(string path, long length);

    /// <summary>The directory's entries are durable.</summary>
    void DirectorySynced(string directory);

    /// <summary>
    /// Every file and entry on the file system holding <paramref name="directory"/> is durable (a
    /// clean stop's <c>syncfs</c>); an observer that ignores it counts none of that as synced.
    /// </summary>
    void FileSystemSynced(string directory)
    {
    }
}
