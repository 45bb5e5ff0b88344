// SandboxE2ETests: a whole Medic attacked by the code under test (security issue, defects 6 and 7): a proposal's
// test reads the host (shadow, Medic's SQLite principals, a key file) and fills the disk; finished proposals'
// sandboxes are removed.
import Foundation
import Glibc
import MedicHost
import Protocol
import TestSupport
import Testing

/// Waits for `condition` with a generous safety net (a hang guard, not a timing assertion).
private func eventually(_ seconds: Double = 90, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { return false }
        usleep(20_000)
    }
    return true
}

@Suite("Sandbox attacks end to end", .serialized)
struct SandboxE2ETests {
    @Test func aProposalsTestCannotReadTheHostOrMedicsData() throws {
        let marker = "medic-tls-key-\(UInt64.random(in: 0...UInt64.max))"
        // The data directory where a deployment keeps it (not under /tmp, which every sandbox replaces anyway).
        let data = "/var/tmp/medic-e2e-data-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let medic = try MedicHarness { configuration, directory in
            configuration.dataDirectory = data
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try marker.write(toFile: data + "/tls.key", atomically: true, encoding: .utf8)
            let attack = """
                import os, re
                print('uid', os.getuid())
                for path in ['/etc/shadow', '/etc/gshadow', '\(data)/tls.key']:
                    try: print(open(path).read())
                    except Exception as e: print('refused', path, type(e).__name__)
                for path in ['\(data)/medic.sqlite', '\(data)/medic.sqlite-wal']:
                    try: print([s.decode() for s in re.findall(rb'[ -~]{6,}', open(path, 'rb').read())])
                    except Exception as e: print('refused', path, type(e).__name__)
                for path in ['/root', '/home', '\(data)', '\(data)/sandboxes']:
                    try: print(path, os.listdir(path))
                    except Exception as e: print('refused', path, type(e).__name__)
                raise SystemExit(1)
                """
            let repo = try makeRepository(["attack.py": attack], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "python3 attack.py")]
            configuration.autoFix = false
            configuration.llm = .scripted(path: try writeScript([], in: directory))
        }
        defer { medic.stop() }
        let adminName = "admin-\(UInt32.random(in: 0...UInt32.max))"
        let token = try medic.token(adminName, role: "admin")
        let (_, watcher) = try proposeAndWatch(medic, token: token, title: "t", changes: .array([file("x.txt", "x", action: "create")]))
        let history = try watcher.until { $0["kind"]?.stringValue == "test_finished" }
        let ready = try #require(history.first { $0["kind"]?.stringValue == "sandbox_ready" })
        #expect(ready["data"]?["isolation"]?.stringValue == "bwrap")
        let lines = history.filter { $0["kind"]?.stringValue == "test_output" }
            .flatMap { $0["data"]?["lines"]?.arrayValue ?? [] }.compactMap(\.stringValue)
        let output = lines.joined(separator: "\n")
        let shadowFirstLine = try String(contentsOfFile: "/etc/shadow", encoding: .utf8).split(separator: "\n").first.map(String.init) ?? "root:"
        #expect(!output.contains(shadowFirstLine), "test_output carries /etc/shadow")
        #expect(!output.contains(marker), "test_output carries a key from the data directory")
        #expect(!output.contains(adminName), "test_output carries the principals table")
        #expect(!lines.contains { $0.hasPrefix(data + " [") && $0.contains("medic.sqlite") }, "the data directory is listable")
        #expect(lines.contains("uid 65534"), "the test runs as \(lines.first { $0.hasPrefix("uid") } ?? "?")")
        // sandbox_ready says exactly what the test could see.
        let visible = ready["data"]?["visible"]?.arrayValue ?? []
        let paths = visible.compactMap { $0["path"]?.stringValue }
        #expect(paths.contains("/usr") && paths.contains("/tmp"))
        #expect(visible.contains { $0["mode"]?.stringValue == "rw" && $0["path"]?.stringValue?.contains("/sandboxes/") == true })
        #expect(!paths.contains("/") && !paths.contains("/root") && !paths.contains("/home") && !paths.contains("/etc/shadow"))
    }
}

extension SandboxE2ETests {
    /// Defect 7: three 200 MB files (the 573 MB one proposal left behind), written by the test itself.
    @Test func aTestFillingTheDiskIsKilledAsDiskQuota() throws {
        let medic = try MedicHarness { configuration, directory in
            // Fills, then lingers: only the quota (not the test's exit, nor the 30 s timeout) can end it.
            let fill = "for i in 1 2 3; do head -c 200000000 /dev/zero > big$i.bin; done; echo filled; sleep 600"
            let repo = try makeRepository(["README": "r\n"], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: fill)]
            configuration.autoFix = false
            configuration.sandboxDiskQuotaMB = 256
            configuration.llm = .scripted(path: try writeScript([], in: directory))
        }
        defer { try? FileManager.default.removeItem(atPath: medic.directory) }  // after stop (defers run in reverse)
        defer { medic.stop() }
        let (id, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                                changes: .array([file("x.txt", "x", action: "create")]))
        let history = try watcher.until { $0["kind"]?.stringValue == "analysis" }
        let analysis = try #require(history.last)
        #expect(analysis["data"]?["category"]?.stringValue == "disk_quota", "\(analysis.jsonString)")
        let lines = history.filter { $0["kind"]?.stringValue == "test_output" }
            .flatMap { $0["data"]?["lines"]?.arrayValue ?? [] }.compactMap(\.stringValue)
        #expect(lines.contains { $0.hasPrefix("[medic] disk quota exceeded") }, "\(lines)")
        let finished = try #require(history.first { $0["kind"]?.stringValue == "test_finished" })
        #expect(finished["data"]?["timed_out"]?.boolValue == false)
        #expect(finished["data"]?["disk_quota_exceeded"]?.boolValue == true)
        #expect(finished["data"]?["signal"]?.intValue == Int64(SIGKILL))
        // The sandbox holds what was written until the proposal finishes (then it is removed; see below).
        #expect(FileManager.default.fileExists(atPath: medic.directory + "/data/sandboxes/" + id))
    }

    /// Defect 7: a rejected proposal's sandbox stays on disk forever.
    @Test func aFinishedProposalsSandboxIsRemoved() throws {
        let medic = try MedicHarness { configuration, directory in
            let repo = try makeRepository(["ok.sh": "echo ok > produced.txt\n"], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "sh ok.sh")]
            configuration.llm = .scripted(path: try writeScript([], in: directory))
        }
        defer { medic.stop() }
        let admin = try medic.session(try medic.token("admin", role: "admin"))
        let (id, watcher) = try proposeAndWatch(medic, token: try medic.token("bot", role: "bot"), title: "t",
                                                changes: .array([file("x.txt", "x", action: "create")]))
        _ = try watcher.untilStatus("awaiting_review")
        let sandbox = medic.directory + "/data/sandboxes/" + id
        #expect(FileManager.default.fileExists(atPath: sandbox), "the sandbox exists while the proposal is under review")
        #expect(try admin.call(["type": "reject", "proposal": .string(id), "revision": 1, "comment": "no"])["type"]?.stringValue == "ack")
        _ = try watcher.untilStatus("rejected")
        #expect(eventually { !FileManager.default.fileExists(atPath: sandbox) }, "\(sandbox) is still there")
    }
}

extension SandboxE2ETests {
    /// Sandboxes kept (retention `keep`) by one run are removed at the next start once retention is `remove`.
    @Test func leftoverSandboxesOfFinishedProposalsAreRemovedAtStartup() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-leftover-\(UInt32.random(in: 0...UInt32.max))").path
        let configure: (MedicHost.SandboxRetention) -> (inout MedicConfiguration, String) throws -> Void = { retention in
            { configuration, directory in
                let repo = directory + "/repo"
                if !FileManager.default.fileExists(atPath: repo) { _ = try makeRepository(["ok.sh": "true\n"], in: directory) }
                configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "sh ok.sh")]
                configuration.llm = .scripted(path: try writeScript([], in: directory))
                configuration.sandboxRetention = retention
            }
        }
        let first = try MedicHarness(directory: directory, configure: configure(.keep))
        let adminToken = try first.token("admin", role: "admin")
        let admin = try first.session(adminToken)
        let (finished, watcher) = try proposeAndWatch(first, token: try first.token("bot", role: "bot"), title: "t",
                                                      changes: .array([file("x.txt", "x", action: "create")]))
        _ = try watcher.untilStatus("awaiting_review")
        #expect(try admin.call(["type": "reject", "proposal": .string(finished), "revision": 1, "comment": "no"])["type"]?.stringValue == "ack")
        _ = try watcher.untilStatus("rejected")
        let (open, other) = try proposeAndWatch(first, token: adminToken, title: "u", changes: .array([file("y.txt", "y", action: "create")]))
        _ = try other.untilStatus("awaiting_review")
        first.stop()
        let sandboxes = directory + "/data/sandboxes/"
        #expect(FileManager.default.fileExists(atPath: sandboxes + finished), "kept by retention keep")
        // A stray directory nobody knows, and a symlink planted where a sandbox would be: the target survives.
        let outside = directory + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "keep".write(toFile: outside + "/precious.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: sandboxes + "p-stray/ws-1", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: sandboxes + "p-stray/ws-1/link", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: sandboxes + "p-symlink", withDestinationPath: outside)

        let second = try MedicHarness(directory: directory, configure: configure(.remove))
        defer { second.stop() }
        #expect(eventually { !FileManager.default.fileExists(atPath: sandboxes + finished) && !FileManager.default.fileExists(atPath: sandboxes + "p-stray") })
        #expect(FileManager.default.fileExists(atPath: sandboxes + open), "a proposal under review keeps its sandbox")
        #expect(try String(contentsOfFile: outside + "/precious.txt", encoding: .utf8) == "keep")
    }

    @Test func aRepositoryHoldingMedicsDataIsRefused() throws {
        var configuration = MedicConfiguration()
        configuration.dataDirectory = "/srv/app/.medic"
        configuration.repositories = [RepositoryConfig(name: "app", path: "/srv/app", testCommand: "true")]
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.repositories = []
        configuration.sandboxReadOnlyPaths = ["/srv/app/.medic/keys"]
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.sandboxReadOnlyPaths = ["/"]
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.sandboxReadOnlyPaths = ["/opt/swift"]
        try configuration.validate()

        // The example config carries the sandbox keys (and the loader knows them).
        var example = MedicConfiguration()
        try example.load(file: repositoryRoot + "/config/medic.example.json")
        #expect(example.sandboxReadOnlyPaths == ["/opt/swift"] && example.sandboxRetention == .remove && example.sandboxDiskQuotaMB == 1024)
        #expect(example.sandboxHiddenPaths.contains { $0.hasSuffix("/config/medic.example.json") })
        // …and max_parallel_sandboxes (approaches of one bug running at once), 1–64.
        #expect(example.maxParallelSandboxes == 2)
        for bad in [0, 65] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("medic-parallel-\(bad).json").path
            try #"{"max_parallel_sandboxes": \#(bad)}"#.write(toFile: path, atomically: true, encoding: .utf8)
            var refused = MedicConfiguration()
            #expect(throws: ConfigurationError.self) { try refused.load(file: path) }
        }
        #expect(throws: ConfigurationError.self) { try MedicConfiguration.parseRetention("sometimes") }
    }
}
