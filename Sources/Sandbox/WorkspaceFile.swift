// WorkspaceFile: reads a file of a workspace or repository (an untrusted tree) without following symbolic links, bounded in size.
import Glibc

/// What `readWorkspaceFile` found at a path. The tree is untrusted: a proposal's test may have replaced any
/// file with a symbolic link (to `/proc/self/environ`, to a key file), a FIFO or a directory.
public enum WorkspaceFileRead: Sendable, Equatable {
    /// A regular file: its first bytes (at most the reader's limit) and its size when it was opened.
    /// Truncated when `bytes.count < size`.
    case file(bytes: [UInt8], size: Int)
    /// `prefix` (the path itself, or the part of it up to a parent directory) is a symbolic link; not followed.
    case symbolicLink(prefix: String)
    /// Not a regular file (`kind`: directory, FIFO, socket, character or block device); not opened, not read.
    case notRegularFile(kind: String)
    /// Nothing at that path (or a parent directory is missing).
    case missing
    /// The path is refused by the workspace path rule (absolute, `..`, `.git`, NUL …) or a system call failed.
    case refused(SandboxError)

    /// True for a regular file read only in part.
    public var isTruncated: Bool {
        if case .file(let bytes, let size) = self { return bytes.count < size }
        return false
    }

    /// Why `path`'s content is not shown, in one line for a human or an LLM (`"app/x.py is a symbolic link
    /// (not followed)"`); nil for a regular file and for a missing one.
    public func unreadableNote(_ path: String) -> String? {
        switch self {
        case .file, .missing: nil
        case .symbolicLink(let prefix):
            prefix == path
                ? "\(path) is a symbolic link (not followed)"
                : "\(path) was not read: its directory '\(prefix)' is a symbolic link (not followed)"
        case .notRegularFile(let kind): "\(path) is a \(kind), not a regular file (not read)"
        case .refused(let error): "\(path) was not read: \(error)"
        }
    }
}

/// Reads at most `maxBytes` of the regular file at `path` (relative, `/`-separated) inside the directory `root`,
/// never following a symbolic link — the read-side twin of `applyChanges`' walk.
///
/// The path must pass the workspace path rule (`validatePath`: no absolute path, `..`, `.` or `.git`
/// component, NUL). From a descriptor of `root` each parent is opened with `openat(O_DIRECTORY | O_NOFOLLOW)`
/// and the file itself with `O_NOFOLLOW`, which makes the kernel refuse (ELOOP) a final symbolic link rather
/// than follow it (open(2), O_NOFOLLOW; a parent swapped for a link between the checks fails the same way).
/// Each entry is first examined with `fstatat(AT_SYMLINK_NOFOLLOW)`, so a FIFO, socket or device is named and
/// never opened (opening a device can have effects; a FIFO would block); the open adds `O_NONBLOCK` and
/// `O_NOCTTY` anyway and the descriptor is `fstat`ed again before reading, for an entry swapped in between.
///
/// Synchronous, but cheap enough for the loop thread when `maxBytes` is small: a few local syscalls plus one
/// bounded read of a file that is nearly always in the page cache (the workspace was just copied). Callers
/// that read many files or large limits should run it on a worker thread.
public func readWorkspaceFile(_ path: String, in root: String, maxBytes: Int) -> WorkspaceFileRead {
    let components: [String]
    switch validatePath(path, limits: ChangeLimits()) {
    case .success(let value): components = value
    case .failure(let error): return .refused(error)
    }
    var dirFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard dirFD >= 0 else { return .refused(.ioFailed(root, "open", errno: errno)) }
    defer { close(dirFD) }
    var walked = ""
    for component in components.dropLast() {
        walked += walked.isEmpty ? component : "/" + component
        switch entryType(dirFD, component) {
        case .error(let err): return .refused(.ioFailed(path, "fstatat", errno: err))
        case .missing: return .missing
        case .present(let type):
            if type == S_IFLNK { return .symbolicLink(prefix: walked) }
            if type != S_IFDIR { return .missing }  // a parent that is a file: ENOTDIR, nothing there
        }
        let next = openat(dirFD, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if next < 0 {
            let err = errno
            return err == ELOOP ? .symbolicLink(prefix: walked) : .refused(.ioFailed(path, "openat", errno: err))
        }
        close(dirFD)
        dirFD = next
    }
    let last = components[components.count - 1]
    switch entryType(dirFD, last) {
    case .error(let err): return .refused(.ioFailed(path, "fstatat", errno: err))
    case .missing: return .missing
    case .present(let type):
        if type == S_IFLNK { return .symbolicLink(prefix: path) }
        if type != S_IFREG { return .notRegularFile(kind: fileKind(type)) }
    }
    let fd = openat(dirFD, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    if fd < 0 {
        let err = errno
        if err == ELOOP { return .symbolicLink(prefix: path) }
        return err == ENOENT ? .missing : .refused(.ioFailed(path, "openat", errno: err))
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { return .refused(.ioFailed(path, "fstat", errno: errno)) }
    let type = info.st_mode & S_IFMT
    guard type == S_IFREG else { return .notRegularFile(kind: fileKind(type)) }
    let limit = max(0, maxBytes)
    // Sized for the file as fstat saw it (plus a byte to notice growth), not for the limit: a caller that keeps
    // many small files (the code indexer) must not hold `maxBytes` of capacity per file. Grows if the file did.
    var bytes = [UInt8](repeating: 0, count: min(limit, max(0, Int(info.st_size)) + 1))
    var filled = 0
    while filled < limit {
        if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: min(limit - filled, max(bytes.count, 4096)))) }
        let n = bytes[filled...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .refused(.ioFailed(path, "read", errno: errno))
        }
        if n == 0 { break }
        filled += n
    }
    bytes.removeSubrange(filled...)
    // A file that grew while being read reports at least what was read, plus one byte if the buffer filled
    // up (there may be more), so a full read of a growing file is still marked truncated.
    var size = max(Int(info.st_size), filled)
    if filled == limit && size == filled && limit > 0 {
        var probe: UInt8 = 0
        if read(fd, &probe, 1) == 1 { size += 1 }
    }
    return .file(bytes: bytes, size: size)
}

/// A human name for an `S_IFMT` file type.
private func fileKind(_ type: mode_t) -> String {
    switch type {
    case S_IFDIR: "directory"
    case S_IFIFO: "FIFO (named pipe)"
    case S_IFSOCK: "socket"
    case S_IFCHR: "character device"
    case S_IFBLK: "block device"
    case S_IFLNK: "symbolic link"
    case S_IFREG: "regular file"
    default: "special file"
    }
}
