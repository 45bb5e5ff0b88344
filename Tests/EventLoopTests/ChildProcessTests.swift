// ChildProcessTests: real loop, real processes (the medic-test-child helper): output, exits, signals, process trees.
import EventLoop
import Glibc
import Testing

/// Locates the `medic-test-child` executable the package builds next to the test bundle.
enum TestChild {
    static let path: String? = find()

    /// The directory of the running test binary first (`swift test` puts every product there); otherwise
    /// the newest `medic-test-child` under the package's `.build*` directories.
    private static func find() -> String? {
        var candidates: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var dir = exe
            // The runner may live inside an .xctest bundle directory: walk up a few levels.
            for _ in 0..<4 {
                guard let slash = dir.lastIndex(of: "/") else { break }
                dir = String(dir[..<slash])
                candidates.append(dir + "/medic-test-child")
            }
        }
        let root = packageRoot()
        if let entries = opendir(root) {
            defer { closedir(entries) }
            while let entry = readdir(entries) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard name.hasPrefix(".build") else { continue }
                for triple in ["debug", "release", "x86_64-unknown-linux-gnu/debug", "aarch64-unknown-linux-gnu/debug"] {
                    candidates.append("\(root)/\(name)/\(triple)/medic-test-child")
                }
            }
        }
        var best: (path: String, mtime: Int)?
        for candidate in candidates where access(candidate, X_OK) == 0 {
            var info = stat()
            guard stat(candidate, &info) == 0 else { continue }
            // Prefer the binary next to the test runner (first candidates), else the newest.
            if best == nil && candidates.firstIndex(of: candidate)! < 4 { return candidate }
            if best == nil || info.st_mtim.tv_sec > best!.mtime { best = (candidate, info.st_mtim.tv_sec) }
        }
        return best?.path
    }

    private static func packageRoot(file: String = #filePath) -> String {
        var parts = file.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Tests/EventLoopTests/ChildProcessTests.swift
        return "/" + parts.joined(separator: "/")
    }
}

/// Everything a test child did, collected on the loop thread.
final class ChildRecord {
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var status: ProcessExit?
    /// stdout length at the moment `onExit` ran (proves output was delivered before the exit).
    var stdoutAtExit = -1
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs `loop` until `condition` holds; false if it did not within `seconds` (a safety net, not a timing assertion).
func runLoop(_ loop: EventLoop, seconds: Double = 60, until condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanoseconds() > deadline { return false }
        loop.runOnce(maxWaitMilliseconds: 50)
    }
    return true
}

/// Spawns the test child with `arguments`, recording into a new `ChildRecord`.
func spawnChild(_ loop: EventLoop, _ arguments: [String], killGroupOnExit: Bool = true) throws -> (ChildProcess, ChildRecord) {
    let record = ChildRecord()
    let child = try ChildProcess(
        loop: loop, executable: try #require(TestChild.path), arguments: arguments, killGroupOnExit: killGroupOnExit,
        onOutput: { stream, bytes in
            switch stream {
            case .stdout: record.stdout.append(contentsOf: bytes)
            case .stderr: record.stderr.append(contentsOf: bytes)
            }
        },
        onExit: { status in
            record.status = status
            record.stdoutAtExit = record.stdout.count
        })
    return (child, record)
}

/// Whether a process is alive (a zombie counts as dead: it runs nothing).
func processAlive(_ pid: Int32) -> Bool {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return false }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return false }
    let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return false }
    let state = text[text.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}

/// A marker unique to one test, put on a grandchild's command line so it can be found from the host.
func uniqueMarker() -> String { "medic-marker-\(getpid())-\(UInt64.random(in: 0...UInt64.max))" }

/// Pids of live processes whose command line contains `marker` as an argument.
func processesWithMarker(_ marker: String) -> [Int32] {
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
        let args = bytes[0..<n].split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if args.contains(marker) && processAlive(pid) { found.append(pid) }
    }
    return found
}

@Suite struct ChildProcessTests {
    @Test func deliversAllOutputBeforeExit() throws {
        let loop = try EventLoop()
        let (_, record) = try spawnChild(loop, ["print-lines", "20000"])
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .exited(0))
        var expected = ""
        for i in 1...20000 { expected += "line \(i)\n" }
        #expect(record.stdoutText == expected)
        #expect(record.stdoutAtExit == expected.utf8.count)
    }

    @Test func separatesStdoutAndStderr() throws {
        let loop = try EventLoop()
        let (_, record) = try spawnChild(loop, ["stdout-stderr"])
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.stdoutText == "out 1\nout 2\nout 3\n")
        #expect(record.stderrText == "err 1\nerr 2\n")
    }

    @Test func floodIsDeliveredCompletely() throws {
        let loop = try EventLoop()
        let (_, record) = try spawnChild(loop, ["flood", "\(8 * 1024 * 1024)"])
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .exited(0))
        // 8 MiB rounded down to whole 99-byte lines.
        #expect(record.stdout.count == (8 * 1024 * 1024) / 99 * 99)
        #expect(record.stdoutAtExit == record.stdout.count)
    }

    @Test(arguments: [0, 1, 42, 255])
    func reportsExitCodes(code: Int32) throws {
        let loop = try EventLoop()
        let (_, record) = try spawnChild(loop, ["exit", "\(code)"])
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .exited(code))
    }

    @Test func reportsCrashesAsSignals() throws {
        let loop = try EventLoop()
        let (_, crash) = try spawnChild(loop, ["crash"])
        let (_, aborted) = try spawnChild(loop, ["abort"])
        #expect(runLoop(loop) { crash.status != nil && aborted.status != nil })
        #expect(crash.status == .signaled(SIGSEGV))
        #expect(aborted.status == .signaled(SIGABRT))
    }

    @Test func killSendsTheChosenSignal() throws {
        let loop = try EventLoop()
        let (child, record) = try spawnChild(loop, ["sleep", "1000"])
        #expect(child.isRunning)
        child.kill(signal: SIGTERM)
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .signaled(SIGTERM))
        #expect(!child.isRunning)
    }

    @Test func killTakesTheWholeTree() throws {
        let loop = try EventLoop()
        let marker = uniqueMarker()
        let (child, record) = try spawnChild(loop, ["spawn-grandchild-and-sleep", marker])
        #expect(runLoop(loop) { record.stdoutText.contains("\n") })
        let grandchild = try #require(Int32(record.stdoutText.split(separator: " ").last!.dropLast()))
        #expect(processAlive(grandchild))
        // (the child carries the marker too; /proc may show the grandchild's new command line a moment late)
        #expect(runLoop(loop, seconds: 10) { processesWithMarker(marker).contains(grandchild) })
        child.kill()
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .signaled(SIGKILL))
        // The group was signalled before the leader was reaped: the grandchild is gone (or a zombie).
        #expect(runLoop(loop, seconds: 10) { !processAlive(grandchild) })
        #expect(processesWithMarker(marker).isEmpty)
    }

    @Test func leaderExitKillsTheGroupByDefault() throws {
        let loop = try EventLoop()
        let marker = uniqueMarker()
        let (_, record) = try spawnChild(loop, ["orphan-grandchild", marker])
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .exited(0))
        #expect(record.stdoutText.hasPrefix("grandchild "))
        #expect(runLoop(loop, seconds: 10) { processesWithMarker(marker).isEmpty })
    }

    @Test func grandchildHoldingThePipeDoesNotHangTheLoop() throws {
        let loop = try EventLoop()
        let marker = uniqueMarker()
        let (_, record) = try spawnChild(loop, ["orphan-grandchild", marker], killGroupOnExit: false)
        var ticks = 0
        func tick() {
            ticks += 1
            loop.schedule(afterNanoseconds: 10_000_000) { tick() }
        }
        tick()
        #expect(runLoop(loop) { record.status != nil })
        // The exit is reported although the grandchild still holds stdout open, and the loop kept running.
        #expect(record.status == .exited(0))
        #expect(record.stdoutText.hasPrefix("grandchild "))
        #expect(ticks > 1)
        let survivors = processesWithMarker(marker)
        #expect(survivors.count == 1)  // the grandchild (the child itself has exited)
        for pid in survivors { kill(pid, SIGKILL) }
    }

    @Test func runsWithoutTheCallerKeepingAReference() throws {
        let loop = try EventLoop()
        let record = ChildRecord()
        do {
            _ = try ChildProcess(
                loop: loop, executable: try #require(TestChild.path), arguments: ["print-lines", "3"],
                onOutput: { _, bytes in record.stdout.append(contentsOf: bytes) },
                onExit: { record.status = $0 })
        }
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.stdoutText == "line 1\nline 2\nline 3\n")
    }

    @Test func spawnFailureThrows() throws {
        let loop = try EventLoop()
        #expect(throws: SystemError.self) {
            _ = try ChildProcess(loop: loop, executable: "/nonexistent/medic-nothing", arguments: [],
                                 onOutput: { _, _ in }, onExit: { _ in })
        }
    }

    @Test func appliesResourceLimits() throws {
        let loop = try EventLoop()
        let record = ChildRecord()
        // RLIMIT_FSIZE of 1 byte: `flood` writes to a pipe (not limited), but `write-file` of one byte is fine
        // and the shell's redirection of more than that is killed by SIGXFSZ.
        let dir = "/tmp/medic-childtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o755)
        defer { unlink(dir + "/big"); rmdir(dir) }
        _ = try ChildProcess(
            loop: loop, executable: "/bin/sh", arguments: ["-c", "exec \(try #require(TestChild.path)) flood 100000 > \(dir)/big"],
            limits: ResourceLimits(fileSizeBytes: 4096),
            onOutput: { _, _ in }, onExit: { record.status = $0 })
        #expect(runLoop(loop) { record.status != nil })
        #expect(record.status == .signaled(SIGXFSZ))
    }
}
