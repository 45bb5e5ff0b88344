// SandboxError: every way a workspace, change set, test run or git operation can fail, with its context.

/// A sandbox failure: a kind (private, so new kinds do not break callers) plus the context that explains it.
/// `code` is a stable machine-readable name; `description` is for logs and for users.
public struct SandboxError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: String, Sendable, Equatable {
        case invalidPath = "invalid_path"
        case symlinkInPath = "symlink_in_path"
        case fileTooLarge = "file_too_large"
        case changesTooLarge = "changes_too_large"
        case missingFile = "missing_file"
        case alreadyExists = "already_exists"
        case notRegularFile = "not_regular_file"
        case missingContent = "missing_content"
        case duplicatePath = "duplicate_path"
        case ioFailed = "io_failed"
        case spawnFailed = "spawn_failed"
        case commandFailed = "command_failed"
        case dirtyWorkingTree = "dirty_working_tree"
        case invalidArgument = "invalid_argument"
        case untrackedFile = "untracked_file"
        case unreviewedCommit = "unreviewed_commit"
        case noChanges = "no_changes"
    }

    private let kind: Kind
    /// The path, command or argument the error is about (may be empty).
    public let subject: String
    /// Details: the reason, errno text or git's stderr.
    public let detail: String

    private init(_ kind: Kind, _ subject: String, _ detail: String) {
        self.kind = kind
        self.subject = subject
        self.detail = detail
    }

    /// A stable name for the kind of failure (`invalid_path`, `symlink_in_path`, `command_failed` …).
    public var code: String { kind.rawValue }

    public var description: String {
        let about = subject.isEmpty ? "" : " '\(subject)'"
        return detail.isEmpty ? "\(code)\(about)" : "\(code)\(about): \(detail)"
    }

    /// True for refusals of the change set itself (bad path, size, missing file): the fix, not the server, is wrong.
    public var isRejectedChange: Bool {
        switch kind {
        case .invalidPath, .symlinkInPath, .fileTooLarge, .changesTooLarge, .missingFile, .alreadyExists,
            .notRegularFile, .missingContent, .duplicatePath, .untrackedFile:
            true
        case .ioFailed, .spawnFailed, .commandFailed, .dirtyWorkingTree, .invalidArgument, .unreviewedCommit, .noChanges:
            false
        }
    }

    static func invalidPath(_ path: String, _ reason: String) -> Self { .init(.invalidPath, path, reason) }
    static func symlinkInPath(_ path: String, component: String) -> Self {
        .init(.symlinkInPath, path, "component '\(component)' is a symbolic link")
    }
    static func fileTooLarge(_ path: String, bytes: Int, limit: Int) -> Self {
        .init(.fileTooLarge, path, "\(bytes) bytes, limit \(limit)")
    }
    static func changesTooLarge(bytes: Int, limit: Int) -> Self {
        .init(.changesTooLarge, "", "\(bytes) bytes in total, limit \(limit)")
    }
    static func missingFile(_ path: String) -> Self { .init(.missingFile, path, "no such file") }
    static func alreadyExists(_ path: String) -> Self { .init(.alreadyExists, path, "create of an existing path") }
    static func notRegularFile(_ path: String, _ what: String) -> Self { .init(.notRegularFile, path, what) }
    static func missingContent(_ path: String) -> Self { .init(.missingContent, path, "create/modify without content") }
    static func duplicatePath(_ path: String) -> Self { .init(.duplicatePath, path, "more than one change for this path") }
    static func ioFailed(_ path: String, _ call: String, errno: Int32) -> Self {
        .init(.ioFailed, path, "\(call): \(errnoText(errno)) (errno \(errno))")
    }
    static func spawnFailed(_ command: String, _ detail: String) -> Self { .init(.spawnFailed, command, detail) }
    static func commandFailed(_ command: String, _ detail: String) -> Self { .init(.commandFailed, command, detail) }
    static func dirtyWorkingTree(_ path: String, _ status: String) -> Self { .init(.dirtyWorkingTree, path, status) }
    static func invalidArgument(_ value: String, _ reason: String) -> Self { .init(.invalidArgument, value, reason) }
    static func untrackedFile(_ path: String, _ action: String) -> Self {
        .init(.untrackedFile, path, "\(action) of a file git does not track at HEAD (an untracked or ignored file is never changed)")
    }
    static func unreviewedCommit(_ difference: String) -> Self {
        .init(.unreviewedCommit, "", "the commit would differ from the reviewed changes: \(difference); nothing was committed")
    }
    static func noChanges() -> Self {
        .init(.noChanges, "", "the approved changes are already in the repository (no difference from HEAD); nothing was committed")
    }
}
