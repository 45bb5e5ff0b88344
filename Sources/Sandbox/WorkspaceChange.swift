// WorkspaceChange: applying a change set (create/modify/delete) inside a directory without ever writing outside it.
import Glibc

/// One file change of a revision, as it comes from a proposal or an LLM fix (untrusted).
public struct WorkspaceChange: Sendable, Equatable {
    /// What to do with `path`.
    public enum Action: String, Sendable, Equatable {
        case create, modify, delete
    }

    /// Relative path inside the workspace, `/`-separated.
    public var path: String
    public var action: Action
    /// The whole new content (create/modify); ignored for delete.
    public var content: String?

    public init(path: String, action: Action, content: String? = nil) {
        self.path = path
        self.action = action
        self.content = content
    }
}

/// Bounds on a change set (invariant 6: sizes are bounded).
public struct ChangeLimits: Sendable, Equatable {
    /// Largest content of one file. Default 1 MiB: source files, not assets.
    public var maxFileBytes: Int
    /// Largest total content of a change set. Default 8 MiB.
    public var maxTotalBytes: Int
    /// Most changes in one set. Default 1,000.
    public var maxChanges: Int
    /// Longest relative path in bytes. Default 1,024.
    public var maxPathBytes: Int

    public init(maxFileBytes: Int = 1 << 20, maxTotalBytes: Int = 8 << 20, maxChanges: Int = 1000, maxPathBytes: Int = 1024) {
        self.maxFileBytes = maxFileBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxChanges = maxChanges
        self.maxPathBytes = maxPathBytes
    }
}

/// What `applyChanges` did (paths as given, in the order given).
public struct AppliedChanges: Sendable, Equatable {
    public var created: [String] = []
    public var modified: [String] = []
    public var deleted: [String] = []
    /// Directories made for created files (outermost first), so an undo can remove exactly those.
    public var createdDirectories: [String] = []
    public var bytesWritten = 0
    public init() {}
}

/// Applies `changes` inside the directory `root`, all or nothing at validation time.
///
/// Path rule (the simplest safe one): a path is relative, `/`-separated, made of non-empty components
/// that are not `.`, `..` or `.git` (writing `.git/hooks` or `.git/config` would run code on the host at
/// commit time), without NUL; and **no component may be a symbolic link**, wherever it points. The walk
/// is done with `openat(O_NOFOLLOW | O_DIRECTORY)` from a descriptor of `root`, component by component,
/// so a symlink swapped in between validation and write is refused by the kernel rather than followed;
/// the final file is opened with `O_NOFOLLOW` (and `O_EXCL` for create).
///
/// Semantics: create requires that the path does not exist (missing parent directories are created);
/// modify and delete require an existing regular file. Two changes for one path are refused.
/// Every change is validated before anything is written, so a refusal writes nothing at all. A failure
/// *while* writing (disk full, a concurrent writer) can leave earlier changes applied; it is reported as
/// `io_failed`. The writes are synchronous but bounded by `limits` (8 MiB by default), which is why this
/// may run on the loop thread.
public func applyChanges(
    _ changes: [WorkspaceChange], in root: String, limits: ChangeLimits = ChangeLimits()
) -> Result<AppliedChanges, SandboxError> {
    var applied = AppliedChanges()
    if let error = applyChanges(changes, in: root, limits: limits, recording: &applied) { return .failure(error) }
    return .success(applied)
}

/// `applyChanges`, recording in `applied` what it did even when a write fails midway, so that the caller can
/// undo exactly that (GitRepository restores the real repository with it).
func applyChanges(
    _ changes: [WorkspaceChange], in root: String, limits: ChangeLimits, recording applied: inout AppliedChanges
) -> SandboxError? {
    guard changes.count <= limits.maxChanges else {
        return .invalidArgument("\(changes.count) changes", "more than \(limits.maxChanges) changes")
    }
    let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard rootFD >= 0 else { return .ioFailed(root, "open", errno: errno) }
    defer { close(rootFD) }

    // Phase 1: validate everything.
    var seen = Set<String>()
    var total = 0
    var plans: [(change: WorkspaceChange, components: [String])] = []
    for change in changes {
        let components: [String]
        switch validatePath(change.path, limits: limits) {
        case .success(let c): components = c
        case .failure(let error): return error
        }
        let key = components.joined(separator: "/")
        guard seen.insert(key).inserted else { return .duplicatePath(change.path) }
        if change.action != .delete {
            guard let content = change.content else { return .missingContent(change.path) }
            let size = content.utf8.count
            guard size <= limits.maxFileBytes else {
                return .fileTooLarge(change.path, bytes: size, limit: limits.maxFileBytes)
            }
            total += size
            guard total <= limits.maxTotalBytes else {
                return .changesTooLarge(bytes: total, limit: limits.maxTotalBytes)
            }
        }
        if let error = checkExisting(rootFD: rootFD, path: change.path, components: components, action: change.action) {
            return error
        }
        plans.append((change, components))
    }

    // Phase 2: write.
    for (change, components) in plans {
        switch write(rootFD: rootFD, change: change, components: components, createdDirectories: &applied.createdDirectories) {
        case .success(let bytes):
            applied.bytesWritten += bytes
            switch change.action {
            case .create: applied.created.append(change.path)
            case .modify: applied.modified.append(change.path)
            case .delete: applied.deleted.append(change.path)
            }
        case .failure(let error):
            return error
        }
    }
    return nil
}

/// Splits and checks a relative path; returns its components.
func validatePath(_ path: String, limits: ChangeLimits) -> Result<[String], SandboxError> {
    if path.isEmpty { return .failure(.invalidPath(path, "empty path")) }
    if path.utf8.count > limits.maxPathBytes { return .failure(.invalidPath(path, "longer than \(limits.maxPathBytes) bytes")) }
    if path.utf8.contains(0) { return .failure(.invalidPath(path, "contains NUL")) }
    if path.hasPrefix("/") { return .failure(.invalidPath(path, "absolute path")) }
    let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    for component in components {
        switch component {
        case "": return .failure(.invalidPath(path, "empty component (leading, trailing or double slash)"))
        case ".": return .failure(.invalidPath(path, "'.' component"))
        case "..": return .failure(.invalidPath(path, "'..' component"))
        default:
            if component.lowercased() == ".git" { return .failure(.invalidPath(path, "inside .git")) }
            if component.utf8.count > 255 { return .failure(.invalidPath(path, "component longer than 255 bytes")) }
        }
    }
    return .success(components)
}

/// The type of `name` in directory `dirFD`, without following a final symlink; nil when it does not exist.
func entryType(_ dirFD: Int32, _ name: String) -> Entry {
    var info = stat()
    if fstatat(dirFD, name, &info, AT_SYMLINK_NOFOLLOW) != 0 {
        return errno == ENOENT ? .missing : .error(errno)
    }
    return .present(info.st_mode & S_IFMT)
}

/// What `fstatat` found.
enum Entry {
    case missing
    case present(mode_t)
    case error(Int32)
}

/// Walks the parents of `components` read-only and checks the final entry against `action`.
private func checkExisting(rootFD: Int32, path: String, components: [String], action: WorkspaceChange.Action) -> SandboxError? {
    var dirFD = dup(rootFD)
    guard dirFD >= 0 else { return .ioFailed(path, "dup", errno: errno) }
    defer { close(dirFD) }
    for component in components.dropLast() {
        switch entryType(dirFD, component) {
        case .error(let err): return .ioFailed(path, "fstatat", errno: err)
        case .missing:
            // The rest of the parents are missing: fine for create (they will be made), not otherwise.
            return action == .create ? nil : .missingFile(path)
        case .present(let type):
            if type == S_IFLNK { return .symlinkInPath(path, component: component) }
            if type != S_IFDIR { return .invalidPath(path, "component '\(component)' is not a directory") }
            let next = openat(dirFD, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return .ioFailed(path, "openat", errno: errno) }
            close(dirFD)
            dirFD = next
        }
    }
    let last = components[components.count - 1]
    switch entryType(dirFD, last) {
    case .error(let err): return .ioFailed(path, "fstatat", errno: err)
    case .missing: return action == .create ? nil : .missingFile(path)
    case .present(let type):
        if type == S_IFLNK { return .symlinkInPath(path, component: last) }
        if action == .create { return .alreadyExists(path) }
        if type != S_IFREG { return .notRegularFile(path, "not a regular file") }
        return nil
    }
}

/// Performs one validated change; returns the bytes written.
private func write(
    rootFD: Int32, change: WorkspaceChange, components: [String], createdDirectories: inout [String]
) -> Result<Int, SandboxError> {
    let path = change.path
    var dirFD = dup(rootFD)
    guard dirFD >= 0 else { return .failure(.ioFailed(path, "dup", errno: errno)) }
    defer { close(dirFD) }
    var walked = ""
    for component in components.dropLast() {
        walked += walked.isEmpty ? component : "/" + component
        var next = openat(dirFD, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if next < 0 && errno == ENOENT && change.action == .create {
            if mkdirat(dirFD, component, 0o755) == 0 {
                createdDirectories.append(walked)
            } else if errno != EEXIST {
                return .failure(.ioFailed(path, "mkdirat", errno: errno))
            }
            next = openat(dirFD, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        // ELOOP/ENOTDIR here mean a symlink or file appeared after validation: refused by the kernel.
        guard next >= 0 else { return .failure(.ioFailed(path, "openat", errno: errno)) }
        close(dirFD)
        dirFD = next
    }
    let last = components[components.count - 1]
    switch change.action {
    case .delete:
        guard unlinkat(dirFD, last, 0) == 0 else { return .failure(.ioFailed(path, "unlinkat", errno: errno)) }
        return .success(0)
    case .create:
        let fd = openat(dirFD, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return .failure(.ioFailed(path, "openat", errno: errno)) }
        defer { close(fd) }
        return writeAll(fd, change.content ?? "", path: path)
    case .modify:
        // Write a new inode and rename it over the old name: a file hard-linked to something outside the
        // workspace (or shared with the original repository) is never written through, and readers see
        // the old or the new content, never a half-written file. The old mode is kept.
        var old = stat()
        guard fstatat(dirFD, last, &old, AT_SYMLINK_NOFOLLOW) == 0 else {
            return .failure(.ioFailed(path, "fstatat", errno: errno))
        }
        let temp = ".\(last.prefix(200)).medic-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = openat(dirFD, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .failure(.ioFailed(path, "openat", errno: errno)) }
        let written = writeAll(fd, change.content ?? "", path: path)
        _ = fchmod(fd, old.st_mode & 0o7777)
        close(fd)
        if case .failure = written {
            unlinkat(dirFD, temp, 0)
            return written
        }
        guard renameat(dirFD, temp, dirFD, last) == 0 else {
            let err = errno
            unlinkat(dirFD, temp, 0)
            return .failure(.ioFailed(path, "renameat", errno: err))
        }
        return written
    }
}

/// Writes all of `content` to `fd`, retrying short writes and EINTR.
private func writeAll(_ fd: Int32, _ content: String, path: String) -> Result<Int, SandboxError> {
    let bytes = Array(content.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(.ioFailed(path, "write", errno: errno))
        }
        offset += n
    }
    return .success(bytes.count)
}

/// strerror(3) as a String.
func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// Undoes the creations recorded in `applied` inside `root`: unlinks each created file, then removes each
/// directory made for them if it is empty (innermost first). Parents are walked with `O_NOFOLLOW` like the
/// writes, and `unlinkat` removes a name, never what a link points to: nothing else is ever removed.
func removeCreated(_ applied: AppliedChanges, in root: String) {
    let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard rootFD >= 0 else { return }
    defer { close(rootFD) }
    for path in applied.created { removeEntry(rootFD: rootFD, path, flags: 0) }
    for path in applied.createdDirectories.reversed() { removeEntry(rootFD: rootFD, path, flags: AT_REMOVEDIR) }
}

/// `unlinkat` of a validated relative path below `rootFD`; failures are ignored (best-effort undo).
private func removeEntry(rootFD: Int32, _ path: String, flags: Int32) {
    let components = path.split(separator: "/").map(String.init)
    guard let last = components.last else { return }
    var dirFD = dup(rootFD)
    guard dirFD >= 0 else { return }
    defer { close(dirFD) }
    for component in components.dropLast() {
        let next = openat(dirFD, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard next >= 0 else { return }
        close(dirFD)
        dirFD = next
    }
    _ = unlinkat(dirFD, last, flags)
}
