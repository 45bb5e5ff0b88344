// BugWorkflowTests: the bug workflow (issue 12) end to end — a whole Medic with a real git repository, real
// bubblewrap sandboxes running a small Python suite, and the model either the fake Anthropic server (answering by
// the request's content) or a scripted conversation file; commands and reads over real WebSocket and REST sockets.
import Foundation
import MedicHost
import Protocol
import TestSupport
import Testing

// MARK: the repository under repair

/// A coupon module with a bug: a code pasted with surrounding whitespace ("  SAVE10\n") gets no discount.
private enum Coupons {
    static let title = "Pasted coupon codes give no discount"
    static let reproducerPath = "tests/test_coupon_bug.py"

    static let module = """
        \"\"\"Coupon codes and their discounts.\"\"\"

        CODES = {"SAVE10": 10, "HALF": 50}


        def normalize(code):
            \"\"\"The canonical form of a code as typed.\"\"\"
            return code.upper()


        def discount_for(code):
            \"\"\"The discount in percent for a code; 0 for an unknown code.\"\"\"
            return CODES.get(normalize(code), 0)

        """

    static let tests = """
        import unittest

        from app.coupons import discount_for


        class CouponTests(unittest.TestCase):
            def test_known_code(self):
                self.assertEqual(discount_for("save10"), 10)

            def test_unknown_code(self):
                self.assertEqual(discount_for("NOPE"), 0)

            def test_inner_space_is_not_a_code(self):
                self.assertEqual(discount_for("SAVE 10"), 0)

        """

    /// The suite: the coupon tests plus one that sleeps, so a run takes about `seconds`.
    static func repository(in directory: String, seconds: Double) throws -> String {
        try makeRepository([
            "app/__init__.py": "",
            "app/coupons.py": module,
            "tests/test_coupons.py": tests,
            "tests/test_slow.py": "import time\nimport unittest\n\n\nclass SlowTests(unittest.TestCase):\n    def test_takes_a_while(self):\n        time.sleep(\(seconds))\n",
        ], in: directory)
    }

    static let testCommand = "python3 -m unittest discover -s tests -v"

    static func repositoryConfig(_ path: String) -> RepositoryConfig {
        RepositoryConfig(name: "shop", path: path, testCommand: testCommand)
    }

    static func module(normalize body: String, imports: String = "") -> String {
        module.replacingOccurrences(of: "    return code.upper()\n", with: body)
            .replacingOccurrences(of: "\"\"\"Coupon codes and their discounts.\"\"\"\n", with: "\"\"\"Coupon codes and their discounts.\"\"\"\n\(imports)")
    }

    static let analysis: JSONValue = [
        "summary": "normalize() upper-cases the code but keeps surrounding whitespace, so a pasted code is not found in CODES.",
        "locations": [["file": "app/coupons.py", "line": 8, "why": "normalize does not strip the code"]],
        "causes": ["whitespace around a pasted code", "codes compared verbatim"],
    ]

    static let reproducer: JSONValue = [
        "path": .string(reproducerPath),
        "content": "import unittest\n\nfrom app.coupons import discount_for\n\n\nclass PastedCodeTests(unittest.TestCase):\n    def test_pasted_code_gets_its_discount(self):\n        self.assertEqual(discount_for(\"  SAVE10\\n\"), 10)\n",
        "explanation": "A code pasted with spaces and a newline around it must get its discount.",
    ]

    /// A "reproducer" that passes on the unchanged repository (it does not show the bug).
    static let passingReproducer: JSONValue = [
        "path": .string(reproducerPath),
        "content": "import unittest\n\nfrom app.coupons import discount_for\n\n\nclass PastedCodeTests(unittest.TestCase):\n    def test_code_gets_its_discount(self):\n        self.assertEqual(discount_for(\"SAVE10\"), 10)\n",
        "explanation": "Checks that SAVE10 gives 10 %.",
    ]

    /// #1: removes every space — the reproducer passes, but "SAVE 10" becomes a valid code (breaks a test).
    static let squeeze = fix([file("app/coupons.py", module(normalize: "    return \"\".join(code.split()).upper()\n"))],
                             explanation: "Remove all whitespace from the code.\nDrops every whitespace character before upper-casing.")
    /// #2: the minimal fix (one line).
    static let strip = fix([file("app/coupons.py", module(normalize: "    return code.strip().upper()\n"))],
                           explanation: "Strip the code before upper-casing it.\nOne line in normalize().")
    /// #3: a bigger change (a new helper module, two files).
    static let helper = fix([
        file("app/text.py", "\"\"\"Text helpers shared by every input path.\"\"\"\n\n\ndef clean(text):\n    \"\"\"Text as typed, without surrounding whitespace.\"\"\"\n    return text.strip()\n", action: "create"),
        file("app/coupons.py", module(normalize: "    return clean(code).upper()\n", imports: "from app.text import clean\n")),
    ], explanation: "A shared clean() helper for every input path.\nAdds app/text.py and uses it in normalize().")
    static let unfixable: JSONValue = [
        "unfixable": true, "explanation": "Removing inner spaces cannot be kept: it makes 'SAVE 10' a valid code.", "changes": .array([]),
    ]
}

// MARK: helpers

/// A scripted conversation file (`ScriptedConversation` format) whose entries match the coupon bug's title.
private func writeBugScript(_ entries: [JSONObject], in directory: String, name: String? = nil) throws -> String {
    let path = (directory as NSString).appendingPathComponent(name ?? "bug-script-\(UInt32.random(in: 0...UInt32.max)).json")
    let replies: [JSONValue] = entries.map { entry in
        var entry = entry
        if entry["match"] == nil { entry["match"] = "coupon" }
        return .object(entry)
    }
    try JSONValue.object(["replies": .array(replies)]).jsonString.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private func entry(_ purpose: String, _ reply: JSONValue, approach: Int? = nil, attempt: Int? = nil, delayMs: Int = 0) -> JSONObject {
    var object: JSONObject = ["purpose": .string(purpose), "reply": reply, "delay_ms": .int(Int64(delayMs))]
    if let approach { object["approach"] = .int(Int64(approach)) }
    if let attempt { object["attempt"] = .int(Int64(attempt)) }
    return object
}

/// One HTTP request on its own connection: (status, parsed JSON body).
private func rest(_ medic: MedicHarness, _ method: String, _ path: String, token: String?, body: String? = nil, headers: [String] = [])
    throws -> (Int, JSONValue?)
{
    let client = try TestClient(port: medic.port, timeoutSeconds: 20)
    var text = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if let token { text += "Authorization: Bearer \(token)\r\n" }
    for header in headers { text += header + "\r\n" }
    text += "Content-Length: \((body ?? "").utf8.count)\r\n\r\n\(body ?? "")"
    try client.write(Array(text.utf8))
    let (head, bytes) = try client.readHTTPResponse()
    return (Int(head.split(separator: " ")[1])!, try? JSONValue.parse(bytes, limits: JSONParseLimits(maxBytes: 16 << 20)))
}

/// Reads until `predicate` holds, at most `seconds` (each read also times out on its own), returning every message.
private func waitFor(_ client: MedicClient, seconds: Double, _ what: String, _ predicate: (JSONValue) -> Bool) throws -> [JSONValue] {
    let deadline = Date().addingTimeInterval(seconds)
    var seen: [JSONValue] = []
    func tail() -> String {
        seen.suffix(8).map { "\($0["kind"]?.stringValue ?? $0["type"]?.stringValue ?? "?") \($0["data"]?.jsonString.prefix(200) ?? "")" }
            .joined(separator: " | ")
    }
    while Date() < deadline {
        let message: JSONValue
        do { message = try client.next() } catch { throw TestClientError("waiting for \(what): \(error); last messages: \(tail())") }
        seen.append(message)
        if predicate(message) { return seen }
    }
    throw TestClientError("no \(what) within \(seconds) s; last messages: \(tail())")
}

private func isEvent(_ kind: String, topic: String? = nil) -> (JSONValue) -> Bool {
    { $0["type"]?.stringValue == "event" && $0["kind"]?.stringValue == kind && (topic == nil || $0["topic"]?.stringValue == topic) }
}

private func events(_ history: [JSONValue], _ kind: String) -> [JSONValue] { history.filter(isEvent(kind)) }

/// Reports a bug over `session` and subscribes it to the bug's topic from the start; returns the bug id.
private func report(_ session: MedicClient, title: String = Coupons.title, approaches: Int = 3, extra: JSONObject = [:]) throws -> String {
    var command: JSONObject = [
        "type": "report_bug", "repo": "shop", "title": .string(title), "severity": "high",
        "description": "Customers paste the code from the newsletter and get no discount.",
        "evidence": ["2026-12-04T10:00:00Z WARN checkout: unknown coupon code='  SAVE10\\n' user=u-17"],
        "approaches": .int(Int64(approaches)),
    ]
    for (key, value) in extra.members { command[key] = value }
    let ack = try session.call(command)
    let bug = try #require(ack["bug"]?.stringValue, "report_bug refused: \(ack.jsonString)")
    #expect(ack["type"]?.stringValue == "ack" && ack["status"]?.stringValue == "analyzing")
    let subscribed = try session.call(["type": "subscribe", "topic": .string("bug:\(bug)"), "since": 0])
    #expect(subscribed["type"]?.stringValue == "ack")
    return bug
}

/// The index of the first event of `kind` in `history` (approach `n` when given).
private func index(_ history: [JSONValue], _ kind: String, approach: Int? = nil) -> Int? {
    history.firstIndex { isEvent(kind)($0) && (approach == nil || $0["data"]?["approach"]?.intValue == Int64(approach!)) }
}

/// Paths of a proposal detail's first revision's changes.
private func revisionPaths(_ detail: JSONValue?) -> [String] {
    (detail?["revisions"]?.arrayValue?.first?["changes"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue }
}

/// A Medic on the coupon repository with the scripted conversation `entries`.
private func scriptedMedic(_ entries: [JSONObject], seconds: Double = 0.3, maxParallel: Int = 3, timeout: Int = 30) throws -> MedicHarness {
    try MedicHarness { configuration, directory in
        configuration.repositories = [Coupons.repositoryConfig(try Coupons.repository(in: directory, seconds: seconds))]
        configuration.llm = .scripted(path: try writeBugScript(entries, in: directory))
        configuration.maxParallelSandboxes = maxParallel
        configuration.testTimeoutSeconds = timeout
    }
}

/// The scripted conversation of the three-approach run: analysis, reproducer, #1 (breaks a test, then unfixable),
/// #2 (minimal), #3 (bigger).
private let threeApproaches: [JSONObject] = [
    entry("bug_analysis", Coupons.analysis),
    entry("bug_reproducer", Coupons.reproducer),
    entry("bug_approach", Coupons.squeeze, approach: 1),
    entry("fix", Coupons.unfixable, approach: 1),
    entry("bug_approach", Coupons.strip, approach: 2),
    entry("bug_approach", Coupons.helper, approach: 3),
]

@Suite("Bug workflow end to end", .serialized)
struct BugWorkflowTests {
    /// 1. Report (bot, WebSocket) → analysis → verified reproducer → three approaches in parallel sandboxes → ranking
    ///    (#1 breaks a test, #2 is the smallest) → proposal by medic:bugs → approved → the bug is fixed.
    @Test func aReportedBugIsFixedEndToEndWithTheAnthropicAPI() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let streamed = { (reply: JSONValue) -> JSONValue in ["status": 200, "sse_text": .string(reply.jsonString), "chunk_size": 400, "chunk_delay_ms": 5] }
        try fake.route([
            ("You are Medic's bug analyst", nil, streamed(Coupons.analysis)),
            ("You are Medic's test writer", nil, streamed(Coupons.reproducer)),
            ("You are Medic's repair engineer", "# Your strategy (approach #1)", streamed(Coupons.squeeze)),
            ("You are Medic's repair engineer", "# Your strategy (approach #2)", streamed(Coupons.strip)),
            ("You are Medic's repair engineer", "# Your strategy (approach #3)", streamed(Coupons.helper)),
            ("automated repair engineer", "Approach #1 — strategy", streamed(Coupons.unfixable)),
        ])
        var repo = ""
        let medic = try MedicHarness { configuration, directory in
            repo = try Coupons.repository(in: directory, seconds: 2)
            configuration.repositories = [Coupons.repositoryConfig(repo)]
            configuration.llm = .anthropic
            configuration.llmBaseURL = fake.baseURL
            configuration.anthropicAPIKey = "test-key"
            configuration.maxParallelSandboxes = 3
        }
        defer { medic.stop() }
        let bot = try medic.session(try medic.token("shop-bot", role: "bot"))
        let adminToken = try medic.token("alice", role: "admin")
        let started = Date()
        let bug = try report(bot)
        let history = try waitFor(bot, seconds: 90, "bug_proposed", isEvent("bug_proposed"))
        let elapsed = Date().timeIntervalSince(started)

        // The steps in order.
        let order = ["bug_reported", "bug_analysis", "reproducer_written", "reproducer_verified"].map { index(history, $0) }
            + (1...3).map { index(history, "approach_started", approach: $0) } + [index(history, "approaches_ranked"), index(history, "bug_proposed")]
        #expect(order.allSatisfy { $0 != nil }, "missing steps: \(order)")
        let found = order.compactMap { $0 }
        #expect(found == found.sorted(), "steps out of order: \(found)")
        #expect(events(history, "approach_started").count == 3)
        let verified = try #require(events(history, "reproducer_verified").first?["data"])
        #expect(verified["fails_on_base"]?.boolValue == true && verified["path"]?.stringValue == Coupons.reproducerPath)
        #expect(verified["output"]?.stringValue?.contains("AssertionError") == true)
        #expect(events(history, "bug_reported").first?["data"]?["author"]?.stringValue == "shop-bot")

        // The ranking: #2 wins (fewer files than #3); #1 failed and names the test it broke.
        let ranked = try #require(events(history, "approaches_ranked").first?["data"])
        #expect(ranked["winner"]?.intValue == 2, "ranking: \(ranked.jsonString.prefix(600))")
        let rows = ranked["approaches"]?.arrayValue ?? []
        try #require(rows.count == 3, "ranking: \(ranked.jsonString.prefix(600))")
        #expect(rows.map { $0["qualified"]?.boolValue } == [false, true, true])
        #expect(rows.first?["reason"]?.stringValue?.isEmpty == false)
        let breaking = (rows.first?["breaking"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(breaking == ["test_coupons.CouponTests.test_inner_space_is_not_a_code"], "breaking: \(breaking)")
        #expect(rows.dropFirst().allSatisfy { ($0["breaking"]?.arrayValue ?? []).isEmpty })
        // Files of the fix against the base (the shared reproducer not counted).
        #expect(rows[1]["files"]?.intValue == 1 && rows[2]["files"]?.intValue == 2, "sizes: \(rows.map { ($0["files"]?.intValue, $0["lines"]?.intValue) })")
        #expect(ranked["why"]?.stringValue?.contains("#2") == true)

        // The approaches ran at the same time: every approach's first run started before any of them finished.
        var runs: [(start: Int64, end: Int64)] = []
        for n in 1...3 {
            let start = history.first { isEvent("test_started")($0) && $0["data"]?["approach"]?.intValue == Int64(n) }?["ts"]?.intValue
            let end = history.first { isEvent("test_finished")($0) && $0["data"]?["approach"]?.intValue == Int64(n) }?["ts"]?.intValue
            if let start, let end { runs.append((start, end)) }
        }
        try #require(runs.count == 3, "test_started/test_finished per approach: \(runs)")
        #expect(runs.allSatisfy { $0.end - $0.start >= 1_900 }, "each run sleeps 2 s: \(runs)")
        #expect(runs.map(\.start).max()! < runs.map(\.end).min()!, "the approaches' runs did not overlap: \(runs)")
        #expect(elapsed < 60)

        // The proposal: made by medic:bugs for this bug, with the winner's change and the reproducer.
        let proposed = try #require(events(history, "bug_proposed").first?["data"])
        #expect(proposed["approach"]?.intValue == 2)
        let proposal = try #require(proposed["proposal"]?.stringValue)
        let (status, detail) = try rest(medic, "GET", "/api/v1/proposals/\(proposal)", token: adminToken)
        #expect(status == 200)
        #expect(detail?["state"]?["info"]?["bug"]?.stringValue == bug)
        #expect(detail?["author"]?.stringValue == "medic:bugs")
        #expect(Set(revisionPaths(detail)) == [Coupons.reproducerPath, "app/coupons.py"], "changes: \(revisionPaths(detail))")
        let (_, summary) = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: adminToken)
        #expect(summary?["status"]?.stringValue == "proposed" && summary?["proposal"]?.stringValue == proposal)
        #expect(summary?["reproduced"]?.boolValue == true && summary?["chosen_approach"]?.intValue == 2)

        // Review: the proposal is tested on its own, approved by an admin, committed; the bug follows it.
        let admin = try medic.session(adminToken)
        #expect(try admin.call(["type": "subscribe", "topic": .string("proposal:\(proposal)"), "since": 0])["type"]?.stringValue == "ack")
        _ = try waitFor(admin, seconds: 30, "awaiting_review") {
            isEvent("status_changed")($0) && $0["data"]?["status"]?.stringValue == "awaiting_review"
        }
        let (_, current) = try rest(medic, "GET", "/api/v1/proposals/\(proposal)", token: adminToken)
        let revision = try #require(current?["revision"]?.intValue)
        let approved = try admin.call(["type": "approve", "proposal": .string(proposal), "revision": .int(revision), "comment": "ship it"])
        #expect(approved["type"]?.stringValue == "ack", "approve: \(approved.jsonString)")
        let fixed = try waitFor(bot, seconds: 30, "bug_fixed", isEvent("bug_fixed"))
        let commit = try #require(events(fixed, "bug_fixed").first?["data"]?["commit"]?.stringValue)
        #expect(events(fixed, "bug_fixed").first?["data"]?["proposal"]?.stringValue == proposal)
        _ = try waitFor(bot, seconds: 10, "status fixed") { isEvent("status_changed")($0) && $0["data"]?["status"]?.stringValue == "fixed" }
        #expect(try git(repo, "rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines) == commit)
        #expect(try git(repo, "show", "--name-only", "--format=", commit).split(separator: "\n").sorted() == ["app/coupons.py", "tests/test_coupon_bug.py"])
        #expect(FileManager.default.contents(atPath: repo + "/app/coupons.py").map { String(decoding: $0, as: UTF8.self) }?.contains("code.strip().upper()") == true)
        #expect(try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: adminToken).1?["status"]?.stringValue == "fixed")
        let metrics = try TestClient(port: medic.port, timeoutSeconds: 10)
        try metrics.write(Array("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        let exposition = String(decoding: try metrics.readHTTPResponse().body, as: UTF8.self).split(separator: "\n").map(String.init)
        for sample in ["medic_bugs_reported 1", "medic_bugs_reproduced 1", "medic_bugs_proposed 1", "medic_bugs_fixed 1", "medic_bugs_unfixed 0"] {
            #expect(exposition.contains(sample), "\(sample) not in /metrics: \(exposition.filter { $0.hasPrefix("medic_bug") })")
        }

        // What the model was asked: one analysis, one reproducer, three approaches, one fix (for #1).
        let systems = try fake.requests().compactMap { $0["body"]?["system"]?.stringValue }
        #expect(systems.filter { $0.hasPrefix("You are Medic's bug analyst") }.count == 1)
        #expect(systems.filter { $0.hasPrefix("You are Medic's test writer") }.count == 1)
        #expect(systems.filter { $0.hasPrefix("You are Medic's repair engineer") }.count == 3)
        #expect(systems.filter { $0.contains("automated repair engineer") }.count == 1)
    }

    /// 2. An admin promotes another qualified approach; bots may not; an unqualified approach, the chosen one and
    ///    an unknown bug are refused.
    @Test func anAdminChoosesAnotherApproach() throws {
        let medic = try scriptedMedic(threeApproaches)
        defer { medic.stop() }
        let botToken = try medic.token("shop-bot", role: "bot")
        let adminToken = try medic.token("alice", role: "admin")
        let admin = try medic.session(adminToken)
        let bug = try report(admin)
        let history = try waitFor(admin, seconds: 60, "bug_proposed", isEvent("bug_proposed"))
        let first = try #require(events(history, "bug_proposed").first?["data"]?["proposal"]?.stringValue)
        #expect(events(history, "bug_proposed").first?["data"]?["approach"]?.intValue == 2)

        // Refusals.
        let bot = try medic.session(botToken)
        let byBot = try bot.call(["type": "choose_approach", "bug": .string(bug), "approach": 3])
        #expect(byBot["type"]?.stringValue == "error" && byBot["code"]?.stringValue == "forbidden", "\(byBot.jsonString)")
        #expect(try rest(medic, "POST", "/api/v1/bugs/\(bug)/choose", token: botToken, body: #"{"approach":3}"#).0 == 403)
        let unqualified = try admin.call(["type": "choose_approach", "bug": .string(bug), "approach": 1])
        #expect(unqualified["code"]?.stringValue == "invalid_state", "\(unqualified.jsonString)")
        #expect(unqualified["message"]?.stringValue?.contains("#1") == true)
        let chosenAlready = try admin.call(["type": "choose_approach", "bug": .string(bug), "approach": 2])
        #expect(chosenAlready["code"]?.stringValue == "invalid_state", "\(chosenAlready.jsonString)")
        let noSuchApproach = try admin.call(["type": "choose_approach", "bug": .string(bug), "approach": 5])
        #expect(noSuchApproach["code"]?.stringValue == "invalid_state", "\(noSuchApproach.jsonString)")
        let unknown = try admin.call(["type": "choose_approach", "bug": "b-zzzzzzzzzz", "approach": 3])
        #expect(unknown["code"]?.stringValue == "not_found", "\(unknown.jsonString)")
        #expect(try rest(medic, "POST", "/api/v1/bugs/b-zzzzzzzzzz/choose", token: adminToken, body: #"{"approach":3}"#).0 == 404)
        // Nothing changed.
        #expect(try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: adminToken).1?["proposal"]?.stringValue == first)

        // The admin picks #3: the first proposal is withdrawn, a new one presents #3.
        var skipped: [JSONValue] = []
        let ack = try admin.call(["type": "choose_approach", "bug": .string(bug), "approach": 3], skipped: &skipped)
        #expect(ack["type"]?.stringValue == "ack" && ack["bug"]?.stringValue == bug && ack["approach"]?.intValue == 3, "\(ack.jsonString)")
        let after = try skipped.contains(where: isEvent("bug_proposed")) ? skipped
            : skipped + waitFor(admin, seconds: 30, "second bug_proposed", isEvent("bug_proposed"))
        #expect(events(after, "approach_chosen").first?["data"]?["replaces"]?.stringValue == first)
        let again = try #require(events(after, "bug_proposed").first?["data"])
        #expect(again["approach"]?.intValue == 3)
        let second = try #require(again["proposal"]?.stringValue)
        #expect(second != first)
        var withdrawn = ""
        for _ in 0..<50 where withdrawn != "withdrawn" {
            withdrawn = try rest(medic, "GET", "/api/v1/proposals/\(first)", token: adminToken).1?["status"]?.stringValue ?? ""
            if withdrawn != "withdrawn" { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(withdrawn == "withdrawn")
        let (_, detail) = try rest(medic, "GET", "/api/v1/proposals/\(second)", token: adminToken)
        #expect(detail?["state"]?["info"]?["bug"]?.stringValue == bug && detail?["author"]?.stringValue == "medic:bugs")
        #expect(Set(revisionPaths(detail)) == [Coupons.reproducerPath, "app/coupons.py", "app/text.py"])
        let (_, summary) = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: adminToken)
        #expect(summary?["status"]?.stringValue == "proposed")
        #expect(summary?["proposal"]?.stringValue == second && summary?["chosen_approach"]?.intValue == 3)
        #expect(summary?["proposals"]?.arrayValue?.compactMap(\.stringValue) == [first, second])
        // #2 can be chosen back (REST), making a third proposal.
        let (status, back) = try rest(medic, "POST", "/api/v1/bugs/\(bug)/choose", token: adminToken, body: #"{"approach":2}"#)
        #expect(status == 200 && back?["approach"]?.intValue == 2, "\(back?.jsonString ?? "")")
        let third = try waitFor(admin, seconds: 30, "third bug_proposed") { isEvent("bug_proposed")($0) && $0["data"]?["approach"]?.intValue == 2 }
        #expect(events(third, "bug_proposed").last?["data"]?["proposal"]?.stringValue.map { $0 != first && $0 != second } == true)
    }

    /// choose_approach while the current proposal is being applied: it cannot be withdrawn any more, so the choice is
    /// refused — the bug follows the applied proposal to `fixed` and no second proposal is made.
    @Test func anApproachCannotBeChosenWhileTheProposalIsBeingApplied() throws {
        var repo = ""
        let medic = try MedicHarness { configuration, directory in
            repo = try Coupons.repository(in: directory, seconds: 1.5)
            configuration.repositories = [Coupons.repositoryConfig(repo)]
            configuration.llm = .scripted(path: try writeBugScript(threeApproaches, in: directory))
            configuration.maxParallelSandboxes = 3
        }
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let bug = try report(admin)
        let history = try waitFor(admin, seconds: 60, "bug_proposed", isEvent("bug_proposed"))
        let proposal = try #require(events(history, "bug_proposed").first?["data"]?["proposal"]?.stringValue)
        let watcher = try medic.session(token)
        #expect(try watcher.call(["type": "subscribe", "topic": .string("proposal:\(proposal)"), "since": 0])["type"]?.stringValue == "ack")
        _ = try waitFor(watcher, seconds: 30, "awaiting_review") { isEvent("status_changed")($0) && $0["data"]?["status"]?.stringValue == "awaiting_review" }
        // The repository moves on, so applying re-runs the suite (1.5 s) before committing.
        try "notes\n".write(toFile: repo + "/NOTES.md", atomically: true, encoding: .utf8)
        _ = try git(repo, "add", "NOTES.md")
        _ = try git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "unrelated")
        let revision = try #require(try rest(medic, "GET", "/api/v1/proposals/\(proposal)", token: token).1?["revision"]?.intValue)
        #expect(try watcher.call(["type": "approve", "proposal": .string(proposal), "revision": .int(revision)])["type"]?.stringValue == "ack")
        _ = try waitFor(watcher, seconds: 10, "the pre-apply run") { isEvent("test_started")($0) && $0["data"]?["phase"]?.stringValue == "pre_apply" }
        #expect(try rest(medic, "GET", "/api/v1/proposals/\(proposal)", token: token).1?["status"]?.stringValue == "applying")
        let chosen = try admin.call(["type": "choose_approach", "bug": .string(bug), "approach": 3])
        #expect(chosen["code"]?.stringValue == "invalid_state", "choose_approach while applying: \(chosen.jsonString)")
        let applied = try waitFor(watcher, seconds: 30, "applied or apply_failed") {
            isEvent("status_changed")($0) && ["applied", "apply_failed"].contains($0["data"]?["status"]?.stringValue ?? "")
        }
        #expect(applied.last?["data"]?["status"]?.stringValue == "applied")
        var final: JSONValue?
        for _ in 0..<50 {
            final = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token).1
            if final?["status"]?.stringValue == "fixed" { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(final?["status"]?.stringValue == "fixed" && final?["proposal"]?.stringValue == proposal, "\(final?.jsonString.prefix(400) ?? "")")
        #expect(final?["proposals"]?.arrayValue?.count == 1)
    }

    /// 3. A restart while the approaches run leaves the bug interrupted; an admin resumes it to a proposal.
    @Test func aRestartInterruptsTheBugAndAnAdminResumesIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-bug-restart-\(UInt32.random(in: 0...UInt32.max))").path
        let configure: (inout MedicConfiguration, String) throws -> Void = { configuration, directory in
            let repo = directory + "/repo"
            if !FileManager.default.fileExists(atPath: repo) { _ = try Coupons.repository(in: directory, seconds: 1.5) }
            configuration.repositories = [Coupons.repositoryConfig(repo)]
            configuration.maxParallelSandboxes = 2
            // #2's answer is slow: when #1's tests start, #2 is still being asked.
            configuration.llm = .scripted(path: try writeBugScript([
                entry("bug_analysis", Coupons.analysis),
                entry("bug_reproducer", Coupons.reproducer),
                entry("bug_approach", Coupons.strip, approach: 1),
                entry("bug_approach", Coupons.helper, approach: 2, delayMs: 2_500),
            ], in: directory, name: "restart-script.json"))
        }
        let first = try MedicHarness(directory: directory, configure: configure)
        let adminToken = try first.token("alice", role: "admin")
        let botToken = try first.token("shop-bot", role: "bot")
        let bug: String
        do {
            defer { first.stop() }
            let admin = try first.session(adminToken)
            bug = try report(admin, approaches: 2)
            _ = try waitFor(admin, seconds: 60, "approach #1's test run") {
                isEvent("test_started")($0) && $0["data"]?["approach"]?.intValue == 1
            }
            let (_, busy) = try rest(first, "GET", "/api/v1/bugs/\(bug)", token: adminToken)
            #expect(busy?["status"]?.stringValue == "fixing")
        }

        let second = try MedicHarness(directory: directory, configure: configure)
        var secondRunning = true
        defer { if secondRunning { second.stop() } }
        let admin = try second.session(adminToken)
        #expect(try admin.call(["type": "subscribe", "topic": .string("bug:\(bug)"), "since": 0])["type"]?.stringValue == "ack")
        let interrupted = try waitFor(admin, seconds: 20, "interrupted") {
            isEvent("status_changed")($0) && $0["data"]?["status"]?.stringValue == "interrupted"
        }
        #expect(interrupted.last?["data"]?["reason"]?.stringValue?.contains("restarted") == true)
        #expect(events(interrupted, "bug_proposed").isEmpty)
        var status = ""
        for _ in 0..<50 where status != "interrupted" {
            status = try rest(second, "GET", "/api/v1/bugs/\(bug)", token: adminToken).1?["status"]?.stringValue ?? ""
            if status != "interrupted" { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(status == "interrupted")
        let listed = try rest(second, "GET", "/api/v1/bugs?status=interrupted", token: adminToken).1?["bugs"]?.arrayValue ?? []
        #expect(listed.compactMap { $0["id"]?.stringValue } == [bug])

        // Only admins resume; then the bug continues where it stopped.
        let bot = try second.session(botToken)
        let byBot = try bot.call(["type": "resume_bug", "bug": .string(bug)])
        #expect(byBot["code"]?.stringValue == "forbidden", "\(byBot.jsonString)")
        #expect(try rest(second, "POST", "/api/v1/bugs/\(bug)/resume", token: botToken).0 == 403)
        #expect(try admin.call(["type": "resume_bug", "bug": "b-zzzzzzzzzz"])["code"]?.stringValue == "not_found")
        var skipped: [JSONValue] = []
        let resumed = try admin.call(["type": "resume_bug", "bug": .string(bug)], skipped: &skipped)
        #expect(resumed["type"]?.stringValue == "ack" && resumed["status"]?.stringValue == "fixing", "\(resumed.jsonString)")
        let rest_ = try waitFor(admin, seconds: 60, "bug_proposed after resume", isEvent("bug_proposed"))
        let afterResume = skipped + rest_
        #expect(afterResume.contains { isEvent("status_changed")($0) && $0["data"]?["reason"]?.stringValue?.contains("resumed by alice") == true })
        // #1 ran again, #2 was asked again and ran.
        #expect(afterResume.contains { isEvent("test_finished")($0) && $0["data"]?["approach"]?.intValue == 1 })
        #expect(afterResume.contains { isEvent("approach_started")($0) && $0["data"]?["approach"]?.intValue == 2 })
        let ranked = try #require(events(afterResume, "approaches_ranked").first?["data"])
        #expect(ranked["winner"]?.intValue == 1 && ranked["approaches"]?.arrayValue?.allSatisfy { $0["qualified"]?.boolValue == true } == true,
                "\(ranked.jsonString.prefix(500))")
        #expect(try rest(second, "GET", "/api/v1/bugs/\(bug)", token: adminToken).1?["status"]?.stringValue == "proposed")
        // Not interrupted any more: nothing to resume.
        let again = try admin.call(["type": "resume_bug", "bug": .string(bug)])
        #expect(again["code"]?.stringValue == "invalid_state", "\(again.jsonString)")
        #expect(try rest(second, "POST", "/api/v1/bugs/\(bug)/resume", token: adminToken).0 == 409)

        // Another restart while the bug is proposed (not busy: it stays proposed); approving its proposal then
        // loads the bug and fixes it.
        let proposal = try #require(events(afterResume, "bug_proposed").first?["data"]?["proposal"]?.stringValue)
        #expect(try admin.call(["type": "subscribe", "topic": .string("proposal:\(proposal)"), "since": 0])["type"]?.stringValue == "ack")
        _ = try waitFor(admin, seconds: 30, "awaiting_review") { isEvent("status_changed", topic: "proposal:\(proposal)")($0) && $0["data"]?["status"]?.stringValue == "awaiting_review" }
        second.stop()
        secondRunning = false
        let third = try MedicHarness(directory: directory, configure: configure)
        defer { third.stop() }
        #expect(try rest(third, "GET", "/api/v1/bugs/\(bug)", token: adminToken).1?["status"]?.stringValue == "proposed")
        let reviewer = try third.session(adminToken)
        #expect(try reviewer.call(["type": "subscribe", "topic": .string("bug:\(bug)"), "since": 0])["type"]?.stringValue == "ack")
        let revision = try #require(try rest(third, "GET", "/api/v1/proposals/\(proposal)", token: adminToken).1?["revision"]?.intValue)
        var replayed: [JSONValue] = []
        let approved = try reviewer.call(["type": "approve", "proposal": .string(proposal), "revision": .int(revision)], skipped: &replayed)
        #expect(approved["type"]?.stringValue == "ack", "\(approved.jsonString)")
        let fixed = replayed + (try waitFor(reviewer, seconds: 30, "bug_fixed", isEvent("bug_fixed")))
        #expect(events(fixed, "bug_fixed").first?["data"]?["proposal"]?.stringValue == proposal)
        #expect(events(fixed, "status_changed").last?["data"]?["status"]?.stringValue != "interrupted")
        var final = ""
        for _ in 0..<50 where final != "fixed" {
            final = try rest(third, "GET", "/api/v1/bugs/\(bug)", token: adminToken).1?["status"]?.stringValue ?? ""
            if final != "fixed" { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(final == "fixed")
    }

    /// A restart while the reproducer runs on the base: resumed, the reproducer is asked for and verified again.
    @Test func aBugInterruptedWhileReproducingIsResumedFromTheReproducer() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("medic-bug-restart-\(UInt32.random(in: 0...UInt32.max))").path
        let configure: (inout MedicConfiguration, String) throws -> Void = { configuration, directory in
            let repo = directory + "/repo"
            if !FileManager.default.fileExists(atPath: repo) { _ = try Coupons.repository(in: directory, seconds: 1.5) }
            configuration.repositories = [Coupons.repositoryConfig(repo)]
            configuration.llm = .scripted(path: try writeBugScript([
                entry("bug_analysis", Coupons.analysis),
                entry("bug_reproducer", Coupons.reproducer),
                entry("bug_approach", Coupons.strip, approach: 1),
            ], in: directory, name: "restart-script.json"))
        }
        let first = try MedicHarness(directory: directory, configure: configure)
        let token = try first.token("alice", role: "admin")
        let bug: String
        do {
            defer { first.stop() }
            let admin = try first.session(token)
            bug = try report(admin, approaches: 1)
            _ = try waitFor(admin, seconds: 30, "the base run") { isEvent("test_started")($0) && $0["data"]?["phase"]?.stringValue == "base" }
        }
        let second = try MedicHarness(directory: directory, configure: configure)
        defer { second.stop() }
        let admin = try second.session(token)
        #expect(try admin.call(["type": "subscribe", "topic": .string("bug:\(bug)"), "since": 0])["type"]?.stringValue == "ack")
        let before = try waitFor(admin, seconds: 20, "interrupted") { isEvent("status_changed")($0) && $0["data"]?["status"]?.stringValue == "interrupted" }
        #expect(events(before, "reproducer_verified").isEmpty)
        var skipped: [JSONValue] = []
        let resumed = try admin.call(["type": "resume_bug", "bug": .string(bug)], skipped: &skipped)
        #expect(resumed["type"]?.stringValue == "ack" && resumed["status"]?.stringValue == "reproducing", "\(resumed.jsonString)")
        let after = skipped + (try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) })
        #expect(events(after, "reproducer_written").compactMap { $0["data"]?["attempt"]?.intValue } == [1])
        #expect(events(after, "reproducer_verified").count == 1)
        #expect(events(after, "bug_proposed").first?["data"]?["approach"]?.intValue == 1)
        let (_, detail) = try rest(second, "GET", "/api/v1/bugs/\(bug)", token: token)
        #expect(detail?["status"]?.stringValue == "proposed" && detail?["reproduced"] == .bool(true))
    }

    /// 4. Malformed reports are refused with a clear message over both transports and store nothing; viewers may not
    ///    report; a repeated Idempotency-Key makes one bug.
    @Test func badReportsAreRefusedAndStoreNothing() throws {
        let medic = try scriptedMedic([])
        defer { medic.stop() }
        let botToken = try medic.token("shop-bot", role: "bot")
        let viewerToken = try medic.token("vera", role: "viewer")
        let bot = try medic.session(botToken)
        let valid: JSONObject = ["repo": "shop", "title": "t", "description": "d"]
        let kib = 1024
        let cases: [(String, JSONObject, String)] = [
            ("unknown repo", ["repo": "nope"], "unknown repository 'nope'; configured: shop"),
            ("repo not a string", ["repo": 7], "'repo' must be a string"),
            ("empty title", ["title": ""], "'title' must not be empty"),
            ("whitespace title", ["title": "  \n\t "], "'title' must not be empty"),
            ("long title", ["title": .string(String(repeating: "x", count: 201))], "longer than 200 characters"),
            ("long description", ["description": .string(String(repeating: "d", count: 20_001))], "longer than 20000 characters"),
            ("big evidence item", ["evidence": [.string(String(repeating: "e", count: 64 * kib + 1))]], "evidence[0] is larger than 64 KiB"),
            ("big evidence total", ["evidence": .array((0..<5).map { _ in .string(String(repeating: "e", count: 60 * kib)) })], "larger than 256 KiB in total"),
            ("too many items", ["evidence": .array((0..<21).map { .string("line \($0)") })], "21 items; at most 20"),
            ("evidence not strings", ["evidence": [1, 2]], "evidence[0] must be a string"),
            ("evidence not an array", ["evidence": "a log line"], "'evidence' must be an array of strings"),
            ("zero approaches", ["approaches": 0], "'approaches' must be an integer 1…5"),
            ("six approaches", ["approaches": 6], "'approaches' must be an integer 1…5"),
            ("fractional approaches", ["approaches": 2.5], "'approaches' must be an integer 1…5"),
            ("urgent", ["severity": "urgent"], "'severity' must be one of low, medium, high, critical"),
            ("zero perf runs", ["perf_runs": 0], "'perf_runs' must be an integer 1…5"),
            ("six perf runs", ["perf_runs": 6], "'perf_runs' must be an integer 1…5"),
        ]
        for (name, change, message) in cases {
            var fields = valid
            for (key, value) in change.members { fields[key] = value }
            var command = fields
            command["type"] = "report_bug"
            let error = try bot.call(command)
            #expect(error["type"]?.stringValue == "error" && error["code"]?.stringValue == "invalid_message", "\(name) (ws): \(error.jsonString.prefix(300))")
            #expect(error["message"]?.stringValue?.contains(message) == true, "\(name) (ws): \(error["message"]?.stringValue ?? "")")
            let (status, body) = try rest(medic, "POST", "/api/v1/bugs", token: botToken, body: JSONValue.object(fields).jsonString,
                                          headers: ["Idempotency-Key: bad-\(name.replacingOccurrences(of: " ", with: "-"))"])
            #expect(status == 400 && body?["error"]?["code"]?.stringValue == "invalid_message", "\(name) (rest): \(status) \(body?.jsonString.prefix(300) ?? "")")
            #expect(body?["error"]?["message"]?.stringValue?.contains(message) == true, "\(name) (rest): \(body?.jsonString.prefix(300) ?? "")")
        }
        #expect(try rest(medic, "POST", "/api/v1/bugs", token: botToken, body: "{not json").0 == 400)
        // Viewers may not report.
        let viewer = try medic.session(viewerToken)
        var command = valid
        command["type"] = "report_bug"
        #expect(try viewer.call(command)["code"]?.stringValue == "forbidden")
        #expect(try rest(medic, "POST", "/api/v1/bugs", token: viewerToken, body: JSONValue.object(valid).jsonString).0 == 403)
        #expect(try rest(medic, "POST", "/api/v1/bugs", token: nil, body: JSONValue.object(valid).jsonString).0 == 401)
        // Nothing was stored.
        let (listed, list) = try rest(medic, "GET", "/api/v1/bugs", token: viewerToken)
        #expect(listed == 200 && list?["bugs"]?.arrayValue?.isEmpty == true, "\(list?.jsonString.prefix(300) ?? "")")
        #expect(try rest(medic, "GET", "/api/v1/bugs/b-zzzzzzzzzz", token: viewerToken).0 == 404)

        // At the limits it is accepted — twice with one Idempotency-Key: one bug.
        var limits = valid
        limits["title"] = .string(String(repeating: "t", count: 200))
        limits["evidence"] = .array((0..<4).map { _ in .string(String(repeating: "e", count: 64 * kib)) } + (0..<16).map { _ in "" })
        limits["severity"] = "critical"
        limits["approaches"] = 5
        let body = JSONValue.object(limits).jsonString
        let (created, ack) = try rest(medic, "POST", "/api/v1/bugs", token: botToken, body: body, headers: ["Idempotency-Key: report-once"])
        #expect(created == 201, "\(ack?.jsonString.prefix(300) ?? "")")
        let id = try #require(ack?["bug"]?.stringValue)
        #expect(ack?["status"]?.stringValue == "analyzing")
        let (repeated, again) = try rest(medic, "POST", "/api/v1/bugs", token: botToken, body: body, headers: ["Idempotency-Key: report-once"])
        #expect((200...201).contains(repeated) && again?["bug"]?.stringValue == id, "\(repeated) \(again?.jsonString.prefix(300) ?? "")")
        // The same key on two connections at once: both answers name one bug.
        let small = JSONValue.object(valid).jsonString
        let request = "POST /api/v1/bugs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(botToken)\r\n"
            + "Idempotency-Key: report-race\r\nContent-Length: \(small.utf8.count)\r\n\r\n\(small)"
        let racers = try (0..<2).map { _ in try TestClient(port: medic.port, timeoutSeconds: 20) }
        for client in racers { try client.write(Array(request.utf8)) }
        let raced = try racers.map { try JSONValue.parse($0.readHTTPResponse().body)["bug"]?.stringValue }
        #expect(raced[0] != nil && raced[0] == raced[1], "\(raced)")
        let bugs = try rest(medic, "GET", "/api/v1/bugs", token: viewerToken).1?["bugs"]?.arrayValue ?? []
        #expect(Set(bugs.compactMap { $0["id"]?.stringValue }) == Set([id, raced[0] ?? ""]) && bugs.count == 2, "\(bugs.map { $0["id"] })")
        let (_, detail) = try rest(medic, "GET", "/api/v1/bugs/\(id)", token: viewerToken)
        #expect(detail?["severity"]?.stringValue == "critical" && detail?["approaches"]?.intValue == 5 && detail?["author"]?.stringValue == "shop-bot")
        #expect(detail?["report"]?["evidence"]?.arrayValue?.count == 20)
    }

    /// 5. A reproducer that passes on the unchanged repository is refused, asked once more, refused again; the bug
    ///    goes on "not reproduced".
    @Test func aReproducerThatPassesOnTheBaseIsRejectedAndTheBugGoesOnNotReproduced() throws {
        let medic = try scriptedMedic([
            entry("bug_analysis", Coupons.analysis),
            entry("bug_reproducer", Coupons.passingReproducer, attempt: 1),
            entry("bug_reproducer", Coupons.passingReproducer, attempt: 2),
            entry("bug_approach", Coupons.strip, approach: 1),
        ])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let bug = try report(admin, approaches: 1)
        let history = try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }
        #expect(events(history, "bug_proposed").count == 1, "\(kinds(history.filter { $0["type"]?.stringValue == "event" }))")
        #expect(events(history, "reproducer_written").compactMap { $0["data"]?["attempt"]?.intValue } == [1, 2])
        let rejected = events(history, "reproducer_rejected")
        #expect(rejected.compactMap { $0["data"]?["attempt"]?.intValue } == [1, 2])
        #expect(rejected.allSatisfy { $0["data"]?["reason"]?.stringValue?.contains("passes on the unchanged repository") == true })
        #expect(events(history, "reproducer_verified").isEmpty)
        #expect(index(history, "reproducer_rejected")! < index(history, "approach_started")!)
        // One base run per attempt.
        #expect(events(history, "test_started").filter { $0["data"]?["phase"]?.stringValue == "base" }.count == 2)

        let summary = try #require(try rest(medic, "GET", "/api/v1/bugs", token: token).1?["bugs"]?.arrayValue?.first)
        #expect(summary["id"]?.stringValue == bug && summary["reproduced"] == .bool(false), "\(summary.jsonString)")
        let (_, detail) = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token)
        #expect(detail?["reproduced"] == .bool(false) && detail?["reproducer"] == .null)
        #expect(detail?["reproducer_reason"]?.stringValue?.contains("passes") == true)
        #expect(detail?["status"]?.stringValue == "proposed")
        // Nothing reproduces it, so the proposal carries only the fix.
        let proposal = try #require(detail?["proposal"]?.stringValue)
        let (_, proposalDetail) = try rest(medic, "GET", "/api/v1/proposals/\(proposal)", token: token)
        #expect(revisionPaths(proposalDetail) == ["app/coupons.py"])
        #expect(proposalDetail?["description"]?.stringValue?.contains("Not reproduced") == true)
    }

    /// 6. The same change three times: #2 and #3 are duplicates of #1 and never run.
    @Test func duplicateApproachesAreNotRun() throws {
        let medic = try scriptedMedic([
            entry("bug_analysis", Coupons.analysis),
            entry("bug_reproducer", Coupons.reproducer),
            entry("bug_approach", Coupons.strip),  // every approach number
        ])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let bug = try report(admin, approaches: 3)
        let history = try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }
        #expect(events(history, "approach_started").compactMap { $0["data"]?["approach"]?.intValue } == [1])
        let duplicates = events(history, "approach_duplicate")
        #expect(duplicates.compactMap { $0["data"]?["approach"]?.intValue } == [2, 3])
        #expect(duplicates.allSatisfy { $0["data"]?["duplicate_of"]?.intValue == 1 })
        let runs = Set(events(history, "test_started").compactMap { $0["data"]?["approach"]?.intValue })
        #expect(runs == [1])
        #expect(events(history, "bug_proposed").first?["data"]?["approach"]?.intValue == 1)
        let ranked = try #require(events(history, "approaches_ranked").first?["data"])
        #expect(ranked["approaches"]?.arrayValue?.compactMap { $0["status"]?.stringValue } == ["qualified", "duplicate", "duplicate"])
        let details = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token).1?["approach_details"]?.arrayValue ?? []
        #expect(details.compactMap { $0["duplicate_of"]?.intValue } == [1, 1])
        // The stored events over REST are the ones the WebSocket delivered (ephemeral fix_delta aside).
        let stored = history.filter { $0["type"]?.stringValue == "event" && $0["topic"]?.stringValue == "bug:\(bug)" && $0["seq"]?.intValue != nil }
        let (status, page) = try rest(medic, "GET", "/api/v1/bugs/\(bug)/events?since=0", token: token)
        let served = page?["events"]?.arrayValue ?? []
        #expect(status == 200 && served.count >= stored.count, "\(status) \(served.count) vs \(stored.count)")
        #expect(Array(served.prefix(stored.count)).map { "\($0["seq"]?.intValue ?? -1) \($0["kind"]?.stringValue ?? "")" }
                == stored.map { "\($0["seq"]?.intValue ?? -1) \($0["kind"]?.stringValue ?? "")" })
        #expect(served.map { $0["seq"]?.intValue ?? -1 } == Array(1...Int64(served.count)))
        let (_, later) = try rest(medic, "GET", "/api/v1/bugs/\(bug)/events?since=3", token: token)
        #expect(later?["events"]?.arrayValue?.first?["seq"]?.intValue == 4)
        // Its sandboxes are gone once it is proposed.
        let sandboxes = medic.directory + "/data/sandboxes/\(bug)"
        for _ in 0..<50 where FileManager.default.fileExists(atPath: sandboxes) { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!FileManager.default.fileExists(atPath: sandboxes), "\((try? FileManager.default.contentsOfDirectory(atPath: sandboxes)) ?? [])")
    }

    /// 7. An approach whose tests flood output and then hang is killed at the test timeout and fails; the output is
    ///    cut, the server keeps answering, and the other approach qualifies.
    @Test func aHangingFloodingApproachIsKilledAndAnotherQualifies() throws {
        let flood = fix([file("app/coupons.py", Coupons.module(
            normalize: "    return code.strip().upper()\n",
            imports: "import sys\nimport time\n\nfor i in range(200000):\n    print('flood', i, 'x' * 40)\nsys.stdout.flush()\ntime.sleep(300)\n"))],
            explanation: "Strip the code (and, by mistake, print a lot and hang at import).\nBroken on purpose.")
        let medic = try scriptedMedic([
            entry("bug_analysis", Coupons.analysis),
            entry("bug_reproducer", Coupons.reproducer),
            entry("bug_approach", flood, approach: 1),
            entry("fix", Coupons.unfixable, approach: 1),
            entry("bug_approach", Coupons.strip, approach: 2),
        ], seconds: 0.2, maxParallel: 2, timeout: 4)
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let started = Date()
        let bug = try report(admin, approaches: 2)
        var history = try waitFor(admin, seconds: 60, "approach #1's test run") { isEvent("test_started")($0) && $0["data"]?["approach"]?.intValue == 1 }
        // While #1 floods, the server answers at once (REST, and a command on the flooded session).
        let asked = Date()
        let (status, busy) = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token)
        #expect(status == 200 && busy?["status"]?.stringValue == "fixing")
        var skipped: [JSONValue] = []
        #expect(try admin.call(["type": "subscribe", "topic": "bugs", "since": 0], skipped: &skipped)["type"]?.stringValue == "ack")
        #expect(Date().timeIntervalSince(asked) < 5, "answered after \(Date().timeIntervalSince(asked)) s")
        history += skipped
        if !history.contains(where: { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }) {
            history += try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }
        }
        let finished = try #require(history.first { isEvent("test_finished")($0) && $0["data"]?["approach"]?.intValue == 1 }?["data"])
        #expect(finished["timed_out"]?.boolValue == true, "\(finished.jsonString)")
        #expect(finished["truncated"]?.boolValue == true, "\(finished.jsonString)")
        let duration = finished["duration_ms"]?.intValue ?? 0
        #expect(duration >= 3_900 && duration < 15_000, "killed after \(duration) ms (timeout 4 s)")
        let lines = history.filter { isEvent("test_output")($0) && $0["data"]?["approach"]?.intValue == 1 }
            .flatMap { $0["data"]?["lines"]?.arrayValue ?? [] }
        #expect(lines.count < 200_000, "\(lines.count) output lines delivered")
        #expect(lines.reduce(0) { $0 + ($1.stringValue?.utf8.count ?? 0) } <= 1 << 20 + 4_096)
        #expect(lines.last?.stringValue?.contains("truncated") == true, "\(lines.last?.stringValue ?? "")")

        let ranked = try #require(events(history, "approaches_ranked").first?["data"])
        let rows = ranked["approaches"]?.arrayValue ?? []
        #expect(rows.map { $0["qualified"]?.boolValue } == [false, true], "\(ranked.jsonString.prefix(500))")
        #expect(rows.first?["status"]?.stringValue == "failed")
        #expect(ranked["winner"]?.intValue == 2)
        #expect(events(history, "bug_proposed").first?["data"]?["approach"]?.intValue == 2)
        #expect(Date().timeIntervalSince(started) < 60)
        // The `bugs` collection carried the summary at every status change.
        if !history.contains(where: { isEvent("bug", topic: "bugs")($0) && $0["data"]?["status"]?.stringValue == "proposed" }) {
            history += try waitFor(admin, seconds: 10, "bugs: proposed") { isEvent("bug", topic: "bugs")($0) && $0["data"]?["status"]?.stringValue == "proposed" }
        }
        let statuses = history.filter(isEvent("bug", topic: "bugs")).filter { $0["data"]?["id"]?.stringValue == bug }.compactMap { $0["data"]?["status"]?.stringValue }
        #expect(statuses == ["analyzing", "reproducing", "fixing", "proposed"], "\(statuses)")
    }

    /// A reproducer must be a new file: one that would overwrite an existing test (here the coupon tests, replaced by
    /// a failing one) cannot be written, so the base run never runs — that is a refusal (re-asked), never a
    /// verified reproducer.
    @Test func aReproducerOverwritingAnExistingFileIsRefused() throws {
        guard case .object(var clobber) = Coupons.reproducer else { return }
        clobber["path"] = "tests/test_coupons.py"
        let medic = try scriptedMedic([
            entry("bug_analysis", Coupons.analysis),
            entry("bug_reproducer", .object(clobber), attempt: 1),
            entry("bug_reproducer", Coupons.reproducer, attempt: 2),
            entry("bug_approach", Coupons.strip, approach: 1),
        ])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let bug = try report(admin, approaches: 1)
        let history = try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }
        let rejected = events(history, "reproducer_rejected")
        #expect(rejected.compactMap { $0["data"]?["path"]?.stringValue } == ["tests/test_coupons.py"], "\(rejected.map { $0["data"]?.jsonString ?? "" })")
        let verified = events(history, "reproducer_verified")
        #expect(verified.compactMap { $0["data"]?["path"]?.stringValue } == [Coupons.reproducerPath], "\(verified.map { $0["data"]?.jsonString.prefix(300) ?? "" })")
        #expect(events(history, "bug_proposed").count == 1)
        let (_, detail) = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token)
        #expect(detail?["reproduced"] == .bool(true) && detail?["reproducer"]?["path"]?.stringValue == Coupons.reproducerPath)
        let proposal = try #require(detail?["proposal"]?.stringValue)
        let paths = revisionPaths(try rest(medic, "GET", "/api/v1/proposals/\(proposal)", token: token).1)
        #expect(Set(paths) == ["app/coupons.py", Coupons.reproducerPath], "\(paths)")
    }

    /// An approach qualifies only with the verified reproducer passing: a repair-loop fix that rewrites the reproducer
    /// into a test that passes anyway (and undoes the fix) does not qualify, and no proposal carries it.
    @Test func aFixThatWeakensTheReproducerDoesNotQualify() throws {
        let weakened = fix([
            file("app/coupons.py", Coupons.module),
            file(Coupons.reproducerPath, "import unittest\n\n\nclass PastedCodeTests(unittest.TestCase):\n    def test_pasted_code_gets_its_discount(self):\n        pass\n"),
        ], explanation: "Revert normalize() and relax the new test.")
        let medic = try scriptedMedic([
            entry("bug_analysis", Coupons.analysis),
            entry("bug_reproducer", Coupons.reproducer),
            entry("bug_approach", Coupons.squeeze, approach: 1),
            entry("fix", weakened, approach: 1),
        ])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let bug = try report(admin, approaches: 1)
        let history = try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }
        // The weakened revision's suite passes…
        #expect(events(history, "fix_generated").count == 1)
        #expect(history.filter { isEvent("test_finished")($0) && $0["data"]?["approach"]?.intValue == 1 }.last?["data"]?["exit_code"]?.intValue == 0)
        // …but it does not reproduce the bug any more: not qualified, nothing proposed.
        #expect(events(history, "bug_proposed").isEmpty, "proposed: \(events(history, "bug_proposed").first?["data"]?.jsonString ?? "")")
        let ranked = try #require(events(history, "approaches_ranked").first?["data"])
        let row = ranked["approaches"]?.arrayValue?.first
        #expect(row?["qualified"]?.boolValue == false && ranked["winner"] == .null, "\(ranked.jsonString.prefix(600))")
        #expect(row?["reason"]?.stringValue?.contains(Coupons.reproducerPath) == true, "\(row?["reason"]?.stringValue ?? "")")
        #expect(try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token).1?["status"]?.stringValue == "unfixed")
    }

    /// No approach qualifies: the bug ends unfixed with each approach's reason, and its sandboxes are removed.
    @Test func whenNoApproachQualifiesTheBugIsUnfixed() throws {
        let medic = try scriptedMedic([
            entry("bug_analysis", Coupons.analysis),
            entry("bug_reproducer", Coupons.reproducer),
            entry("bug_approach", Coupons.squeeze, approach: 1),
            entry("fix", Coupons.unfixable, approach: 1),
            entry("bug_approach", ["unfixable": true, "explanation": "Needs a product decision on codes with spaces."], approach: 2),
        ])
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let admin = try medic.session(token)
        let bug = try report(admin, approaches: 2)
        let history = try waitFor(admin, seconds: 60, "bug_proposed or bug_unfixed") { isEvent("bug_proposed")($0) || isEvent("bug_unfixed")($0) }
        let unfixed = try #require(events(history, "bug_unfixed").first?["data"])
        let reasons = unfixed["reasons"]?.arrayValue ?? []
        #expect(reasons.compactMap { $0["approach"]?.intValue } == [1, 2])
        #expect(reasons.allSatisfy { ($0["reason"]?.stringValue ?? "").isEmpty == false })
        #expect(reasons.last?["reason"]?.stringValue?.contains("product decision") == true, "\(reasons)")
        #expect(events(history, "approaches_ranked").first?["data"]?["winner"] == .null)
        _ = try waitFor(admin, seconds: 10, "status unfixed") { isEvent("status_changed")($0) && $0["data"]?["status"]?.stringValue == "unfixed" }
        let (_, detail) = try rest(medic, "GET", "/api/v1/bugs/\(bug)", token: token)
        #expect(detail?["status"]?.stringValue == "unfixed" && detail?["proposal"] == .null && detail?["reproduced"] == .bool(true))
        let chosen = try admin.call(["type": "choose_approach", "bug": .string(bug), "approach": 1])
        #expect(chosen["code"]?.stringValue == "invalid_state")
        let sandboxes = medic.directory + "/data/sandboxes/\(bug)"
        for _ in 0..<50 where FileManager.default.fileExists(atPath: sandboxes) { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!FileManager.default.fileExists(atPath: sandboxes))
    }
}
