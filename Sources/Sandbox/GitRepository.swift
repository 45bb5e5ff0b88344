// GitRepository: loop-driven git operations on the target repository (status, HEAD, apply+commit, revert).
public import EventLoop
import Glibc

/// The identity a commit is authored by.
public struct GitAuthor: Sendable, Equatable {
    public var name: String
    public var email: String
    public init(name: String, email: String) {
        self.name = name
        self.email = email
    }
}

/// Git operations on one repository, each run as `git` child processes and answered through a completion
/// on the loop thread. Operations on one instance are serialized (git's index.lock would refuse
/// concurrent ones anyway). Repository hooks are disabled (`core.hooksPath=/dev/null`): a commit made
/// by Medic must not run code that a change could have influenced. Errors carry git's stderr.
public final class GitRepository {
    public let path: String
    private let loop: EventLoop
    private let git: String
    private let environment: [String: String]
    private var queue: [(@escaping () -> Void) -> Void] = []
    private var busy = false

    /// `gitExecutable` defaults to `git` on PATH. The committer identity is Medic's unless the
    /// environment or the repository configures one (the author is given per commit).
    public init(loop: EventLoop, path: String, gitExecutable: String? = nil) {
        self.loop = loop
        self.path = path
        self.git = gitExecutable ?? ExecutableLocator.find("git") ?? "/usr/bin/git"
        self.environment = inheritedEnvironment(overrides: [
            "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0",
        ])
    }

    /// Whether the working tree and index have no changes (untracked files count as changes).
    public func isClean(_ completion: @escaping (Result<Bool, SandboxError>) -> Void) {
        enqueue { done in
            self.status { result in
                done()
                completion(result.map { $0.isEmpty })
            }
        }
    }

    /// The commit id of HEAD.
    public func headCommit(_ completion: @escaping (Result<String, SandboxError>) -> Void) {
        enqueue { done in
            self.revParseHead { result in
                done()
                completion(result)
            }
        }
    }

    /// Applies `changes` (validated exactly as in a workspace: see `applyChanges`) and commits them with
    /// `message` by `author`. Refused when the working tree is dirty (Medic must not commit someone's
    /// unrelated edits). If the commit fails after files were written, the tree is restored
    /// (`git reset --hard HEAD` plus removal of files this call created). Returns the new commit id.
    public func applyAndCommit(
        _ changes: [WorkspaceChange], message: String, author: GitAuthor, limits: ChangeLimits = ChangeLimits(),
        completion: @escaping (Result<String, SandboxError>) -> Void
    ) {
        if let error = Self.validate(author: author) ?? (message.isEmpty ? .invalidArgument("message", "empty commit message") : nil) {
            loop.schedule(afterNanoseconds: 0) { completion(.failure(error)) }
            return
        }
        enqueue { done in
            let finish: (Result<String, SandboxError>) -> Void = { result in
                done()
                completion(result)
            }
            self.status { result in
                switch result {
                case .failure(let error): return finish(.failure(error))
                case .success(let status) where !status.isEmpty:
                    return finish(.failure(.dirtyWorkingTree(self.path, status.trimmingNewlines)))
                case .success: break
                }
                let applied: AppliedChanges
                switch applyChanges(changes, in: self.path, limits: limits) {
                case .failure(let error): return finish(.failure(error))
                case .success(let value): applied = value
                }
                let paths = changes.map(\.path)
                self.runGit(["add", "-A", "--"] + paths) { result in
                    if case .failure(let error) = result { return self.restore(created: applied.created, error: error, finish) }
                    let identity = "\(author.name) <\(author.email)>"
                    self.runGit(["-c", "user.name=Medic", "-c", "user.email=medic@localhost", "commit", "--quiet",
                                 "--no-verify", "--author=\(identity)", "-m", message]) { result in
                        if case .failure(let error) = result { return self.restore(created: applied.created, error: error, finish) }
                        self.revParseHead(finish)
                    }
                }
            }
        }
    }

    /// Reverts `commit` with a new commit (`git revert --no-edit`); returns the revert commit's id.
    /// On a conflict the revert is aborted, leaving the tree as it was.
    public func revert(_ commit: String, completion: @escaping (Result<String, SandboxError>) -> Void) {
        guard isSafeRevision(commit) else {
            loop.schedule(afterNanoseconds: 0) { completion(.failure(.invalidArgument(commit, "not a commit id"))) }
            return
        }
        enqueue { done in
            let finish: (Result<String, SandboxError>) -> Void = { result in
                done()
                completion(result)
            }
            self.runGit(["-c", "user.name=Medic", "-c", "user.email=medic@localhost", "revert", "--no-edit", commit]) { result in
                switch result {
                case .success: self.revParseHead(finish)
                case .failure(let error):
                    self.runGit(["revert", "--abort"]) { _ in finish(.failure(error)) }
                }
            }
        }
    }

    // MARK: internals

    /// Runs operations one at a time; each calls `done` exactly once.
    private func enqueue(_ operation: @escaping (@escaping () -> Void) -> Void) {
        queue.append(operation)
        runNext()
    }

    private func runNext() {
        guard !busy, !queue.isEmpty else { return }
        busy = true
        let operation = queue.removeFirst()
        operation { [weak self] in
            guard let self else { return }
            self.busy = false
            self.runNext()
        }
    }

    private func runGit(_ arguments: [String], _ completion: @escaping (Result<CommandOutput, SandboxError>) -> Void) {
        CommandRunner.runChecked(loop: loop, executable: git, arguments: ["-c", "core.hooksPath=/dev/null"] + arguments,
                                 workingDirectory: path, environment: environment, completion: completion)
    }

    private func status(_ completion: @escaping (Result<String, SandboxError>) -> Void) {
        runGit(["status", "--porcelain", "--untracked-files=all"]) { completion($0.map(\.stdout)) }
    }

    private func revParseHead(_ completion: @escaping (Result<String, SandboxError>) -> Void) {
        runGit(["rev-parse", "--verify", "HEAD"]) { completion($0.map { $0.stdout.trimmingNewlines }) }
    }

    /// Puts the tree back after a failed commit: tracked files from HEAD, created files removed.
    private func restore(created: [String], error: SandboxError, _ finish: @escaping (Result<String, SandboxError>) -> Void) {
        runGit(["reset", "--quiet", "--hard", "HEAD"]) { _ in
            for path in created { _ = unlink(self.path + "/" + path) }
            finish(.failure(error))
        }
    }

    /// An author identity git will accept verbatim (no angle brackets or newlines to forge headers).
    static func validate(author: GitAuthor) -> SandboxError? {
        let forbidden: Set<Character> = ["<", ">", "\n", "\r", "\0"]
        if author.name.isEmpty || author.name.contains(where: forbidden.contains) {
            return .invalidArgument(author.name, "invalid author name")
        }
        if author.email.isEmpty || author.email.contains(where: forbidden.contains) {
            return .invalidArgument(author.email, "invalid author email")
        }
        return nil
    }
}
