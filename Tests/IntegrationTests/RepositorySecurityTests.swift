// RepositorySecurityTests: attacks on the real repository (git pathspecs) and on the fix prompt (symlinked
// workspace files), each performed against a whole Medic over its socket with real git and the real sandbox.
import Foundation
import MedicHost
import Protocol
import TestSupport
import Testing

/// Reads until the proposal settles after an approval: `applied` or `apply_failed`.
private func untilApplySettles(_ watcher: MedicClient) throws -> [JSONValue] {
    try watcher.until {
        $0["kind"]?.stringValue == "status_changed" && ["applied", "apply_failed"].contains($0["data"]?["status"]?.stringValue ?? "")
    }
}

private func status(_ history: [JSONValue]) -> (status: String?, reason: String?) {
    let last = history.last { $0["kind"]?.stringValue == "status_changed" }
    return (last?["data"]?["status"]?.stringValue, last?["data"]?["reason"]?.stringValue)
}

/// The paths a commit changes relative to its parent (NUL-separated output, so no quoting).
private func changedPaths(_ repo: String, _ commit: String) throws -> [String] {
    try git(repo, "diff-tree", "-r", "--no-commit-id", "--no-renames", "--name-only", "-z", commit)
        .split(separator: "\0").map(String.init).sorted()
}

private func contents(_ path: String) -> String? { FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } }

/// A Medic on a repository with `files` committed, whose test command always passes and that has no LLM work.
private func passingMedic(_ files: [String: String], prepare: (String) throws -> Void = { _ in }) throws -> (MedicHarness, String) {
    var repoPath = ""
    let medic = try MedicHarness { configuration, directory in
        let repo = try makeRepository(files, in: directory)
        try prepare(repo)
        repoPath = repo
        configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "true")]
        configuration.llm = .scripted(path: try writeScript([], in: directory))
    }
    return (medic, repoPath)
}

@Suite("Security: git sees paths literally; prompts never follow symlinks", .serialized)
struct RepositorySecurityTests {
    /// A bot un-ignores `.env` and creates `?env`; the admin approves those two files. `?env` as a git glob
    /// pathspec also matched the host's `.env` (secrets), so it was committed — and its rollback deleted it.
    @Test func aGlobPathCannotSmuggleAnIgnoredFileIntoTheCommitNorLetRollbackDeleteIt() throws {
        let secret = "SECRET_TOKEN_\(UInt64.random(in: 0...UInt64.max))"
        let (medic, repo) = try passingMedic([".gitignore": ".env\n", "README": "base\n"]) { repo in
            try "API_KEY=\(secret)\n".write(toFile: repo + "/.env", atomically: true, encoding: .utf8)
        }
        defer { medic.stop() }
        let admin = try medic.session(try medic.token("alice", role: "admin"))
        let (id, watcher) = try proposeAndWatch(
            medic, token: try medic.token("bot", role: "bot"), title: "tidy the ignore list",
            changes: .array([file(".gitignore", "*.log\n"), file("?env", "EXAMPLE=1\n", action: "create")]))
        _ = try watcher.untilStatus("awaiting_review")
        #expect(try admin.call(["type": "approve", "proposal": .string(id), "revision": 1])["type"]?.stringValue == "ack")
        let history = try untilApplySettles(watcher)
        #expect(status(history).status == "applied", "apply: \(status(history))")
        let commit = try #require(history.first { $0["kind"]?.stringValue == "applied" }?["data"]?["commit"]?.stringValue)
        #expect(try changedPaths(repo, commit) == [".gitignore", "?env"])
        #expect(try !git(repo, "show", commit).contains(secret), "the host's .env was committed")
        #expect(contents(repo + "/.env") == "API_KEY=\(secret)\n")

        #expect(try admin.call(["type": "rollback", "proposal": .string(id)])["type"]?.stringValue == "ack")
        _ = try watcher.untilStatus("rolled_back")
        #expect(contents(repo + "/.env") == "API_KEY=\(secret)\n", "rollback deleted or changed the host's .env")
        #expect(contents(repo + "/?env") == nil)
        #expect(contents(repo + "/.gitignore") == ".env\n")
    }

    /// `:!zz` is git's exclude magic: the created file was never staged, the proposal still said `applied`,
    /// and the untracked file left behind made every later apply fail `dirty_working_tree`.
    @Test func aMagicPathspecIsCommittedAsTheFileItNames() throws {
        let (medic, repo) = try passingMedic(["README": "base\n"])
        defer { medic.stop() }
        let admin = try medic.session(try medic.token("alice", role: "admin"))
        let (id, watcher) = try proposeAndWatch(
            medic, token: try medic.token("bot", role: "bot"), title: "notes",
            changes: .array([file("README", "better\n"), file(":!zz", "zz\n", action: "create")]))
        _ = try watcher.untilStatus("awaiting_review")
        #expect(try admin.call(["type": "approve", "proposal": .string(id), "revision": 1])["type"]?.stringValue == "ack")
        let history = try untilApplySettles(watcher)
        #expect(status(history).status == "applied", "apply: \(status(history))")
        let commit = try #require(history.first { $0["kind"]?.stringValue == "applied" }?["data"]?["commit"]?.stringValue)
        #expect(try changedPaths(repo, commit) == [":!zz", "README"])
        #expect(try git(repo, "status", "--porcelain", "--untracked-files=all") == "", "the apply left the tree dirty")
    }

    /// Approving a revision whose content is already HEAD's fails with a reason that says so (not git's
    /// "nothing to commit"), and leaves the repository as it was.
    @Test func approvingWhatIsAlreadyInTheRepositorySaysSo() throws {
        let (medic, repo) = try passingMedic(["README": "base\n"])
        defer { medic.stop() }
        let head = try git(repo, "rev-parse", "HEAD")
        let admin = try medic.session(try medic.token("alice", role: "admin"))
        let (id, watcher) = try proposeAndWatch(medic, token: try medic.token("bot", role: "bot"), title: "same",
                                                changes: .array([file("README", "base\n")]))
        _ = try watcher.untilStatus("awaiting_review")
        #expect(try admin.call(["type": "approve", "proposal": .string(id), "revision": 1])["type"]?.stringValue == "ack")
        let (settled, reason) = status(try untilApplySettles(watcher))
        #expect(settled == "apply_failed")
        #expect(reason?.contains("already in the repository") == true, "reason: \(reason ?? "none")")
        #expect(try git(repo, "rev-parse", "HEAD") == head)
        #expect(try git(repo, "status", "--porcelain", "--untracked-files=all") == "")
    }

    /// A proposal's test replaces the files it changed with symbolic links to a host file holding a secret and to
    /// `/proc/self/environ` (the server's environment), then fails: the fix prompt must name them as symbolic
    /// links and carry neither the secret nor any of the server's environment, and no event may carry them.
    @Test func symlinkedWorkspaceFilesNeverReachThePromptOrAnEvent() throws {
        let secret = "SECRET_TOKEN_\(UInt64.random(in: 0...UInt64.max))"
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        try fake.script([["status": 200, "sse_text": .string(#"{"unfixable": true, "explanation": "no", "changes": []}"#), "chunk_size": 64]])
        var secretPath = ""
        let medic = try MedicHarness { configuration, directory in
            secretPath = directory + "/host-secret.txt"
            try "\(secret)\n".write(toFile: secretPath, atomically: true, encoding: .utf8)
            let repo = try makeRepository(["check.sh": "exit 0\n", "app/calc.py": "def add(a, b):\n    return a + b\n"], in: directory)
            configuration.repositories = [RepositoryConfig(name: "r", path: repo, testCommand: "sh check.sh")]
            configuration.llm = .anthropic
            configuration.llmBaseURL = fake.baseURL
            configuration.anthropicAPIKey = "test-key"
            configuration.maxAttempts = 1
        }
        defer { medic.stop() }
        let attack = """
            ln -sf '\(secretPath)' app/calc.py
            ln -sf /proc/self/environ app/env.py
            echo 'AssertionError: app/calc.py is wrong' >&2
            exit 1

            """
        let (_, watcher) = try proposeAndWatch(
            medic, token: try medic.token("bot", role: "bot"), title: "calc",
            changes: .array([file("check.sh", attack), file("app/calc.py", "def add(a, b):\n    return a - b\n"),
                             file("app/env.py", "ENV = {}\n", action: "create")]))
        let history = try watcher.untilStatus("unfixable")
        // The links were made by the test command inside the sandbox (bwrap where available).
        let isolation = history.first { $0["kind"]?.stringValue == "sandbox_ready" }?["data"]?["isolation"]?.stringValue
        print("[RepositorySecurityTests] the attacking test ran with isolation: \(isolation ?? "?")")

        let requests = try fake.requests()
        #expect(requests.count == 1)
        // The first turn's text blocks (Medic sends content as blocks).
        let turn = requests.first?["body"]?["messages"]?.arrayValue?.first?["content"]
        let prompt = turn?.stringValue ?? (turn?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined()
        #expect(prompt.contains("app/calc.py is a symbolic link (not followed)"), "prompt: \(prompt)")
        #expect(prompt.contains("app/env.py is a symbolic link (not followed)"))
        // The server runs in this process: its environment is this process's initial one.
        let environment = (FileManager.default.contents(atPath: "/proc/self/environ") ?? Data())
            .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.filter { $0.count >= 10 }
        #expect(!environment.isEmpty)
        let leaked = environment.filter { prompt.contains($0) }
        #expect(leaked.isEmpty, "the server's environment reached the prompt: \(leaked.map { $0.prefix(40) })")
        #expect(!prompt.contains(secret), "the host file's secret reached the prompt")
        for event in history {
            let text = event.jsonString
            #expect(!text.contains(secret), "the secret reached an event: \(text.prefix(200))")
            #expect(!environment.contains { text.contains($0) }, "the environment reached an event: \(text.prefix(200))")
        }
    }
}
