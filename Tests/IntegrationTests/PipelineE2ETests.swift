// PipelineE2ETests: the self-healing loop end to end over a real socket — sandbox, tests, analysis, fixes,
// review, git commit, rollback, and the failure modes (max attempts, unfixable, hostile fixes, hangs, floods, restarts).
import Foundation
import Glibc
import MedicHost
import Protocol
import TestSupport
import Testing

/// The repository root (for examples/), from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Writes a scripted conversation whose replies are `replies` (objects or strings), matched by attempt order.
func writeScript(_ replies: [JSONValue], in directory: String) throws -> String {
    let path = (directory as NSString).appendingPathComponent("script-\(UInt32.random(in: 0...UInt32.max)).json")
    let entries: [JSONValue] = replies.enumerated().map { .object(["attempt": .int(Int64($0.offset + 1)), "reply": $0.element]) }
    try JSONValue.object(["replies": .array(entries)]).jsonString.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func fix(_ changes: [JSONValue], explanation: String = "fix") -> JSONValue {
    .object(["unfixable": false, "explanation": .string(explanation), "changes": .array(changes)])
}

func file(_ path: String, _ content: String, action: String = "modify") -> JSONValue {
    .object(["path": .string(path), "action": .string(action), "content": .string(content)])
}

/// Proposes and returns (proposal id, the session subscribed to its topic from 0).
func proposeAndWatch(_ medic: MedicHarness, token: String, title: String, changes: JSONValue) throws -> (String, MedicClient) {
    let session = try medic.session(token)
    let ack = try session.call(["type": "propose", "title": .string(title), "description": "d", "changes": changes])
    let id = try #require(ack["proposal"]?.stringValue, "propose refused: \(ack.jsonString)")
    #expect(try session.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0])["type"]?.stringValue == "ack")
    return (id, session)
}

func kinds(_ messages: [JSONValue]) -> [String] { messages.compactMap { $0["kind"]?.stringValue } }

@Suite("Self-healing pipeline end to end", .serialized)
struct PipelineE2ETests {
    @Test func demoFailsGetsFixedIsApprovedCommittedAndRolledBack() throws {
        let medic = try MedicHarness { configuration, directory in
            let repo = (directory as NSString).appendingPathComponent("demo")
            try FileManager.default.copyItem(atPath: repositoryRoot + "/examples/demo-repo", toPath: repo)
            _ = try git(repo, "init", "-q", "-b", "main")
            _ = try git(repo, "add", "-A")
            _ = try git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
            configuration.repositories = [RepositoryConfig(name: "demo-repo", path: repo, testCommand: "python3 -m unittest discover -s tests -v")]
            configuration.llm = .scripted(path: repositoryRoot + "/examples/demo-conversation.json")
        }
        defer { medic.stop() }
        let bot = try medic.token("demo-bot", role: "bot")
        let admin = try medic.session(try medic.token("alice", role: "admin"))
        let proposal = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/examples/demo-proposal.json"))))
        let (id, watcher) = try proposeAndWatch(medic, token: bot, title: proposal["title"]!.stringValue!, changes: proposal["changes"]!)
        let history = try watcher.untilStatus("awaiting_review")
        let seen = kinds(history)
        #expect(seen.filter { $0 == "test_finished" }.count == 3)
        #expect(seen.filter { $0 == "fix_generated" }.count == 2)
        let analyses = history.filter { $0["kind"]?.stringValue == "analysis" }
        #expect(analyses.map { $0["data"]?["category"]?.stringValue } == ["import", "undefined_name"])
        #expect(analyses[0]["data"]?["root_cause"]?.stringValue?.contains("redis") == true)
        #expect(history.contains { $0["kind"]?.stringValue == "test_output" && ($0["data"]?["lines"]?.arrayValue ?? []).contains { $0.stringValue?.contains("ModuleNotFoundError") == true } })

        #expect(try admin.call(["type": "approve", "proposal": .string(id), "revision": 3, "comment": "ship it"])["type"]?.stringValue == "ack")
        let applied = try watcher.untilStatus("applied")
        let commit = try #require(applied.first { $0["kind"]?.stringValue == "applied" }?["data"]?["commit"]?.stringValue)
        let repo = medic.directory + "/demo"
        let log = try git(repo, "log", "-1", "--format=%H%n%an%n%B")
        #expect(log.hasPrefix(commit))
        #expect(log.contains("demo-bot"))
        #expect(log.contains(id) && log.contains("alice"))
        #expect(FileManager.default.fileExists(atPath: repo + "/app/cache.py"))

        #expect(try admin.call(["type": "rollback", "proposal": .string(id)])["type"]?.stringValue == "ack")
        let rolledBack = try watcher.untilStatus("rolled_back")
        #expect(rolledBack.contains { $0["kind"]?.stringValue == "rolled_back" })
        #expect(!FileManager.default.fileExists(atPath: repo + "/app/cache.py"))
        #expect(try git(repo, "log", "-1", "--format=%s").hasPrefix("Revert"))
    }

    /// A repository whose test passes only when fixed.txt says "fixed".
    static func brokenRepo(_ directory: String) throws -> String {
        try makeRepository(["check.sh": "#!/bin/sh\ngrep -q fixed fixed.txt || { echo \"AssertionError: fixed.txt is wrong\" >&2; exit 1; }\n"], in: directory)
    }

    @Test func attemptsThatStopMakingProgressEndUnfixable() throws {
        let medic = try MedicHarness { configuration, directory in
            configuration.repositories = [RepositoryConfig(name: "r", path: try Self.brokenRepo(directory), testCommand: "sh check.sh")]
            configuration.llm = .scripted(path: try writeScript(
                [fix([file("fixed.txt", "try 1")]), fix([file("fixed.txt", "try 2")]), fix([file("fixed.txt", "try 3")])], in: directory))
        }
        defer { medic.stop() }
        let (_, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                              changes: .array([file("fixed.txt", "broken", action: "create")]))
        let history = try watcher.untilStatus("unfixable")
        let attempts = history.filter { $0["kind"]?.stringValue == "fix_started" }.count
        #expect(attempts >= 2 && attempts <= 3)
        #expect(history.contains { $0["kind"]?.stringValue == "unfixable" })
    }

    @Test func maxAttemptsIsHonoured() throws {
        let medic = try MedicHarness { configuration, directory in
            // Each attempt fails differently (another missing module), so only the limit stops it.
            let repo = try makeRepository(["t.py": "import fixed_a\n"], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "python3 t.py")]
            configuration.maxAttempts = 2
            configuration.llm = .scripted(path: try writeScript(
                [fix([file("t.py", "import fixed_b\n")]), fix([file("t.py", "x = 1\nraise TypeError('still wrong')\n")])], in: directory))
        }
        defer { medic.stop() }
        let (_, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                              changes: .array([file("t.py", "import fixed_c\n")]))
        let history = try watcher.untilStatus("unfixable")
        #expect(history.filter { $0["kind"]?.stringValue == "fix_started" }.count == 2)
        #expect(history.filter { $0["kind"]?.stringValue == "test_finished" }.count == 3)
    }

    @Test func theLLMCanDeclareItUnfixable() throws {
        let medic = try MedicHarness { configuration, directory in
            configuration.repositories = [RepositoryConfig(name: "r", path: try Self.brokenRepo(directory), testCommand: "sh check.sh")]
            configuration.llm = .scripted(path: try writeScript(
                [.object(["unfixable": true, "explanation": "needs a database migration", "changes": .array([])])], in: directory))
        }
        defer { medic.stop() }
        let (_, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                              changes: .array([file("fixed.txt", "broken", action: "create")]))
        let history = try watcher.untilStatus("unfixable")
        let event = try #require(history.first { $0["kind"]?.stringValue == "unfixable" })
        #expect(event["data"]?.jsonString.contains("needs a database migration") == true)
    }

    @Test func hostileFixesAreRefusedAndNothingIsWrittenOutside() throws {
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("medic-outside-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let medic = try MedicHarness { configuration, directory in
            let repo = try Self.brokenRepo(directory)
            try FileManager.default.createSymbolicLink(atPath: repo + "/escape", withDestinationPath: outside)
            _ = try git(repo, "add", "escape")
            _ = try git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "link")
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "sh check.sh")]
            configuration.maxAttempts = 3
            configuration.llm = .scripted(path: try writeScript([
                fix([file("../../etc/passwd", "pwned", action: "create")]),
                fix([file("/etc/passwd", "pwned")]),
                fix([file("escape/pwned.txt", "pwned", action: "create")]),
            ], in: directory))
        }
        defer { medic.stop() }
        let (_, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                              changes: .array([file("fixed.txt", "broken", action: "create")]))
        let history = try watcher.untilStatus("unfixable")
        let failures = history.filter { $0["kind"]?.stringValue == "fix_failed" || $0["kind"]?.stringValue == "status_changed" }
            .compactMap { $0["data"]?["reason"]?.stringValue }
        #expect(failures.contains { $0.contains("..") || $0.contains("etc/passwd") })
        #expect(!FileManager.default.fileExists(atPath: outside + "/pwned.txt"))
        #expect(try String(contentsOfFile: "/etc/passwd", encoding: .utf8).contains("pwned") == false)
        // An oversized file (over the 1 MiB per-file bound; Pipeline's tests cover 100 MB) is refused before anything is stored.
        let admin = try medic.session(try medic.token("b", role: "admin"))
        let big = String(repeating: "x", count: 2 << 20)
        let refused = try admin.call(["type": "propose", "title": "big", "description": "d", "changes": .array([file("big.txt", big, action: "create")])])
        #expect(refused["type"]?.stringValue == "error")
        #expect(refused["message"]?.stringValue?.contains("big.txt") == true)
    }

    @Test func aHangingTestIsKilledAtTheTimeout() throws {
        let medic = try MedicHarness { configuration, directory in
            let repo = try makeRepository(["hang.sh": "#!/bin/sh\nsleep 300 &\necho started\nsleep 300\n"], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "sh hang.sh")]
            configuration.testTimeoutSeconds = 2
            configuration.autoFix = false
            configuration.llm = .scripted(path: try writeScript([], in: directory))
        }
        defer { medic.stop() }
        let started = Date()
        let (_, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                              changes: .array([file("x.txt", "x", action: "create")]))
        let history = try watcher.until { $0["kind"]?.stringValue == "analysis" }
        let finished = try #require(history.first { $0["kind"]?.stringValue == "test_finished" })
        #expect(finished["data"]?["timed_out"]?.boolValue == true)
        #expect(history.last?["data"]?["category"]?.stringValue == "timeout")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    @Test func aFloodingTestIsCapped() throws {
        let medic = try MedicHarness { configuration, directory in
            let repo = try makeRepository(["flood.py": "for i in range(400000):\n    print('line', i, 'x' * 40)\nraise SystemExit(1)\n"], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "python3 flood.py")]
            configuration.autoFix = false
            configuration.llm = .scripted(path: try writeScript([], in: directory))
        }
        defer { medic.stop() }
        let (_, watcher) = try proposeAndWatch(medic, token: try medic.token("a", role: "admin"), title: "t",
                                              changes: .array([file("x.txt", "x", action: "create")]))
        let history = try watcher.until(1_000_000) { $0["kind"]?.stringValue == "test_finished" }
        let lines = history.filter { $0["kind"]?.stringValue == "test_output" }.flatMap { $0["data"]?["lines"]?.arrayValue ?? [] }
        #expect(history.last?["data"]?["truncated"]?.boolValue == true)
        #expect(lines.count < 400_000)
        #expect(lines.last?.stringValue?.contains("truncated") == true)
    }

    @Test func aRestartMidRunMarksTheProposalInterrupted() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-restart-\(UInt32.random(in: 0...UInt32.max))").path
        let configure: (inout MedicConfiguration, String) throws -> Void = { configuration, directory in
            let repo = directory + "/repo"
            if !FileManager.default.fileExists(atPath: repo) { _ = try makeRepository(["slow.sh": "sleep 30\n"], in: directory) }
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "sh slow.sh")]
            configuration.llm = .scripted(path: try writeScript([], in: directory))
        }
        let first = try MedicHarness(directory: directory, configure: configure)
        let token = try first.token("a", role: "admin")
        let (id, watcher) = try proposeAndWatch(first, token: token, title: "t", changes: .array([file("x.txt", "x", action: "create")]))
        _ = try watcher.until { $0["kind"]?.stringValue == "test_started" }
        first.stop()
        let second = try MedicHarness(directory: directory, configure: configure)
        defer { second.stop() }
        let session = try second.session(token)
        #expect(try session.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0])["type"]?.stringValue == "ack")
        let history = try session.untilStatus("interrupted")
        #expect(history.last?["data"]?["reason"]?.stringValue?.contains("restarted") == true)
    }
}
