// SandboxTests: workspaces, hostile change sets, isolated test runs (timeouts, floods, partial lines, bwrap) and git.
import EventLoop
import Glibc
import Sandbox
import Testing

// MARK: helpers (fileprivate: other suites share this module)

/// Locates `medic-test-child`: next to the running test binary, else the newest under the package's `.build*`.
private let testChildPath: String? = {
    var candidates: [String] = []
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if n > 0 {
        var dir = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for _ in 0..<4 {
            guard let slash = dir.lastIndex(of: "/") else { break }
            dir = String(dir[..<slash])
            if access(dir + "/medic-test-child", X_OK) == 0 { return dir + "/medic-test-child" }
        }
    }
    var parts = #filePath.split(separator: "/").map(String.init)
    parts.removeLast(3)
    let root = "/" + parts.joined(separator: "/")
    if let entries = opendir(root) {
        defer { closedir(entries) }
        while let entry = readdir(entries) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard name.hasPrefix(".build") else { continue }
            for sub in ["debug", "release", "x86_64-unknown-linux-gnu/debug", "aarch64-unknown-linux-gnu/debug"] {
                candidates.append("\(root)/\(name)/\(sub)/medic-test-child")
            }
        }
    }
    var best: (String, Int)?
    for candidate in candidates where access(candidate, X_OK) == 0 {
        var info = stat()
        if stat(candidate, &info) == 0, best == nil || info.st_mtim.tv_sec > best!.1 { best = (candidate, info.st_mtim.tv_sec) }
    }
    return best?.0
}()

/// Runs the loop until `condition` holds or `seconds` pass (a safety net against hangs, not a timing assertion).
private func spin(_ loop: EventLoop, seconds: Double = 120, until condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanoseconds() > deadline { return false }
        loop.runOnce(maxWaitMilliseconds: 50)
    }
    return true
}

/// Runs a shell command to completion on `loop` (test setup only); returns exit status and stdout.
@discardableResult
private func shell(_ loop: EventLoop, _ command: String, in directory: String? = nil) throws -> (status: ProcessExit, stdout: String) {
    var out: [UInt8] = []
    var err: [UInt8] = []
    var status: ProcessExit?
    _ = try ChildProcess(
        loop: loop, executable: "/bin/sh", arguments: ["-c", command], workingDirectory: directory,
        onOutput: { stream, bytes in
            if stream == .stdout { out.append(contentsOf: bytes) } else { err.append(contentsOf: bytes) }
        },
        onExit: { status = $0 })
    #expect(spin(loop) { status != nil })
    let result = try #require(status)
    if result != .exited(0) { print("[SandboxTests] `\(command)` → \(result): \(String(decoding: err, as: UTF8.self))") }
    return (result, String(decoding: out, as: UTF8.self))
}

/// Removes scratch directories left by earlier runs (named `NAME-PID-RANDOM`, PID no longer alive), once.
private let staleScratchRemoved: Bool = {
    guard let dir = opendir("/tmp/medic-sandbox-tests") else { return true }
    var stale: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let parts = name.split(separator: "-")
        guard parts.count >= 3, let pid = Int32(parts[parts.count - 2]), pid != getpid(), kill(pid, 0) != 0 else { continue }
        stale.append("/tmp/medic-sandbox-tests/" + name)
    }
    closedir(dir)
    if !stale.isEmpty {
        // Test setup only: a blocking system(3) is fine here.
        _ = system("rm -rf " + stale.map { "'\($0)'" }.joined(separator: " "))
    }
    return true
}()

/// A fresh scratch directory for one test (removed by the next run, see `staleScratchRemoved`).
private func scratchDirectory(_ name: String) -> String {
    _ = staleScratchRemoved
    let path = "/tmp/medic-sandbox-tests/\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    var current = ""
    for part in path.split(separator: "/") {
        current += "/" + part
        mkdir(current, 0o755)
    }
    return path
}

private func readFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func writeFile(_ path: String, _ content: String) {
    let file = fopen(path, "w")!
    _ = content.withCString { fputs($0, file) }
    fclose(file)
}

private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// Creates a small git repository with a couple of files and one commit.
private func makeRepository(_ loop: EventLoop, _ name: String) throws -> String {
    let repo = scratchDirectory(name)
    mkdir(repo + "/src", 0o755)
    writeFile(repo + "/README.md", "hello\n")
    writeFile(repo + "/src/app.py", "print('app')\n")
    writeFile(repo + "/src/util.py", "X = 1\n")
    let (status, _) = try shell(loop, "git init -q && git add -A && git -c user.name=T -c user.email=t@t commit -qm init", in: repo)
    #expect(status == .exited(0))
    return repo
}

private func gitHead(_ loop: EventLoop, _ repo: String) throws -> String {
    try shell(loop, "git rev-parse HEAD", in: repo).stdout.split(separator: "\n").first.map(String.init) ?? ""
}

/// Pids of live processes whose command line holds `marker` as an argument (zombies have no command line).
private func processesWithMarker(_ marker: String) -> [Int32] {
    var found: [Int32] = []
    guard let dir = opendir("/proc") else { return [] }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard let pid = Int32(name) else { continue }
        let fd = open("/proc/\(pid)/cmdline", O_RDONLY)
        guard fd >= 0 else { continue }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = read(fd, &bytes, bytes.count)
        close(fd)
        guard n > 0 else { continue }
        if bytes[0..<n].split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == marker }) { found.append(pid) }
    }
    return found
}

/// What a test run delivered.
private final class RunRecord {
    var batches: [(stream: OutputStream, lines: [String])] = []
    var result: TestRunResult?
    /// Batches delivered before `onFinished`.
    var batchesBeforeFinish = -1
    func lines(_ stream: OutputStream) -> [String] { batches.filter { $0.stream == stream }.flatMap(\.lines) }
}

private func startRun(_ loop: EventLoop, _ configuration: TestRunConfiguration, isolation: SandboxIsolation = .unisolated) -> (TestRun, RunRecord) {
    let record = RunRecord()
    let run = TestRun(
        loop: loop, configuration: configuration, isolation: isolation,
        onLines: { stream, lines in record.batches.append((stream, lines)) },
        onFinished: { result in
            record.result = result
            record.batchesBeforeFinish = record.batches.count
        })
    run.start()
    return (run, record)
}

/// The isolation this machine supports (probed once per test that needs it).
private func probeIsolation(_ loop: EventLoop) -> SandboxIsolation? {
    var isolation: SandboxIsolation?
    SandboxIsolation.probe(loop: loop) { isolation = $0 }
    _ = spin(loop) { isolation != nil }
    return isolation
}

/// The directory of the Swift runtime this process (and the test child) links (e.g. /opt/swift/usr/lib/swift/linux):
/// sandboxes see only /usr and the configured read-only paths, so runs of the test child add it.
private let swiftRuntimeView: SandboxView = {
    guard let maps = readFile("/proc/self/maps"),
          let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("/libswiftCore.so") }),
          let start = line.firstIndex(of: "/") else { return SandboxView() }
    let library = String(line[start...])
    return SandboxView(readOnlyPaths: [String(library[..<library.lastIndex(of: "/")!])])
}()

/// Copies the test child into `workspace` (visible inside bwrap, whose /tmp is private) and returns the copy's path.
private func childInside(_ loop: EventLoop, _ workspace: String) throws -> String {
    let child = try #require(testChildPath)
    #expect(try shell(loop, "cp '\(child)' '\(workspace)/medic-test-child'").status == .exited(0))
    return workspace + "/medic-test-child"
}

// MARK: tests

@Suite struct SandboxTests {
    // Workspace

    @Test func workspaceIsAFaithfulIndependentCopy() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "copy-src")
        let parent = scratchDirectory("copy-ws")
        var created: Result<Workspace, SandboxError>?
        Workspace.create(loop: loop, from: repo, parentDirectory: parent) { created = $0 }
        #expect(spin(loop) { created != nil })
        let workspace = try #require(try created?.get())
        #expect(workspace.path.hasPrefix(parent))
        #expect(workspace.baseCommit == (try gitHead(loop, repo)))
        #expect(try shell(loop, "diff -r \(repo) \(workspace.path)").status == .exited(0))

        // Changes and a test run in the copy leave the original untouched.
        let applied = workspace.apply([WorkspaceChange(path: "src/app.py", action: .modify, content: "print('changed')\n")])
        #expect(applied.map(\.modified) == .success(["src/app.py"]))
        let (_, record) = startRun(loop, TestRunConfiguration(workspacePath: workspace.path, testCommand: "echo mutated > README.md; rm src/util.py"))
        #expect(spin(loop) { record.result != nil })
        #expect(readFile(workspace.path + "/README.md") == "mutated\n")
        #expect(readFile(repo + "/README.md") == "hello\n")
        #expect(readFile(repo + "/src/app.py") == "print('app')\n")
        #expect(readFile(repo + "/src/util.py") == "X = 1\n")

        var removed: Result<Void, SandboxError>?
        workspace.remove(loop: loop) { removed = $0 }
        #expect(spin(loop) { removed != nil })
        #expect(!exists(workspace.path))
        #expect(exists(repo + "/README.md"))
    }

    /// The host's ignored and untracked files (an ignored `.env`, a local cache) and remote URLs with credentials
    /// never reach a workspace; committed content and edits to tracked files do.
    @Test func workspaceCopyLeavesOutIgnoredFilesAndRemotes() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "scrub-src")
        try shell(loop, """
            printf '.env\ncache/\n' > .gitignore && git add .gitignore && git -c user.name=T -c user.email=t@t commit -qm ignore \
            && echo 'API_KEY=host-secret' > .env && mkdir cache && echo c > cache/blob && echo u > untracked.txt \
            && echo edited > README.md && git remote add origin https://deploy:hunter2@example.invalid/repo.git
            """, in: repo)
        var created: Result<Workspace, SandboxError>?
        Workspace.create(loop: loop, from: repo, parentDirectory: scratchDirectory("scrub-ws")) { created = $0 }
        #expect(spin(loop) { created != nil })
        let workspace = try #require(try created?.get())
        #expect(!exists(workspace.path + "/.env"))
        #expect(!exists(workspace.path + "/cache"))
        #expect(!exists(workspace.path + "/untracked.txt"))
        #expect(readFile(workspace.path + "/README.md") == "edited\n")
        #expect(readFile(workspace.path + "/src/app.py") == "print('app')\n")
        #expect(!(readFile(workspace.path + "/.git/config") ?? "").contains("hunter2"))
        #expect(try shell(loop, "grep -r hunter2 .git || true", in: workspace.path).stdout.isEmpty)
        // The host's checkout is as it was.
        #expect(readFile(repo + "/.env") == "API_KEY=host-secret\n")
        #expect((readFile(repo + "/.git/config") ?? "").contains("hunter2"))
    }

    @Test func workspaceFromGitCloneAtARevision() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "clone-src")
        let first = try gitHead(loop, repo)
        try shell(loop, "echo two > README.md && git -c user.name=T -c user.email=t@t commit -qam two && echo dirty > untracked.txt", in: repo)
        var created: Result<Workspace, SandboxError>?
        Workspace.create(loop: loop, from: repo, parentDirectory: scratchDirectory("clone-ws"), strategy: .gitClone(revision: first)) { created = $0 }
        #expect(spin(loop) { created != nil })
        let workspace = try #require(try created?.get())
        #expect(workspace.baseCommit == first)
        #expect(readFile(workspace.path + "/README.md") == "hello\n")
        #expect(!exists(workspace.path + "/untracked.txt"))
    }

    @Test func workspaceFromAMissingSourceFails() throws {
        let loop = try EventLoop()
        var created: Result<Workspace, SandboxError>?
        Workspace.create(loop: loop, from: "/nonexistent/medic-repo", parentDirectory: scratchDirectory("missing")) { created = $0 }
        #expect(spin(loop) { created != nil })
        #expect(throws: SandboxError.self) { try created?.get() }
    }

    // Change sets

    @Test func appliesCreateModifyDelete() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "apply")
        let result = applyChanges([
            WorkspaceChange(path: "src/new/deep/file.py", action: .create, content: "NEW = 1\n"),
            WorkspaceChange(path: "src/app.py", action: .modify, content: "print('v2')\n"),
            WorkspaceChange(path: "src/util.py", action: .delete),
        ], in: repo)
        let applied = try result.get()
        #expect(applied.created == ["src/new/deep/file.py"])
        #expect(applied.modified == ["src/app.py"])
        #expect(applied.deleted == ["src/util.py"])
        #expect(applied.bytesWritten == 8 + 12)
        #expect(readFile(repo + "/src/new/deep/file.py") == "NEW = 1\n")
        #expect(readFile(repo + "/src/app.py") == "print('v2')\n")
        #expect(!exists(repo + "/src/util.py"))
    }

    @Test func modifyDoesNotWriteThroughAHardLink() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "hardlink")
        let outside = scratchDirectory("hardlink-outside") + "/shared.txt"
        writeFile(outside, "original\n")
        #expect(link(outside, repo + "/linked.txt") == 0)
        _ = try applyChanges([WorkspaceChange(path: "linked.txt", action: .modify, content: "new\n")], in: repo).get()
        #expect(readFile(repo + "/linked.txt") == "new\n")
        #expect(readFile(outside) == "original\n")
    }

    @Test(arguments: [
        ("../../etc/passwd", "invalid_path"),
        ("/etc/passwd", "invalid_path"),
        ("src/../../outside.txt", "invalid_path"),
        ("src/./app.py", "invalid_path"),
        ("src//app.py", "invalid_path"),
        ("", "invalid_path"),
        ("a\u{0}b", "invalid_path"),
        (".git/hooks/pre-commit", "invalid_path"),
        ("src/.GIT/config", "invalid_path"),
        ("escape/evil.txt", "symlink_in_path"),
        ("escape", "symlink_in_path"),
        ("README.md/child", "invalid_path"),
    ])
    func refusesHostilePaths(path: String, code: String) throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "hostile")
        let outside = scratchDirectory("outside")
        #expect(symlink(outside, repo + "/escape") == 0)
        // A valid change first: on refusal nothing at all may be written, not even the valid one.
        let result = applyChanges([
            WorkspaceChange(path: "ok.txt", action: .create, content: "fine\n"),
            WorkspaceChange(path: path, action: .create, content: "pwned\n"),
        ], in: repo)
        guard case .failure(let error) = result else {
            Issue.record("\(path) was accepted")
            return
        }
        #expect(error.code == code)
        #expect(error.isRejectedChange)
        #expect(!exists(repo + "/ok.txt"))
        #expect(!exists(outside + "/evil.txt"))
        #expect(try shell(loop, "ls -A \(outside) | wc -l").stdout.hasPrefix("0"))
        #expect(readFile("/etc/passwd")?.contains("pwned") == false)
    }

    @Test func refusesModifyAndDeleteThroughASymlink() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "symlink-file")
        let outside = scratchDirectory("outside-file") + "/target.txt"
        writeFile(outside, "keep\n")
        #expect(symlink(outside, repo + "/link.txt") == 0)
        for action in [WorkspaceChange.Action.modify, .delete] {
            let result = applyChanges([WorkspaceChange(path: "link.txt", action: action, content: "pwned\n")], in: repo)
            #expect(throws: SandboxError.self) { try result.get() }
        }
        #expect(readFile(outside) == "keep\n")
    }

    @Test func refusesOversizedChanges() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "size")
        let huge = String(repeating: "x", count: 100 * 1024 * 1024)
        let result = applyChanges([WorkspaceChange(path: "huge.bin", action: .create, content: huge)], in: repo)
        #expect((try? result.get()) == nil)
        if case .failure(let error) = result { #expect(error.code == "file_too_large") }
        #expect(!exists(repo + "/huge.bin"))

        // Per-file limit at N and N+1; total limit across files.
        let limits = ChangeLimits(maxFileBytes: 10, maxTotalBytes: 15)
        #expect((try? applyChanges([WorkspaceChange(path: "a", action: .create, content: "0123456789")], in: repo, limits: limits).get()) != nil)
        #expect((try? applyChanges([WorkspaceChange(path: "b", action: .create, content: "0123456789A")], in: repo, limits: limits).get()) == nil)
        let total = applyChanges([
            WorkspaceChange(path: "c", action: .create, content: "0123456789"),
            WorkspaceChange(path: "d", action: .create, content: "012345"),
        ], in: repo, limits: limits)
        if case .failure(let error) = total { #expect(error.code == "changes_too_large") } else { Issue.record("total limit not enforced") }
        #expect(!exists(repo + "/c"))
    }

    @Test func refusesInconsistentChanges() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "inconsistent")
        func code(_ changes: [WorkspaceChange]) -> String? {
            if case .failure(let error) = applyChanges(changes, in: repo) { return error.code }
            return nil
        }
        #expect(code([WorkspaceChange(path: "nope.py", action: .delete)]) == "missing_file")
        #expect(code([WorkspaceChange(path: "nope/x.py", action: .delete)]) == "missing_file")
        #expect(code([WorkspaceChange(path: "nope.py", action: .modify, content: "x")]) == "missing_file")
        #expect(code([WorkspaceChange(path: "README.md", action: .create, content: "x")]) == "already_exists")
        #expect(code([WorkspaceChange(path: "src", action: .modify, content: "x")]) == "not_regular_file")
        #expect(code([WorkspaceChange(path: "README.md", action: .modify)]) == "missing_content")
        #expect(code([WorkspaceChange(path: "README.md", action: .modify, content: "a"),
                      WorkspaceChange(path: "README.md", action: .delete)]) == "duplicate_path")
        #expect(readFile(repo + "/README.md") == "hello\n")
    }

    // Test runs

    @Test func streamsLinesInBatchesPerStream() throws {
        let loop = try EventLoop()
        let child = try #require(testChildPath)
        let dir = scratchDirectory("lines")
        let (_, record) = startRun(loop, TestRunConfiguration(workspacePath: dir, testCommand: "\(child) print-lines 5000; \(child) stdout-stderr"))
        #expect(spin(loop) { record.result != nil })
        let result = try #require(record.result)
        #expect(result.exitCode == 0 && result.passed && !result.truncated && !result.timedOut)
        let out = record.lines(.stdout)
        #expect(out == (1...5000).map { "line \($0)" } + ["out 1", "out 2", "out 3"])
        #expect(record.lines(.stderr) == ["err 1", "err 2"])
        #expect(record.batches.count < 5000)  // batched, not one callback per line
        #expect(record.batchesBeforeFinish == record.batches.count)  // every line before onFinished
        #expect(result.outputTail.contains("line 5000\nout 1\n"))  // (stderr lines may interleave anywhere)
    }

    @Test func invalidUTF8IsReplacedNotDropped() throws {
        let loop = try EventLoop()
        let child = try #require(testChildPath)
        let (_, record) = startRun(loop, TestRunConfiguration(workspacePath: scratchDirectory("utf8"), testCommand: "\(child) invalid-utf8"))
        #expect(spin(loop) { record.result != nil })
        #expect(record.lines(.stdout) == ["a\u{FFFD}\u{FFFD}b"])
    }

    @Test func floodIsCappedWithASummaryLine() throws {
        let loop = try EventLoop()
        let child = try #require(testChildPath)
        let total = 3_000_000
        let (_, record) = startRun(loop, TestRunConfiguration(workspacePath: scratchDirectory("flood"), testCommand: "\(child) flood \(total)"))
        #expect(spin(loop) { record.result != nil })
        let result = try #require(record.result)
        #expect(result.exitCode == 0)
        #expect(result.truncated)
        let lines = total / 99
        let emitted = (1 << 20) / 99
        let out = record.lines(.stdout)
        #expect(out.count == emitted)
        #expect(out.allSatisfy { $0.utf8.count == 98 })
        #expect(record.lines(.stderr) == ["[medic] output truncated: \(lines - emitted) more lines (\((lines - emitted) * 99) bytes)"])
        #expect(result.outputTail.utf8.count <= 64 * 1024)
        #expect(result.outputTail.hasSuffix("bytes)\n"))
    }

    @Test func endlessOutputIsKilled() throws {
        let loop = try EventLoop()
        let child = try #require(testChildPath)
        let (_, record) = startRun(loop, TestRunConfiguration(
            workspacePath: scratchDirectory("endless"), testCommand: "\(child) flood 100000000",
            output: OutputLimits(maxEmittedBytes: 1000, killAfterBytes: 512 * 1024)))
        #expect(spin(loop) { record.result != nil })
        let result = try #require(record.result)
        #expect(result.outputLimitExceeded && result.truncated && !result.passed)
        #expect(result.signal == SIGKILL)
        #expect(record.lines(.stderr).contains("[medic] output exceeded 524288 bytes: process tree killed"))
    }

    @Test func partialLineIsFlushedWhileTheCommandRuns() throws {
        let loop = try EventLoop()
        let child = try #require(testChildPath)
        let (run, record) = startRun(loop, TestRunConfiguration(workspacePath: scratchDirectory("partial"), testCommand: "exec \(child) partial-line"))
        #expect(spin(loop) { !record.lines(.stdout).isEmpty || record.result != nil })
        #expect(record.result == nil)  // still running: the line came from the partial-line timer
        #expect(record.lines(.stdout) == ["no newline"])
        run.cancel()
        #expect(spin(loop) { record.result != nil })
        let result = try #require(record.result)
        #expect(result.cancelled && !result.passed)
        #expect(result.signal == SIGKILL)
        #expect(record.lines(.stdout) == ["no newline"])  // not emitted twice
    }

    @Test func hangingCommandIsKilledWithItsChildrenAtTheTimeout() throws {
        let loop = try EventLoop()
        let child = try #require(testChildPath)
        let marker = "medic-sandbox-hang-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (_, record) = startRun(loop, TestRunConfiguration(
            workspacePath: scratchDirectory("hang"), testCommand: "\(child) spawn-grandchild-and-sleep \(marker)",
            timeoutNanoseconds: 1_000_000_000))
        #expect(spin(loop) { record.result != nil })
        let result = try #require(record.result)
        #expect(result.timedOut && !result.passed)
        #expect(result.signal == SIGKILL)
        #expect(record.lines(.stdout).first?.hasPrefix("grandchild ") == true)
        #expect(record.lines(.stderr).last?.hasPrefix("[medic] timed out") == true)
        #expect(spin(loop, seconds: 10) { processesWithMarker(marker).isEmpty })
    }

    @Test func setupFailureSkipsTheTests() throws {
        let loop = try EventLoop()
        let dir = scratchDirectory("setup")
        let (_, record) = startRun(loop, TestRunConfiguration(workspacePath: dir, setupCommand: "echo preparing; exit 3", testCommand: "touch ran"))
        #expect(spin(loop) { record.result != nil })
        let result = try #require(record.result)
        #expect(result.phase == .setup && result.exitCode == 3 && !result.passed)
        #expect(!exists(dir + "/ran"))
        #expect(record.lines(.stdout) == ["preparing"])

        let (_, ok) = startRun(loop, TestRunConfiguration(workspacePath: dir, setupCommand: "echo ready > setup.txt", testCommand: "cat setup.txt; exit 1"))
        #expect(spin(loop) { ok.result != nil })
        #expect(ok.result?.phase == .test && ok.result?.exitCode == 1)
        #expect(ok.lines(.stdout) == ["ready"])
    }

    @Test func serverEnvironmentIsNotInherited() throws {
        let loop = try EventLoop()
        setenv("MEDIC_SANDBOX_TEST_SECRET", "s3cret", 1)
        let (_, record) = startRun(loop, TestRunConfiguration(
            workspacePath: scratchDirectory("env"), testCommand: "echo \"[$MEDIC_SANDBOX_TEST_SECRET][$EXTRA][$HOME]\"",
            environment: ["EXTRA": "given"]))
        #expect(spin(loop) { record.result != nil })
        let home = record.result.map { _ in record.lines(.stdout).first ?? "" } ?? ""
        #expect(home.hasPrefix("[][given][/tmp/medic-sandbox-tests/env-"))
    }

    @Test func bubblewrapIsolatesFilesystemAndNetwork() throws {
        let loop = try EventLoop()
        let isolation = try #require(probeIsolation(loop))
        print("[SandboxTests] isolation: \(isolation.mode.rawValue)\(isolation.warning.map { " (\($0))" } ?? "")")
        guard isolation.mode == .bwrap else { return }  // not available here: the fallback warning was printed
        let workspace = scratchDirectory("bwrap-ws")
        // /tmp is private inside the sandbox, and the build directory may be under it: run a copy.
        let child = try childInside(loop, workspace)
        let outsideDir = "/var/tmp/medic-sandbox-escape-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(outsideDir, 0o777)
        defer { unlink(outsideDir + "/escaped"); rmdir(outsideDir) }
        let hostTmp = "/tmp/medic-sandbox-hosttmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        // A loopback listener in the host: reachable from the host, not from the sandbox's network namespace.
        let listener = try Socket.listen(SocketAddressSpec(host: "127.0.0.1", port: 0))
        defer { closeFD(listener.fd) }

        let command = """
            \(child) write-file \(workspace)/inside && echo inside-ok; \
            \(child) write-file \(outsideDir)/escaped || echo outside-refused; \
            \(child) write-file \(hostTmp) && echo private-tmp-ok; \
            \(child) connect \(listener.port) || echo network-refused
            """
        let (_, record) = startRun(loop, TestRunConfiguration(workspacePath: workspace, testCommand: command, view: swiftRuntimeView), isolation: isolation)
        #expect(spin(loop) { record.result != nil })
        #expect(record.result?.isolation == .bwrap)
        #expect(record.lines(.stdout) == ["inside-ok", "outside-refused", "private-tmp-ok", "network-refused"])
        #expect(exists(workspace + "/inside"))
        #expect(!exists(outsideDir + "/escaped"))
        #expect(!exists(hostTmp))

        // Control: unisolated, the same connect succeeds (the listener really is there).
        let (_, control) = startRun(loop, TestRunConfiguration(workspacePath: workspace, testCommand: "\(child) connect \(listener.port)"))
        #expect(spin(loop) { control.result != nil })
        #expect(control.result?.exitCode == 0)
    }

    @Test func isolationFallsBackWithAWarning() throws {
        let loop = try EventLoop()
        var missing: SandboxIsolation?
        var broken: SandboxIsolation?
        SandboxIsolation.probe(loop: loop, bwrapExecutable: "/nonexistent/bwrap") { missing = $0 }
        SandboxIsolation.probe(loop: loop, bwrapExecutable: "/bin/false") { broken = $0 }
        #expect(spin(loop) { missing != nil && broken != nil })
        #expect(missing?.mode == SandboxIsolation.Mode.none)
        #expect(missing?.warning?.contains("could not be started") == true)
        #expect(broken?.mode == SandboxIsolation.Mode.none)
        #expect(broken?.warning?.contains("does not work here") == true)
    }

    @Test func bubblewrapTimeoutKillsTheWholeNamespace() throws {
        let loop = try EventLoop()
        let isolation = try #require(probeIsolation(loop))
        guard isolation.mode == .bwrap else { return }
        let workspace = scratchDirectory("bwrap-hang")
        let child = try childInside(loop, workspace)
        let marker = "medic-sandbox-bwraphang-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // setsid: the grandchild leaves the process group; only the pid namespace can take it down.
        let (_, record) = startRun(loop, TestRunConfiguration(
            workspacePath: workspace,
            testCommand: "setsid \(child) sleep 1000 \(marker) & \(child) spawn-grandchild-and-sleep \(marker)",
            timeoutNanoseconds: 1_500_000_000, view: swiftRuntimeView), isolation: isolation)
        #expect(spin(loop) { record.result != nil })
        #expect(record.result?.timedOut == true)
        #expect(spin(loop, seconds: 10) { processesWithMarker(marker).isEmpty })
    }

    // Git

    @Test func gitApplyCommitAndRevert() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "git")
        let git = GitRepository(loop: loop, path: repo)
        let base = try gitHead(loop, repo)

        var clean: Result<Bool, SandboxError>?
        git.isClean { clean = $0 }
        #expect(spin(loop) { clean != nil })
        #expect(clean == .success(true))

        var head: Result<String, SandboxError>?
        git.headCommit { head = $0 }
        #expect(spin(loop) { head != nil })
        #expect(head == .success(base))

        var committed: Result<String, SandboxError>?
        git.applyAndCommit(
            [WorkspaceChange(path: "src/app.py", action: .modify, content: "print('fixed')\n"),
             WorkspaceChange(path: "src/new.py", action: .create, content: "NEW = 2\n"),
             WorkspaceChange(path: "src/util.py", action: .delete)],
            message: "Fix app (proposal p1, revision 2)", author: GitAuthor(name: "Medic Bot", email: "bot@medic.test")
        ) { committed = $0 }
        #expect(spin(loop) { committed != nil })
        let commit = try #require(try committed?.get())
        #expect(commit.count == 40 && commit != base)
        #expect(try gitHead(loop, repo) == commit)
        #expect(try shell(loop, "git log -1 --format='%an <%ae>|%s'", in: repo).stdout == "Medic Bot <bot@medic.test>|Fix app (proposal p1, revision 2)\n")
        #expect(try shell(loop, "git show HEAD:src/app.py", in: repo).stdout == "print('fixed')\n")
        #expect(try shell(loop, "git status --porcelain", in: repo).stdout == "")

        var reverted: Result<String, SandboxError>?
        git.revert(commit) { reverted = $0 }
        #expect(spin(loop) { reverted != nil })
        let revertCommit = try #require(try reverted?.get())
        #expect(revertCommit != commit && revertCommit.count == 40)
        #expect(readFile(repo + "/src/app.py") == "print('app')\n")
        #expect(readFile(repo + "/src/util.py") == "X = 1\n")
        #expect(!exists(repo + "/src/new.py"))

        var bad: Result<String, SandboxError>?
        git.revert("--hard") { bad = $0 }
        #expect(spin(loop) { bad != nil })
        #expect((try? bad?.get()) == nil)
    }

    @Test func gitRefusesADirtyTreeAndHostileChanges() throws {
        let loop = try EventLoop()
        let repo = try makeRepository(loop, "git-dirty")
        let git = GitRepository(loop: loop, path: repo)
        let base = try gitHead(loop, repo)

        var hostile: Result<String, SandboxError>?
        git.applyAndCommit([WorkspaceChange(path: ".git/hooks/post-commit", action: .create, content: "#!/bin/sh\ntouch /tmp/pwned\n")],
                           message: "m", author: GitAuthor(name: "A", email: "a@a")) { hostile = $0 }
        #expect(spin(loop) { hostile != nil })
        if case .failure(let error)? = hostile { #expect(error.code == "invalid_path") } else { Issue.record("hostile change committed") }

        writeFile(repo + "/README.md", "local edit\n")
        var dirty: Result<String, SandboxError>?
        git.applyAndCommit([WorkspaceChange(path: "src/app.py", action: .modify, content: "x\n")],
                           message: "m", author: GitAuthor(name: "A", email: "a@a")) { dirty = $0 }
        var clean: Result<Bool, SandboxError>?
        git.isClean { clean = $0 }  // queued behind the commit attempt
        #expect(spin(loop) { dirty != nil && clean != nil })
        if case .failure(let error)? = dirty {
            #expect(error.code == "dirty_working_tree")
            #expect(error.description.contains("README.md"))
        } else {
            Issue.record("dirty tree committed")
        }
        #expect(clean == .success(false))
        #expect(try gitHead(loop, repo) == base)
        #expect(readFile(repo + "/src/app.py") == "print('app')\n")

        var forged: Result<String, SandboxError>?
        git.applyAndCommit([], message: "m", author: GitAuthor(name: "A>\nB", email: "a@a")) { forged = $0 }
        #expect(spin(loop) { forged != nil })
        #expect((try? forged?.get()) == nil)
    }

    // OutputCollector (pure)

    /// Feeds `chunks` to a collector and returns it with the emitted stdout lines.
    private func collect(_ chunks: [[UInt8]], limits: OutputLimits = OutputLimits(), finish: Bool = true) -> (OutputCollector, [String]) {
        var collector = OutputCollector(limits: limits)
        for chunk in chunks { _ = chunk.withUnsafeBytes { collector.ingest(.stdout, $0) } }
        if finish { collector.finish() }
        let lines = collector.takePending().filter { $0.stream == .stdout }.flatMap(\.lines)
        return (collector, lines)
    }

    @Test func collectorSplitsTheSameWayAtEveryChunkBoundary() {
        let input = Array("alpha\r\nbéta\n\n".utf8) + [0xFF] + Array("γ\u{1F600}\ntail".utf8)
        let expected = ["alpha", "béta", "", "\u{FFFD}γ\u{1F600}", "tail"]
        #expect(collect([input]).1 == expected)
        #expect(collect(input.map { [$0] }).1 == expected)
        for split in 0...input.count {
            #expect(collect([Array(input[..<split]), Array(input[split...])]).1 == expected, "split at \(split)")
        }
    }

    @Test(arguments: [(9, 1), (10, 2), (11, 2)])
    func collectorCapsAtTheLimit(limit: Int, emitted: Int) {
        let (collector, lines) = collect([Array("abcd\nefgh\nijkl\n".utf8)], limits: OutputLimits(maxEmittedBytes: limit))
        #expect(lines == Array(["abcd", "efgh", "ijkl"].prefix(emitted)))
        #expect(collector.truncated)
        #expect(collector.suppressedLines == 3 - emitted)
        #expect(collector.outputTail.hasPrefix("abcd\nefgh\nijkl\n[medic] output truncated: \(3 - emitted) more lines (\((3 - emitted) * 5) bytes)"))
        let (exact, all) = collect([Array("abcd\nefgh\nijkl\n".utf8)], limits: OutputLimits(maxEmittedBytes: 15))
        #expect(all.count == 3 && !exact.truncated)
    }

    @Test func collectorCutsLongLinesAtCharacterBoundaries() {
        let (_, lines) = collect([Array("aééééé\n".utf8)], limits: OutputLimits(maxLineBytes: 8))
        #expect(lines == ["aééé", "éé"])
        #expect(!lines.joined().contains("\u{FFFD}"))
    }

    @Test func collectorPartialLineTimersCoverOnlyTheirLine() {
        var collector = OutputCollector()
        func feed(_ text: String) -> UInt64? { Array(text.utf8).withUnsafeBytes { collector.ingest(.stdout, $0) } }
        let first = feed("abc")
        #expect(first != nil)
        #expect(feed("def") == nil)  // same partial line: no second timer
        let second = feed("\nxyz")
        #expect(second != nil && second != first)
        collector.flushPartial(.stdout, generation: first!)  // stale: its line was completed by a newline
        #expect(collector.takePending().flatMap(\.lines) == ["abcdef"])
        collector.flushPartial(.stdout, generation: second!)
        #expect(collector.takePending().flatMap(\.lines) == ["xyz"])
        _ = feed("\nnext\n")  // the late newline of the flushed line adds no blank line
        #expect(collector.takePending().flatMap(\.lines) == ["next"])
    }

    // Measurement (printed, not asserted)

    @Test func measureWorkspaceCreationFor100MBRepository() throws {
        let loop = try EventLoop()
        let repo = scratchDirectory("bench-src")
        // 2,000 files of 50 KiB in 50 directories (~100 MB): half pseudo-random (incompressible), half text.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var block = [UInt8](repeating: 0, count: 25_600)
        for i in 0..<2000 {
            let dir = "\(repo)/dir\(i % 50)"
            mkdir(dir, 0o755)
            for j in stride(from: 0, to: block.count, by: 8) {
                state = state &* 6364136223846793005 &+ 1442695040888963407  // LCG: fast, good enough
                withUnsafeBytes(of: state) { for k in 0..<8 { block[j + k] = $0[k] } }
            }
            let file = fopen("\(dir)/file\(i).txt", "w")!
            _ = block.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            let text = Array(String(repeating: "line of text \(i)\n", count: 25_600 / 16).utf8.prefix(25_600))
            _ = text.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
        let (status, _) = try shell(loop, "git init -q && git add -A && git -c user.name=T -c user.email=t@t commit -qm bench", in: repo)
        #expect(status == .exited(0))
        let size = try shell(loop, "du -sm --exclude=.git . | cut -f1; du -sm .git | cut -f1", in: repo).stdout.split(separator: "\n")
        for strategy in [Workspace.Strategy.copy, .gitClone(revision: "HEAD"), .copy, .gitClone(revision: "HEAD")] {
            try shell(loop, "sync")  // start each measurement without the previous copy's dirty pages
            var created: Result<Workspace, SandboxError>?
            Workspace.create(loop: loop, from: repo, parentDirectory: scratchDirectory("bench-ws"), strategy: strategy) { created = $0 }
            #expect(spin(loop) { created != nil })
            let workspace = try #require(try created?.get())
            #expect(workspace.baseCommit != nil)
            print("[SandboxTests] workspace creation, 2,000 files, \(size.first ?? "?") MB tree + \(size.last ?? "?") MB .git, \(strategy): \(workspace.creationMilliseconds) ms")
            var removed = false
            workspace.remove(loop: loop) { _ in removed = true }
            _ = spin(loop) { removed }
        }
        try shell(loop, "rm -rf \(repo)")
    }
}
