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
            python3 -c "open('made-in-workspace.txt','w').write('ok'); open('/tmp/made-in-tmp.txt','w').write('ok'); print('python-writes-ok')"
            """
        let (result, lines) = try runIn(loop, TestRunConfiguration(workspacePath: mine, testCommand: script), isolation)
        let output = lines.joined(separator: "\n")
        #expect(!output.contains(shadowFirstLine), "read /etc/shadow")
        #expect(!output.contains(secret), "read a host secret or another proposal's workspace")
        #expect(!lines.contains("p-other"), "listed another proposal's sandbox")
        #expect(lines.contains("uid=65534"), "runs as \(lines.first { $0.hasPrefix("uid=") } ?? "?")")
        #expect(lines.contains("python-writes-ok"), "a test can write its workspace and /tmp: \(output)")
        #expect(FileManager.default.fileExists(atPath: mine + "/made-in-workspace.txt"))
        #expect(result.exitCode == 0)
    }
}
