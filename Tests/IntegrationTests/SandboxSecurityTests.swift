// SandboxSecurityTests: GitRepository commits exactly the reviewed files and never touches another host file;
// readWorkspaceFile never follows a symbolic link nor blocks on a FIFO. Real git, real files.
import EventLoop
import Glibc
import Sandbox
import Testing

/// Runs the loop until `condition` holds (a safety net against hangs, not a timing assertion).
private func spin(_ loop: EventLoop, until condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + 120_000_000_000
    while !condition() {
        if monotonicNanoseconds() > deadline { return false }
        loop.runOnce(maxWaitMilliseconds: 50)
    }
    return true
}

/// Runs `sh -c command` in `directory` to completion (test setup); returns its stdout.
@discardableResult
private func sh(_ loop: EventLoop, _ command: String, in directory: String) throws -> String {
    var out: [UInt8] = []
    var status: ProcessExit?
    _ = try ChildProcess(
        loop: loop, executable: "/bin/sh", arguments: ["-c", command], workingDirectory: directory,
        onOutput: { stream, bytes in if stream == .stdout { out.append(contentsOf: bytes) } }, onExit: { status = $0 })
    #expect(spin(loop) { status != nil })
    #expect(status == .exited(0), "`\(command)` failed")
    return String(decoding: out, as: UTF8.self)
}

private func scratch(_ name: String) -> String {
    let path = "/tmp/medic-sandbox-security-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(path, 0o755)
    return path
}

private func read(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_NOFOLLOW)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 1 << 16)
    let n = Glibc.read(fd, &bytes, bytes.count)
    return n < 0 ? nil : String(decoding: bytes[0..<n], as: UTF8.self)
}

private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// A repository that ignores `.env` and `vendor/`, with the host's secret `.env` and an embedded repository
/// under `vendor/lib` (both untracked and ignored, as on a developer's machine).
private func hostRepository(_ loop: EventLoop, _ name: String) throws -> String {
    let repo = scratch(name)
    try sh(loop, """
        printf '.env\\nvendor/\\n' > .gitignore && printf 'base\\n' > README && git init -q && git add -A &&
        git -c user.name=T -c user.email=t@t commit -qm init && printf 'API_KEY=secret\\n' > .env &&
        mkdir -p vendor/lib && cd vendor/lib && git init -q && printf 'a\\n' > a && git add a &&
        git -c user.name=T -c user.email=t@t commit -qm vendored
        """, in: repo)
    return repo
}

private func apply(_ loop: EventLoop, _ git: GitRepository, _ changes: [WorkspaceChange]) -> Result<String, SandboxError>? {
    var result: Result<String, SandboxError>?
    git.applyAndCommit(changes, message: "m", author: GitAuthor(name: "A", email: "a@a")) { result = $0 }
    #expect(spin(loop) { result != nil })
    return result
}

private func code(_ result: Result<String, SandboxError>?) -> String? {
    if case .failure(let error)? = result { return error.code }
    return nil
}

@Suite struct SandboxSecurityTests {
    /// A modify or delete of a file git does not track (the host's ignored `.env`) is refused before anything
    /// is written. (Before: the modify overwrote `.env` and the delete deleted it, then git failed.)
    @Test func gitNeverOverwritesOrDeletesAnUntrackedHostFile() throws {
        let loop = try EventLoop()
        let repo = try hostRepository(loop, "untracked")
        defer { _ = try? sh(loop, "rm -rf '\(repo)'", in: "/tmp") }
        let git = GitRepository(loop: loop, path: repo)
        let head = try sh(loop, "git rev-parse HEAD", in: repo)

        #expect(code(apply(loop, git, [WorkspaceChange(path: ".env", action: .modify, content: "pwned\n")])) == "untracked_file")
        #expect(read(repo + "/.env") == "API_KEY=secret\n")
        #expect(code(apply(loop, git, [WorkspaceChange(path: ".env", action: .delete)])) == "untracked_file")
        #expect(read(repo + "/.env") == "API_KEY=secret\n")
        #expect(try sh(loop, "git rev-parse HEAD", in: repo) == head)
    }

    /// git silently skips a path inside an embedded repository: the commit would lack a reviewed file. The apply
    /// fails `unreviewed_commit` and undoes exactly its own writes — the modified file comes back, created files and
    /// directories go, and the host's untracked files (`.env`, the embedded repository) are untouched.
    /// (Before `--force`, git refused the ignored path outright; with it, git skips the path silently, and only the
    /// comparison of the staged set with the reviewed one catches the difference.)
    @Test func aReviewedFileGitWouldNotCommitFailsTheApplyAndOnlyItsOwnWritesAreUndone() throws {
        let loop = try EventLoop()
        let repo = try hostRepository(loop, "unstaged")
        defer { _ = try? sh(loop, "rm -rf '\(repo)'", in: "/tmp") }
        let git = GitRepository(loop: loop, path: repo)
        let head = try sh(loop, "git rev-parse HEAD", in: repo)

        let result = apply(loop, git, [
            WorkspaceChange(path: "README", action: .modify, content: "changed\n"),
            WorkspaceChange(path: "vendor/lib/new.py", action: .create, content: "x = 1\n"),
            WorkspaceChange(path: "docs/deep/new.md", action: .create, content: "new\n"),
        ])
        #expect(code(result) == "unreviewed_commit", "\(String(describing: result))")
        if case .failure(let error)? = result { #expect(error.description.contains("vendor/lib/new.py")) }
        #expect(try sh(loop, "git rev-parse HEAD", in: repo) == head)
        #expect(read(repo + "/README") == "base\n")
        #expect(!exists(repo + "/vendor/lib/new.py") && !exists(repo + "/docs"))
        #expect(read(repo + "/.env") == "API_KEY=secret\n")
        #expect(read(repo + "/vendor/lib/a") == "a\n" && exists(repo + "/vendor/lib/.git"))
        #expect(try sh(loop, "git status --porcelain --untracked-files=all", in: repo) == "")
    }

    @Test func stagedDifferenceAcceptsExactlyTheReviewedSet() {
        let reviewed = [
            WorkspaceChange(path: "a.py", action: .modify, content: "x"), WorkspaceChange(path: "?env", action: .create, content: "x"),
            WorkspaceChange(path: "old.py", action: .delete),
        ]
        #expect(GitRepository.stagedDifference("M\0a.py\0A\0?env\0D\0old.py\0", reviewed: reviewed) == nil)
        // A modify whose content equals HEAD's is not staged at all: still the reviewed content.
        #expect(GitRepository.stagedDifference("A\0?env\0D\0old.py\0", reviewed: reviewed) == nil)
        let extra = GitRepository.stagedDifference("M\0a.py\0A\0?env\0A\0.env\0D\0old.py\0", reviewed: reviewed)
        #expect(extra?.contains("'.env' (A) is not among the reviewed changes") == true)
        #expect(GitRepository.stagedDifference("M\0a.py\0D\0old.py\0", reviewed: reviewed)?.contains("'?env' (create) is not staged") == true)
        #expect(GitRepository.stagedDifference("M\0a.py\0A\0?env\0M\0old.py\0", reviewed: reviewed)?.contains("'old.py' is M") == true)
        #expect(GitRepository.stagedDifference("R100\0a.py\0b.py\0A\0?env\0D\0old.py\0", reviewed: reviewed) != nil)
    }

    @Test func readWorkspaceFileNeverFollowsALinkNorOpensAFIFO() throws {
        let loop = try EventLoop()
        let root = scratch("read")
        try sh(loop, """
            printf 'hello\\n' > a.txt && printf '0123456789' > ten.txt && mkdir sub && printf 'in\\n' > sub/b.txt &&
            ln -s /proc/self/environ env.txt && ln -s a.txt inner.txt && ln -s /etc dirlink && ln -s sub sublink &&
            mkfifo fifo.txt
            """, in: root)
        #expect(readWorkspaceFile("a.txt", in: root, maxBytes: 100) == .file(bytes: Array("hello\n".utf8), size: 6))
        #expect(readWorkspaceFile("sub/b.txt", in: root, maxBytes: 100) == .file(bytes: Array("in\n".utf8), size: 3))
        let cut = readWorkspaceFile("ten.txt", in: root, maxBytes: 4)
        #expect(cut == .file(bytes: Array("0123".utf8), size: 10) && cut.isTruncated)
        #expect(!readWorkspaceFile("ten.txt", in: root, maxBytes: 10).isTruncated)
        // Links are named, never followed — to the outside or inside the tree, as the file or as a directory.
        #expect(readWorkspaceFile("env.txt", in: root, maxBytes: 100) == .symbolicLink(prefix: "env.txt"))
        #expect(readWorkspaceFile("inner.txt", in: root, maxBytes: 100) == .symbolicLink(prefix: "inner.txt"))
        #expect(readWorkspaceFile("dirlink/passwd", in: root, maxBytes: 100) == .symbolicLink(prefix: "dirlink"))
        #expect(readWorkspaceFile("sublink/b.txt", in: root, maxBytes: 100) == .symbolicLink(prefix: "sublink"))
        #expect(readWorkspaceFile("env.txt", in: root, maxBytes: 100).unreadableNote("env.txt") == "env.txt is a symbolic link (not followed)")
        // A FIFO with no writer would block an open or a read forever: it is named, not opened.
        #expect(readWorkspaceFile("fifo.txt", in: root, maxBytes: 100) == .notRegularFile(kind: "FIFO (named pipe)"))
        #expect(readWorkspaceFile("sub", in: root, maxBytes: 100) == .notRegularFile(kind: "directory"))
        #expect(readWorkspaceFile("missing.txt", in: root, maxBytes: 100) == .missing)
        #expect(readWorkspaceFile("a.txt/x", in: root, maxBytes: 100) == .missing)
        for hostile in ["../etc/passwd", "/etc/passwd", "sub/../a.txt", ".git/config", "a\0b"] {
            guard case .refused(let error) = readWorkspaceFile(hostile, in: root, maxBytes: 100) else {
                Issue.record("\(hostile) was not refused")
                continue
            }
            #expect(error.code == "invalid_path")
        }
        try sh(loop, "rm -rf '\(root)'", in: "/tmp")
    }
}
