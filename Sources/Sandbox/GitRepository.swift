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
///
/// **Git sees paths literally.** Change paths are untrusted, and git reads a path argument as a *pathspec*
/// (gitglossary(7), "pathspec"): `?env` and `*` are globs and `:!zz` / `:(exclude)` / `:(top)` are magic, so
/// `git add -- ?env` also stages the repository's ignored `.env` once `.gitignore` stops ignoring it. Every
/// git child therefore runs with `--literal-pathspecs` (git(1): "Treat pathspecs literally (i.e. no
/// globbing, no pathspec magic)"), also exported as `GIT_LITERAL_PATHSPECS=1` for anything git spawns,
/// and paths always follow `--`. On top of that, `applyAndCommit` checks what it is about to commit against
/// the reviewed change set and commits nothing else.
public final class GitRepository {
    public let path: String
    let loop: EventLoop
    let git: String
    let environment: [String: String]
    private var queue: [(@escaping () -> Void) -> Void] = []
    private var busy = false

    /// `gitExecutable` defaults to `git` on PATH. The committer identity is Medic's unless the
    /// environment or the repository configures one (the author is given per commit).
    public init(loop: EventLoop, path: String, gitExecutable: String? = nil) {
        self.loop = loop
        self.path = path
        self.git = gitExecutable ?? ExecutableLocator.find("git") ?? "/usr/bin/git"
        self.environment = inheritedEnvironment(overrides: [
            "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_LITERAL_PATHSPECS": "1",
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
    /// `message` by `author`; returns the new commit id. The commit contains the reviewed changes and nothing
    /// else:
    ///
    /// 1. refused when the working tree is dirty (Medic must not commit someone's unrelated edits);
    /// 2. a `modify` or `delete` must name a file git tracks at HEAD (`git ls-tree`), checked before anything
    ///    is written: an untracked or ignored file of the host (`.env`) is never overwritten or deleted;
    /// 3. the files are written (`applyChanges`) and staged by their literal paths (`git add --all --force`:
    ///    forced so a reviewed file that `.gitignore` matches is committed as reviewed, not silently left out);
    /// 4. the staged difference from HEAD (`git diff --cached --name-status --no-renames -z`) must be exactly
    ///    the reviewed set — create → `A`, delete → `D`, modify → `M`, or absent when the new content equals
    ///    HEAD's — else `unreviewed_commit`; an empty difference is `no_changes` ("already in the repository");
    /// 5. `git commit` of that index.
    ///
    /// On any failure after step 3 began the tree is restored without touching any file this call did not
    /// write: the index is reset to HEAD (`git reset`, *not* `--hard`, which would delete from the work tree
    /// any staged file that HEAD lacks), modified and deleted files (tracked, by step 2) are checked out from
    /// HEAD, and only the files and directories this call created are removed.
    public func applyAndCommit(
        _ changes: [WorkspaceChange], message: String, author: GitAuthor, limits: ChangeLimits = ChangeLimits(),
        completion: @escaping (Result<String, SandboxError>) -> Void
    ) {
        var refusal = Self.validate(author: author) ?? (message.isEmpty ? .invalidArgument("message", "empty commit message") : nil)
        // Paths go to git's argv: they must pass the path rule (no NUL, no "..", not in .git) before any git runs.
        for change in changes where refusal == nil {
            if case .failure(let error) = validatePath(change.path, limits: limits) { refusal = error }
        }
        if changes.isEmpty && refusal == nil { refusal = .invalidArgument("changes", "no changes to apply") }
        if let refusal {
            loop.schedule(afterNanoseconds: 0) { completion(.failure(refusal)) }
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
                self.checkTracked(changes) { error in
                    if let error { return finish(.failure(error)) }
                    var applied = AppliedChanges()
                    if let error = applyChanges(changes, in: self.path, limits: limits, recording: &applied) {
                        return self.restore(applied, error: error, finish)
                    }
                    self.stageAndCommit(changes, applied: applied, message: message, author: author, finish)
                }
            }
        }
    }

    /// Steps 3–5 of `applyAndCommit`, once the files are written.
    private func stageAndCommit(
        _ changes: [WorkspaceChange], applied: AppliedChanges, message: String, author: GitAuthor,
        _ finish: @escaping (Result<String, SandboxError>) -> Void
    ) {
        runGit(["add", "--all", "--force", "--"] + changes.map(\.path)) { result in
            if case .failure(let error) = result { return self.restore(applied, error: error, finish) }
            self.runGit(["diff", "--cached", "--name-status", "--no-renames", "--no-ext-diff", "-z"]) { result in
                let staged: String
                switch result {
                case .failure(let error): return self.restore(applied, error: error, finish)
                case .success(let output): staged = output.stdout
                }
                if let difference = Self.stagedDifference(staged, reviewed: changes) {
                    return self.restore(applied, error: .unreviewedCommit(difference), finish)
                }
                if staged.isEmpty { return self.restore(applied, error: .noChanges(), finish) }
                let identity = "\(author.name) <\(author.email)>"
                self.runGit(["-c", "user.name=Medic", "-c", "user.email=medic@localhost", "commit", "--quiet",
                             "--no-verify", "--author=\(identity)", "-m", message]) { result in
                    if case .failure(let error) = result { return self.restore(applied, error: error, finish) }
                    self.revParseHead(finish)
                }
            }
        }
    }

    /// Fails with `untracked_file` when a modify or delete names a path git does not track at HEAD.
    private func checkTracked(_ changes: [WorkspaceChange], _ completion: @escaping (SandboxError?) -> Void) {
        let targets = changes.filter { $0.action != .create }
        guard !targets.isEmpty else { return completion(nil) }
        runGit(["ls-tree", "-r", "-z", "--name-only", "--full-tree", "HEAD", "--"] + targets.map(\.path)) { result in
            switch result {
            case .failure(let error): completion(error)
            case .success(let output):
                let tracked = Set(output.stdout.split(separator: "\0").map(String.init))
                let untracked = targets.first { !tracked.contains($0.path) }
                completion(untracked.map { .untrackedFile($0.path, $0.action.rawValue) })
            }
        }
    }

    /// Compares git's `--name-status -z` list of staged changes (`STATUS NUL PATH NUL` …, renames off) with
    /// the reviewed change set: create → `A`, delete → `D`, modify → `M` or absent (content equal to HEAD).
    /// Returns a description of every difference (the first few), or nil when they match.
    public static func stagedDifference(_ nameStatus: String, reviewed changes: [WorkspaceChange]) -> String? {
        var staged: [(status: String, path: String)] = []
        var fields = nameStatus.split(separator: "\0", omittingEmptySubsequences: true).map(String.init)[...]
        while let status = fields.popFirst() {
            // R and C (renames, copies) carry two paths; they cannot match a reviewed change either way.
            let paths = status.hasPrefix("R") || status.hasPrefix("C") ? [fields.popFirst(), fields.popFirst()] : [fields.popFirst()]
            staged.append((status, paths.compactMap { $0 }.joined(separator: " -> ")))
        }
        let reviewed = Dictionary(changes.map { ($0.path, $0.action) }, uniquingKeysWith: { first, _ in first })
        var problems: [String] = []
        var seen = Set<String>()
        for (status, path) in staged {
            seen.insert(path)
            switch (reviewed[path], status) {
            case (.create?, "A"), (.delete?, "D"), (.modify?, "M"): continue
            case (nil, _): problems.append("'\(path)' (\(status)) is not among the reviewed changes")
            case (let action?, _): problems.append("'\(path)' is \(status) in git but '\(action.rawValue)' in the review")
            }
        }
        for change in changes where !seen.contains(change.path) && change.action != .modify {
            problems.append("'\(change.path)' (\(change.action.rawValue)) is not staged")
        }
        guard !problems.isEmpty else { return nil }
        let shown = problems.prefix(5).joined(separator: "; ")
        return problems.count > 5 ? shown + "; and \(problems.count - 5) more" : shown
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
    func enqueue(_ operation: @escaping (@escaping () -> Void) -> Void) {
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
        CommandRunner.runChecked(loop: loop, executable: git, arguments: ["--literal-pathspecs", "-c", "core.hooksPath=/dev/null"] + arguments,
                                 workingDirectory: path, environment: environment, completion: completion)
    }

    private func status(_ completion: @escaping (Result<String, SandboxError>) -> Void) {
        runGit(["status", "--porcelain", "--untracked-files=all"]) { completion($0.map(\.stdout)) }
    }

    private func revParseHead(_ completion: @escaping (Result<String, SandboxError>) -> Void) {
        runGit(["rev-parse", "--verify", "HEAD"]) { completion($0.map { $0.stdout.trimmingNewlines }) }
    }

    /// Puts the tree back after a failed apply, touching only what `applied` wrote: the index is reset to
    /// HEAD (mixed reset: the work tree is left alone, so nothing staged by mistake is deleted), modified and
    /// deleted files — all tracked at HEAD, see `checkTracked` — are checked out from HEAD, and the created
    /// files and directories are removed. Best effort: the original error is reported either way.
    private func restore(_ applied: AppliedChanges, error: SandboxError, _ finish: @escaping (Result<String, SandboxError>) -> Void) {
        runGit(["reset", "--quiet"]) { _ in
            let tracked = applied.modified + applied.deleted
            let undoCreations = {
                removeCreated(applied, in: self.path)
                finish(.failure(error))
            }
            guard !tracked.isEmpty else { return undoCreations() }
            self.runGit(["checkout", "--quiet", "HEAD", "--"] + tracked) { _ in undoCreations() }
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

/// One file of a commit, as `GitRepository.files(at:paths:maxBytes:)` reads it.
public enum CommittedFile: Sendable, Equatable {
    case text(String)
    /// Not in that commit.
    case absent
    /// Over the size bound, or not text (a NUL byte).
    case omitted
}

extension GitRepository {
    /// The content of `paths` at `commit` (`git cat-file blob COMMIT:PATH`, one child per path, serialized with
    /// the repository's other operations). Paths are the reviewed, validated change paths; `<rev>:<path>` names
    /// an object by its literal path (gitrevisions(7)), so no pathspec magic applies.
    public func files(
        at commit: String, paths: [String], maxBytes: Int = 1 << 20,
        completion: @escaping (Result<[String: CommittedFile], SandboxError>) -> Void
    ) {
        guard isSafeRevision(commit) else {
            loop.schedule(afterNanoseconds: 0) { completion(.failure(.invalidArgument(commit, "not a commit id"))) }
            return
        }
        enqueue { done in
            var result: [String: CommittedFile] = [:]
            func next(_ index: Int) {
                guard index < paths.count else {
                    done()
                    return completion(.success(result))
                }
                let path = paths[index]
                CommandRunner.run(
                    loop: self.loop, executable: self.git, arguments: ["cat-file", "blob", "\(commit):\(path)"], workingDirectory: self.path,
                    environment: self.environment, outputLimit: maxBytes + 1
                ) { output in
                    switch output {
                    case .failure(let error):
                        done()
                        return completion(.failure(error))
                    case .success(let out) where !out.succeeded:
                        result[path] = .absent
                    case .success(let out):
                        result[path] = out.stdout.utf8.count > maxBytes || out.stdout.utf8.contains(0) ? .omitted : .text(out.stdout)
                    }
                    next(index + 1)
                }
            }
            next(0)
        }
    }
}
