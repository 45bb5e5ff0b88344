// SandboxDirectory: removing a proposal's sandbox directory (all its workspaces) without following symlinks out.
public import EventLoop
import Glibc

/// The per-proposal directories under Medic's sandboxes root (`<data>/sandboxes/<proposal id>/ws-…`).
public enum SandboxDirectory {
    /// Names of the real directories (not symlinks) directly under `root`; empty when `root` does not exist.
    /// A readdir of one directory: fine on the loop thread (called at startup).
    public static func entries(in root: String) -> [String] {
        guard let dir = opendir(root) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard isSafeName(name) else { continue }
            var info = stat()
            if lstat(root + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes `root/name` and everything in it with `rm -rf --one-file-system` in a child process (the walk
    /// never runs on the loop thread), then calls `completion` on the loop thread. Nothing outside is touched:
    /// `name` is a single path component, `root/name` must be a real directory (a symlink there is refused,
    /// not followed), rm runs in the canonical `root` on `./name`, rm never follows symlinks inside the
    /// tree (it unlinks them), and it does not descend into other file systems (a mount inside a workspace).
    /// A missing directory is success.
    public static func remove(name: String, in root: String, loop: EventLoop, completion: @escaping (Result<Void, SandboxError>) -> Void) {
        let fail: (SandboxError) -> Void = { error in loop.schedule(afterNanoseconds: 0) { completion(.failure(error)) } }
        guard isSafeName(name) else { return fail(.invalidArgument(name, "not a sandbox directory name")) }
        guard let realRoot = realPath(root) else {
            if errno == ENOENT { loop.schedule(afterNanoseconds: 0) { completion(.success(())) }; return }
            return fail(.ioFailed(root, "realpath", errno: errno))
        }
        var info = stat()
        guard lstat(realRoot + "/" + name, &info) == 0 else {
            if errno == ENOENT { loop.schedule(afterNanoseconds: 0) { completion(.success(())) }; return }
            return fail(.ioFailed(realRoot + "/" + name, "lstat", errno: errno))
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            return fail(.notRegularFile(realRoot + "/" + name, "not a directory (a symbolic link is never followed)"))
        }
        let rm = ExecutableLocator.find("rm") ?? "/bin/rm"
        CommandRunner.runChecked(loop: loop, executable: rm, arguments: ["-rf", "--one-file-system", "--", "./" + name],
                                 workingDirectory: realRoot) { result in
            completion(result.map { _ in () })
        }
    }

    /// One path component that is not `.`/`..`, hidden, or option-like.
    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && !name.hasPrefix(".") && !name.hasPrefix("-") && !name.contains("/")
            && !name.utf8.contains(0)
    }
}
