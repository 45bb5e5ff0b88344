// RepositoryFiles: the regular files of a repository tree, for the code index — never following a symbolic
// link (a link to `/` or a link loop is just skipped), never entering skipped directories, bounded in depth
// and count. Blocking: called on the indexer's own thread, never on the loop.
import Glibc

/// One file found in a tree.
public struct ListedFile: Sendable, Equatable {
    /// Relative to the root, `/`-separated.
    public var path: String
    public var size: Int
    /// Modification time in nanoseconds since the epoch (with the size, how an unchanged file is recognised
    /// without reading it).
    public var mtime: Int64
}

/// What the walk saw besides files (reported, not errors).
public struct TreeWalkReport: Sendable, Equatable {
    public var files: [ListedFile] = []
    public var skippedSymlinks = 0
    public var skippedDirectories = 0
    /// The walk stopped at `maxFiles`.
    public var truncated = false
}

/// Lists `root`'s regular files, sorted by path. Directories named in `skip` (and hidden ones whose name starts
/// with `.` other than `.github`) are not entered; symbolic links are counted and skipped.
public func listRepositoryFiles(root: String, skip: Set<String>, maxDepth: Int = 64, maxFiles: Int = 200_000) -> TreeWalkReport {
    var report = TreeWalkReport()
    var stack: [(relative: String, depth: Int)] = [("", 0)]
    while let (relative, depth) = stack.popLast() {
        let directory = relative.isEmpty ? root : root + "/" + relative
        guard let handle = opendir(directory) else { continue }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            let path = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                report.skippedSymlinks += 1
            case S_IFDIR:
                if skip.contains(name) || (name.hasPrefix(".") && name != ".github") || depth + 1 > maxDepth {
                    report.skippedDirectories += 1
                } else {
                    stack.append((path, depth + 1))
                }
            case S_IFREG:
                guard report.files.count < maxFiles else {
                    report.truncated = true
                    return sorted(report)
                }
                report.files.append(ListedFile(
                    path: path, size: Int(info.st_size), mtime: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)))
            default:
                break  // FIFOs, sockets, devices: never opened
            }
        }
    }
    return sorted(report)
}

private func sorted(_ report: TreeWalkReport) -> TreeWalkReport {
    var out = report
    out.files.sort { $0.path < $1.path }
    return out
}
