// Workspace: a fresh, private copy of a target repository for one revision, made by child processes.
public import EventLoop
import Glibc

/// A private copy of a repository where one revision's changes are applied and its tests run.
/// Created by `Workspace.create`; removed with `remove` (or left for inspection).
public final class Workspace {
    /// How the copy is made.
    ///
    /// `copy` (the default) runs `cp -a --reflink=auto SOURCE/. DEST`: one child process, the tree
    /// *and* `.git` are copied, so git works inside and nothing the tests do can reach the original. Then
    /// `git clean -ffdx` drops what git ignores or does not track (an ignored `.env`) and the remotes are
    /// removed (their URLs may hold credentials): the code under test sees the repository, not the host's
    /// checkout around it.
    /// On a filesystem with reflinks (btrfs, XFS) the copy is copy-on-write and near instant; elsewhere
    /// (ext4 here) it is a real copy. Hard links were rejected: a test writing a file in place would
    /// write the original. `git worktree add` was rejected: it registers the worktree in the original
    /// `.git` and shares its object store and refs with the sandboxed test (which could then write to
    /// them). Measured for a 2,000-file, ~100 MB tree + 35–57 MB .git on ext4 (no reflink), 2 shared cores:
    /// by hand on a quiet machine `cp -a` 0.3–0.65 s, `git clone --shared` + checkout 0.4–0.55 s,
    /// `git worktree add` 0.5–0.6 s; in `SandboxTests.measureWorkspaceCreationFor100MBRepository` under a
    /// load average of ~15, `copy` 0.66–6 s and `gitClone` 1.4–6 s. No clear winner on speed, so the
    /// simplest and most isolating one is the default.
    ///
    /// `gitClone` runs `git clone --shared --no-checkout` then `git checkout --detach REVISION`: only
    /// committed content, exactly at a revision (uncommitted files in the source are not seen). The
    /// clone borrows the source's objects through `objects/info/alternates` (read-only use).
    public enum Strategy: Sendable, Equatable {
        case copy
        case gitClone(revision: String)
    }

    /// The workspace directory (canonical: no symlinks, as bubblewrap's bind needs).
    public let path: String
    /// The repository this is a copy of.
    public let sourcePath: String
    /// `git rev-parse HEAD` in the workspace; nil when the source is not a git repository.
    public let baseCommit: String?
    /// How long creation took (copy + rev-parse), in milliseconds.
    public let creationMilliseconds: Int

    init(path: String, sourcePath: String, baseCommit: String?, creationMilliseconds: Int) {
        self.path = path
        self.sourcePath = sourcePath
        self.baseCommit = baseCommit
        self.creationMilliseconds = creationMilliseconds
    }

    /// Creates a new workspace under `parentDirectory` (created if missing) from `source`, then calls
    /// `completion` on the loop thread. Nothing here blocks the loop beyond a mkdir: the copy and git run
    /// as child processes.
    public static func create(
        loop: EventLoop, from source: String, parentDirectory: String, strategy: Strategy = .copy,
        completion: @escaping (Result<Workspace, SandboxError>) -> Void
    ) {
        let started = monotonicNanoseconds()
        let fail: (SandboxError) -> Void = { error in loop.schedule(afterNanoseconds: 0) { completion(.failure(error)) } }
        guard let sourceReal = realPath(source) else { return fail(.ioFailed(source, "realpath", errno: errno)) }
        if let error = makeDirectories(parentDirectory) { return fail(error) }
        var template = Array((parentDirectory + "/ws-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { return fail(.ioFailed(parentDirectory, "mkdtemp", errno: errno)) }
        let created = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let destination = realPath(created) else { return fail(.ioFailed(created, "realpath", errno: errno)) }
        let git = ExecutableLocator.find("git") ?? "/usr/bin/git"
        guard let cp = ExecutableLocator.find("cp") else {
            return fail(.spawnFailed("cp", "not found on PATH"))
        }
        // GIT_LITERAL_PATHSPECS: no git run here takes paths today, but any that does must read them literally
        // (see GitRepository: "git sees paths literally").
        let environment = inheritedEnvironment(overrides: ["LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_LITERAL_PATHSPECS": "1"])

        let finish: (String?) -> Void = { commit in
            let elapsed = Int((monotonicNanoseconds() - started) / 1_000_000)
            completion(.success(Workspace(path: destination, sourcePath: sourceReal, baseCommit: commit, creationMilliseconds: elapsed)))
        }
        let readHead: () -> Void = {
            guard access(destination + "/.git", F_OK) == 0 else { return finish(nil) }
            CommandRunner.runChecked(loop: loop, executable: git, arguments: ["rev-parse", "--verify", "HEAD"],
                                     workingDirectory: destination, environment: environment) { result in
                switch result {
                case .success(let output): finish(output.stdout.trimmingNewlines)
                case .failure: finish(nil)  // an empty repository has no HEAD commit yet
                }
            }
        }
        // What the code under test must not inherit from the host's checkout (SECURITY.md, "The sandbox"): files
        // git ignores or does not track (an ignored `.env` with secrets, local caches) are removed from the copy,
        // and so are the remotes (their URLs may carry credentials). Committed content and edits to tracked files
        // stay. Without `.git` there is nothing to tell them apart and the copy is kept as it is.
        let scrub: () -> Void = {
            guard access(destination + "/.git", F_OK) == 0 else { return readHead() }
            CommandRunner.runChecked(loop: loop, executable: git, arguments: ["-c", "core.hooksPath=/dev/null", "clean", "-ffdxq"],
                                     workingDirectory: destination, environment: environment) { result in
                if case .failure(let error) = result { return completion(.failure(error)) }
                CommandRunner.runChecked(loop: loop, executable: git, arguments: ["remote"], workingDirectory: destination,
                                         environment: environment) { result in
                    let remotes = ((try? result.get())?.stdout ?? "").split(separator: "\n").map(String.init).filter(isSafeRevision)
                    func removeNext(_ index: Int) {
                        guard index < remotes.count else { return readHead() }
                        CommandRunner.runChecked(loop: loop, executable: git, arguments: ["remote", "remove", remotes[index]],
                                                 workingDirectory: destination, environment: environment) { _ in removeNext(index + 1) }
                    }
                    removeNext(0)
                }
            }
        }
        switch strategy {
        case .copy:
            CommandRunner.runChecked(loop: loop, executable: cp, arguments: ["-a", "--reflink=auto", "--", sourceReal + "/.", destination],
                                     environment: environment) { result in
                switch result {
                case .success: scrub()
                case .failure(let error): completion(.failure(error))
                }
            }
        case .gitClone(let revision):
            guard isSafeRevision(revision) else { return fail(.invalidArgument(revision, "not a revision name")) }
            CommandRunner.runChecked(loop: loop, executable: git,
                                     arguments: ["clone", "--quiet", "--shared", "--no-checkout", "--", sourceReal, destination],
                                     environment: environment) { result in
                if case .failure(let error) = result { return completion(.failure(error)) }
                CommandRunner.runChecked(loop: loop, executable: git, arguments: ["checkout", "--quiet", "--detach", revision, "--"],
                                         workingDirectory: destination, environment: environment) { result in
                    switch result {
                    case .success: readHead()
                    case .failure(let error): completion(.failure(error))
                    }
                }
            }
        }
    }

    /// Deletes the workspace directory (`rm -rf` in a child process) and calls `completion` on the loop thread.
    public func remove(loop: EventLoop, completion: @escaping (Result<Void, SandboxError>) -> Void) {
        let rm = ExecutableLocator.find("rm") ?? "/bin/rm"
        CommandRunner.runChecked(loop: loop, executable: rm, arguments: ["-rf", "--", path]) { result in
            completion(result.map { _ in () })
        }
    }

    /// Applies a change set inside this workspace (see the free function `applyChanges`).
    public func apply(_ changes: [WorkspaceChange], limits: ChangeLimits = ChangeLimits()) -> Result<AppliedChanges, SandboxError> {
        applyChanges(changes, in: path, limits: limits)
    }
}

/// realpath(3); nil on failure (errno set).
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// `mkdir -p` for a short list of parents (a handful of syscalls: fine on the loop thread).
func makeDirectories(_ path: String) -> SandboxError? {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o755) != 0 && errno != EEXIST { return .ioFailed(current, "mkdir", errno: errno) }
    }
    return nil
}

/// A revision or commit name that cannot be mistaken for an option or a pathspec.
func isSafeRevision(_ revision: String) -> Bool {
    guard !revision.isEmpty, revision.utf8.count <= 256, !revision.hasPrefix("-") else { return false }
    return revision.utf8.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "^") || byte == UInt8(ascii: "~")
    }
}

extension String {
    /// The string without trailing newlines / carriage returns.
    var trimmingNewlines: String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
