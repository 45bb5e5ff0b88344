// SandboxExposureTests: attacks on the host from inside a real bwrap sandbox (security issue, defects 6 and 7):
// reading host secrets, other sandboxes, running as root, filling the disk.
import EventLoop
import Foundation
import Glibc
import Sandbox
import Testing

/// Runs the loop until `condition` holds or `seconds` pass (a safety net against hangs, not a timing assertion).
private func spinUntil(_ loop: EventLoop, seconds: Double = 180, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanoseconds() > deadline { return false }
        loop.runOnce(maxWaitMilliseconds: 50)
    }
    return true
}

private func probe(_ loop: EventLoop) -> SandboxIsolation? {
    var isolation: SandboxIsolation?
    SandboxIsolation.probe(loop: loop) { isolation = $0 }
    _ = spinUntil(loop) { isolation != nil }
    return isolation
}

/// A fresh directory under /var/tmp (not /tmp: the sandbox's /tmp is private anyway, so /var/tmp is the harder case).
private func freshDirectory(_ name: String) throws -> String {
    let path = "/var/tmp/medic-exposure-tests/\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `command` in `workspace` under `isolation` and returns (result, stdout+stderr lines).
private func runIn(_ loop: EventLoop, _ configuration: TestRunConfiguration, _ isolation: SandboxIsolation) throws -> (TestRunResult, [String]) {
    var lines: [String] = []
    var result: TestRunResult?
    let run = TestRun(loop: loop, configuration: configuration, isolation: isolation,
                      onLines: { _, batch in lines += batch }, onFinished: { result = $0 })
    run.start()
    #expect(spinUntil(loop) { result != nil })
    return (try #require(result), lines)
}

@Suite(.serialized) struct SandboxExposureTests {
    /// Defect 6: a test reads /etc/shadow, a secret beside the sandboxes (as Medic's data directory holds its
    /// SQLite file and keys), another proposal's workspace, /root and /home — and checks whom it runs as.
    @Test func aSandboxedTestSeesOnlyWhatATestNeeds() throws {
        let loop = try EventLoop()
        let isolation = try #require(probe(loop))
        try #require(isolation.mode == .bwrap, "bwrap must work on this machine: \(isolation.warning ?? "")")
        let data = try freshDirectory("data")
        let secret = "medic-host-secret-\(UInt64.random(in: 0...UInt64.max))"
        try secret.write(toFile: data + "/secret.key", atomically: true, encoding: .utf8)
        let mine = data + "/sandboxes/p-mine/ws-1"
        let other = data + "/sandboxes/p-other/ws-2"
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try secret.write(toFile: other + "/other-proposal.txt", atomically: true, encoding: .utf8)
        let shadowFirstLine = try String(contentsOfFile: "/etc/shadow", encoding: .utf8).split(separator: "\n").first.map(String.init) ?? "root:"
        let script = """
            cat /etc/shadow; cat /etc/gshadow; cat \(data)/secret.key; cat \(other)/other-proposal.txt; \
            ls -a \(data)/sandboxes; ls -a /root /home; \
            echo "uid=$(id -u)"; \
            python3 -c "open('made-in-workspace.txt','w').write('ok'); open('/tmp/made-in-tmp.txt','w').write('ok'); print('python-writes-ok')"; \
            python3 -c "import ssl, sqlite3, multiprocessing; multiprocessing.Lock(); print('python-stdlib-ok')"; \
            git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm x && git status --porcelain && echo git-ok
            """
        let (result, lines) = try runIn(loop, TestRunConfiguration(workspacePath: mine, testCommand: script), isolation)
        let output = lines.joined(separator: "\n")
        #expect(!output.contains(shadowFirstLine), "read /etc/shadow")
        #expect(!output.contains(secret), "read a host secret or another proposal's workspace")
        #expect(!lines.contains("p-other"), "listed another proposal's sandbox")
        #expect(lines.contains("uid=65534"), "runs as \(lines.first { $0.hasPrefix("uid=") } ?? "?")")
        #expect(lines.contains("python-writes-ok"), "a test can write its workspace and /tmp: \(output)")
        #expect(lines.contains("python-stdlib-ok") && lines.contains("git-ok"), "\(output)")
        #expect(FileManager.default.fileExists(atPath: mine + "/made-in-workspace.txt"))
        #expect(result.exitCode == 0)
    }
}

extension SandboxExposureTests {
    /// Medic's data directory and key under an allowed read-only path are still hidden; so is the root of
    /// the sandbox, /dev and the cover itself for writing.
    @Test func hiddenPathsUnderAVisiblePathAreCovered() throws {
        let loop = try EventLoop()
        let isolation = try #require(probe(loop))
        try #require(isolation.mode == .bwrap)
        let allowed = try freshDirectory("allowed")
        let data = allowed + "/medic-data"
        try FileManager.default.createDirectory(atPath: data + "/sandboxes/p-1/ws-1", withIntermediateDirectories: true)
        let secret = "secret-\(UInt64.random(in: 0...UInt64.max))"
        try secret.write(toFile: data + "/medic.sqlite", atomically: true, encoding: .utf8)
        try secret.write(toFile: allowed + "/tls.key", atomically: true, encoding: .utf8)
        try "tool\n".write(toFile: allowed + "/tool.txt", atomically: true, encoding: .utf8)
        let view = SandboxView(readOnlyPaths: [allowed], hiddenPaths: [data, allowed + "/tls.key"], tmpSizeBytes: 8 << 20)
        let workspace = data + "/sandboxes/p-1/ws-1"
        let script = """
            cat \(allowed)/tool.txt; cat \(data)/medic.sqlite; cat \(allowed)/tls.key; ls \(data); \
            touch /evil 2>/dev/null || echo root-ro; touch /dev/evil 2>/dev/null || echo dev-ro; \
            touch \(data)/evil 2>/dev/null || echo cover-ro; echo w > written && echo ws-rw; \
            head -c 16000000 /dev/zero > /tmp/fill 2>/dev/null || echo tmp-bounded
            """
        let (_, lines) = try runIn(loop, TestRunConfiguration(workspacePath: workspace, testCommand: script, view: view), isolation)
        #expect(lines.contains("tool"))
        #expect(!lines.joined().contains(secret))
        #expect(lines.contains("sandboxes"))  // only the path bwrap made to the workspace
        for expected in ["root-ro", "dev-ro", "cover-ro", "ws-rw", "tmp-bounded"] { #expect(lines.contains(expected), "\(expected): \(lines)") }
        let visible = isolation.visiblePaths(workspace: workspace, view: view)
        #expect(visible.contains(VisiblePath(allowed, .ro)) && visible.contains(VisiblePath(workspace, .rw)))
        #expect(!visible.contains { $0.path == "/" || $0.path == "/etc" || $0.path.hasPrefix("/etc/shadow") || $0.path.hasPrefix("/root") })
    }

    /// Removing a sandbox directory never follows a symlink out of it.
    @Test func sandboxRemovalDoesNotFollowSymlinks() throws {
        let loop = try EventLoop()
        let root = try freshDirectory("sandboxes")
        let outside = try freshDirectory("outside")
        try "keep".write(toFile: outside + "/precious.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/p-a/ws-1", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/p-a/ws-1/escape", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/p-link", withDestinationPath: outside)
        var results: [String: Result<Void, SandboxError>] = [:]
        for name in ["p-a", "p-link", "../outside", "p-missing"] {
            SandboxDirectory.remove(name: name, in: root, loop: loop) { results[name] = $0 }
        }
        #expect(spinUntil(loop) { results.count == 4 })
        #expect((try? results["p-a"]?.get()) != nil)
        #expect((try? results["p-link"]?.get()) == nil)
        #expect((try? results["../outside"]?.get()) == nil)
        #expect((try? results["p-missing"]?.get()) != nil)
        #expect(!FileManager.default.fileExists(atPath: root + "/p-a"))
        #expect(try String(contentsOfFile: outside + "/precious.txt", encoding: .utf8) == "keep")
        #expect(SandboxDirectory.entries(in: root) == [])  // the symlink p-link is not a sandbox directory
    }
}

extension SandboxExposureTests {
    /// A run that fills its workspace and exits 0 before a periodic check still fails: the last check runs
    /// after the last command. Unisolated too (the quota does not depend on bwrap).
    @Test(arguments: [true, false])
    func aRunEndingOverItsQuotaFails(isolated: Bool) throws {
        let loop = try EventLoop()
        let isolation = isolated ? try #require(probe(loop)) : .unisolated
        let workspace = try freshDirectory("quota")
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let (result, lines) = try runIn(loop, TestRunConfiguration(
            workspacePath: workspace, testCommand: "head -c 3000000 /dev/zero > big.bin; exit 0", diskQuotaBytes: 1_000_000,
            diskCheckIntervalNanoseconds: 3_600_000_000_000), isolation)
        #expect(result.diskQuotaExceeded && !result.passed && result.exitCode == 0)
        #expect(lines.contains { $0.hasPrefix("[medic] disk quota exceeded: the workspace holds") })
        let (small, _) = try runIn(loop, TestRunConfiguration(
            workspacePath: workspace, testCommand: "rm big.bin; echo ok > small.txt", diskQuotaBytes: 1_000_000), isolation)
        #expect(small.passed && !small.diskQuotaExceeded)
    }
}
