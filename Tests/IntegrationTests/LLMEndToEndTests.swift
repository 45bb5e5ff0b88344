// LLMEndToEndTests: the Anthropic fix path end to end — a whole Medic asking a scripted fake Messages API over loopback.
import Foundation
import MedicHost
import Protocol
import TestSupport
import Testing

/// A streamed 200 answer whose text is `text`, in `chunkSize`-character deltas.
private func streamed(_ text: String, chunkSize: Int = 16) -> JSONValue {
    ["status": 200, "sse_text": .string(text), "chunk_size": .int(Int64(chunkSize)), "chunk_delay_ms": 15]
}

/// An Anthropic error answer (`type` as in the API's error object).
private func apiError(_ status: Int, _ type: String, retryAfter: String? = nil, echoKey: Bool = false) -> JSONValue {
    var entry: JSONObject = [
        "status": .int(Int64(status)),
        "body": ["type": "error", "error": ["type": .string(type), "message": .string("\(type) (scripted)")]],
    ]
    if let retryAfter { entry["retry_after"] = .string(retryAfter) }
    if echoKey { entry["echo_api_key"] = true }
    return .object(entry)
}

/// The fix that makes `PipelineE2ETests.brokenRepo` pass, as the reply text the model would write.
private func goodFix(_ explanation: String, content: String = "fixed\n") -> String {
    fix([file("fixed.txt", content)], explanation: explanation).jsonString
}

/// A Medic whose fixes come from `fake` through `AnthropicFixProvider`, on a repository that fails until fixed.
private func anthropicMedic(
    _ fake: FakeAnthropic, key: String = "test-key", maxAttempts: Int = 3, llmTimeoutSeconds: Int? = nil
) throws -> MedicHarness {
    try MedicHarness { configuration, directory in
        configuration.repositories = [
            RepositoryConfig(name: "r", path: try PipelineE2ETests.brokenRepo(directory), testCommand: "sh check.sh")
        ]
        configuration.llm = .anthropic
        configuration.llmBaseURL = fake.baseURL
        configuration.llmModel = "claude-e2e-model"
        configuration.anthropicAPIKey = key
        configuration.maxAttempts = maxAttempts
        if let llmTimeoutSeconds { configuration.llmTimeoutSeconds = llmTimeoutSeconds }
    }
}

/// Proposes the broken file (its tests fail, so a fix is requested) and returns the id and the watching session.
private func proposeBroken(_ medic: MedicHarness, token: String, title: String = "make the check pass") throws -> (String, MedicClient) {
    try proposeAndWatch(medic, token: token, title: title, changes: .array([file("fixed.txt", "broken", action: "create")]))
}

private func events(_ history: [JSONValue], _ kind: String) -> [JSONValue] {
    history.filter { $0["kind"]?.stringValue == kind }
}

/// The `messages` array of a recorded request.
private func messages(_ request: JSONValue) -> [JSONValue] { request["body"]?["messages"]?.arrayValue ?? [] }

/// The first user message's text of a recorded request (the fix prompt).
/// The first turn's text: content blocks (`[{type: "text", text}]`, what Medic sends) joined, or a plain string.
private func prompt(_ request: JSONValue) -> String { text(of: messages(request).first) }

private func text(of message: JSONValue?) -> String {
    if let text = message?["content"]?.stringValue { return text }
    return (message?["content"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined()
}

private func seconds(_ value: JSONValue?) -> Double? {
    switch value {
    case .number(let d)?: d
    case .int(let i)?: Double(i)
    default: nil
    }
}

@Suite("LLM (Anthropic API) end to end", .serialized)
struct LLMEndToEndTests {
    @Test func aFixStreamsAsDeltasBeforeItIsGenerated() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        // Non-ASCII text, so deltas and curl's reads split inside multi-byte characters somewhere.
        let reply = goodFix("the check greps for “fixed”; wrote it — naïvely, but it passes")
        try fake.script([streamed(reply, chunkSize: 16)])
        let medic = try anthropicMedic(fake, key: "test-key")
        defer { medic.stop() }
        let (_, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"), title: "streamed fix")
        let history = try watcher.untilStatus("awaiting_review")

        let generated = try #require(history.firstIndex { $0["kind"]?.stringValue == "fix_generated" })
        let deltas = events(history, "fix_delta")
        #expect(deltas.count >= 3, "expected the reply as several deltas, got \(deltas.count)")
        let lastDelta = try #require(history.lastIndex { $0["kind"]?.stringValue == "fix_delta" })
        #expect(lastDelta < generated)
        #expect(deltas.allSatisfy { $0["seq"]?.intValue == nil && $0["data"]?["attempt"]?.intValue == 1 })
        #expect(deltas.compactMap { $0["data"]?["text"]?.stringValue }.joined() == reply)
        #expect(history[generated]["data"]?["explanation"]?.stringValue?.contains("naïvely") == true)
        #expect(events(history, "test_finished").count == 2)

        let requests = try fake.requests()
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request["headers"]?["x-api-key"]?.stringValue == "test-key")
        #expect(request["headers"]?["anthropic-version"]?.stringValue?.isEmpty == false)
        #expect(request["body"]?["model"]?.stringValue == "claude-e2e-model")
        #expect(request["body"]?["stream"]?.boolValue == true)
        #expect(request["body"]?["system"]?.stringValue?.contains("JSON") == true)
        #expect(messages(request).count == 1)
        #expect(messages(request).first?["role"]?.stringValue == "user")
        #expect(prompt(request).contains("streamed fix"))
        #expect(prompt(request).contains("AssertionError: fixed.txt is wrong"))
    }

    @Test func overloadedTwiceThenTheFixStillArrives() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        try fake.script([apiError(529, "overloaded_error"), apiError(529, "overloaded_error"), streamed(goodFix("after the overload"))])
        let medic = try anthropicMedic(fake)
        defer { medic.stop() }
        let (_, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"))
        let history = try watcher.untilStatus("awaiting_review")
        #expect(events(history, "fix_failed").isEmpty)
        #expect(events(history, "fix_generated").first?["data"]?["explanation"]?.stringValue == "after the overload")
        let requests = try fake.requests()
        #expect(requests.count == 3)
        // Each retry re-sends the same request.
        #expect(Set(requests.map { $0["body"]?.jsonString ?? "" }).count == 1)
    }

    @Test func rateLimitedRetryAfterIsHonoured() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        try fake.script([apiError(429, "rate_limit_error", retryAfter: "1"), streamed(goodFix("after the rate limit"))])
        let medic = try anthropicMedic(fake)
        defer { medic.stop() }
        let (_, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"))
        let history = try watcher.untilStatus("awaiting_review")
        #expect(events(history, "fix_generated").count == 1)
        let requests = try fake.requests()
        #expect(requests.count == 2)
        let first = try #require(seconds(requests.first?["time"]))
        let second = try #require(seconds(requests.last?["time"]))
        // The fake stamps a request on arrival, before it answers 429: the next one must come ≥ 1 s later.
        #expect(second - first >= 1.0, "retried after \(second - first) s despite retry-after: 1")
    }

    @Test func aMalformedReplyIsReaskedOnceWithTheConversation() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        let bad = "Sure! I would change fixed.txt so that it says fixed."
        try fake.script([["malformed_text": .string(bad)], streamed(goodFix("second try, as JSON"))])
        let medic = try anthropicMedic(fake)
        defer { medic.stop() }
        let (_, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"))
        let history = try watcher.untilStatus("awaiting_review")
        #expect(events(history, "fix_failed").isEmpty)
        #expect(events(history, "fix_started").count == 1)
        #expect(events(history, "fix_generated").first?["data"]?["explanation"]?.stringValue == "second try, as JSON")

        let requests = try fake.requests()
        #expect(requests.count == 2)
        let turns = messages(requests[1])
        #expect(turns.map { $0["role"]?.stringValue ?? "" } == ["user", "assistant", "user"])
        #expect(text(of: turns.first) == prompt(requests[0]))
        #expect(turns.count == 3 && text(of: turns[1]) == bad)
        #expect(text(of: turns.last).contains("refused"))
    }

    @Test func twoMalformedRepliesFailTheAttemptAndTheNextProceeds() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        try fake.script([
            ["malformed_text": "no JSON here"], ["malformed_text": "{\"unfixable\": fal"], streamed(goodFix("attempt two got it right")),
        ])
        let medic = try anthropicMedic(fake, maxAttempts: 3)
        defer { medic.stop() }
        let (_, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"))
        let history = try watcher.untilStatus("awaiting_review")
        let failed = events(history, "fix_failed")
        #expect(failed.count == 1)
        #expect(failed.first?["data"]?["attempt"]?.intValue == 1)
        let reason = failed.first?["data"]?["reason"]?.stringValue ?? ""
        #expect(reason.contains("refused"), "unclear reason: \(reason)")
        #expect(events(history, "fix_started").compactMap { $0["data"]?["attempt"]?.intValue } == [1, 2])
        #expect(events(history, "fix_generated").first?["data"]?["attempt"]?.intValue == 2)

        let requests = try fake.requests()
        #expect(requests.count == 3)  // one re-ask only, then a fresh conversation for attempt 2
        #expect(messages(requests[1]).count == 3)
        #expect(messages(requests[2]).count == 1)
        #expect(prompt(requests[2]).contains("fix attempt 2"))
    }

    @Test func aHangingModelTimesOutAndTheServerCarriesOn() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        // Every attempt hangs (a timeout before any response head is retried by the policy).
        try fake.script(Array(repeating: ["hang": true, "seconds": 20], count: 6))
        let medic = try anthropicMedic(fake, maxAttempts: 1, llmTimeoutSeconds: 1)
        defer { medic.stop() }
        let (_, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"))
        let history = try watcher.untilStatus("unfixable")
        let reason = try #require(events(history, "fix_failed").first?["data"]?["reason"]?.stringValue)
        #expect(reason.contains("timed out"), "unclear reason: \(reason)")
        let hung = try fake.requests().count
        #expect(hung >= 2)
        #expect(reason.contains("\(hung) attempt(s)"), "reason \(reason) vs \(hung) requests")

        // The server is fine: a command answers, and the next proposal gets its fix.
        let stats = try watcher.call(["type": "stats"])
        #expect(stats["type"]?.stringValue == "ack")
        #expect(stats["proposals"]?.intValue == 1)
        try fake.clearScript()  // the hangs the retries did not use
        try fake.script([streamed(goodFix("after the hang"))])
        // Another principal: MedicClient numbers commands c1, c2 … per session, and a repeated (principal, id)
        // replays the first ack (DESIGN invariant 5).
        let (_, next) = try proposeBroken(medic, token: try medic.token("bot2", role: "bot"), title: "next")
        let recovered = try next.untilStatus("awaiting_review")
        #expect(events(recovered, "fix_generated").first?["data"]?["explanation"]?.stringValue == "after the hang")
    }

    @Test func requestChangesFeedsTheCommentAndHistoryIntoTheNextPrompt() throws {
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        try fake.script([
            streamed(goodFix("attempt one: wrote fixed foo", content: "fixed foo\n")),
            streamed(goodFix("attempt two: renamed foo to bar", content: "fixed bar\n")),
        ])
        let medic = try anthropicMedic(fake)
        defer { medic.stop() }
        let admin = try medic.session(try medic.token("alice", role: "admin"))
        let (id, watcher) = try proposeBroken(medic, token: try medic.token("bot", role: "bot"))
        let first = try watcher.untilStatus("awaiting_review")
        let revision = try #require(events(first, "fix_generated").first?["data"]?["revision"]?.intValue)
        let ack = try admin.call([
            "type": "request_changes", "proposal": .string(id), "revision": .int(revision), "comment": "please rename foo to bar",
        ])
        #expect(ack["type"]?.stringValue == "ack", "request_changes refused: \(ack.jsonString)")
        let second = try watcher.untilStatus("awaiting_review")
        #expect(events(second, "fix_started").first?["data"]?["attempt"]?.intValue == 2)
        #expect(events(second, "fix_generated").first?["data"]?["explanation"]?.stringValue == "attempt two: renamed foo to bar")

        let requests = try fake.requests()
        #expect(requests.count == 2)
        #expect(!prompt(requests[0]).contains("please rename foo to bar"))
        #expect(prompt(requests[1]).contains("please rename foo to bar"))
        #expect(prompt(requests[1]).contains("attempt one: wrote fixed foo"))
    }

    @Test func theAPIKeyNeverReachesAClient() throws {
        let key = "sk-ant-e2e-\(UInt64.random(in: 0...UInt64.max))-SECRET"
        let fake = try FakeAnthropic()
        defer { fake.stop() }
        // A careless proxy echoing the key: a 401 (not retried), then 429s until the retry policy gives up.
        try fake.script([apiError(401, "authentication_error", echoKey: true)]
            + Array(repeating: apiError(429, "rate_limit_error", retryAfter: "0", echoKey: true), count: 4))
        let medic = try anthropicMedic(fake, key: key, maxAttempts: 2)
        defer { medic.stop() }
        let token = try medic.token("alice", role: "admin")
        let lobby = try medic.session(token)
        var seen: [JSONValue] = []
        seen.append(try lobby.call(["type": "subscribe", "topic": "proposals", "since": 0], skipped: &seen))
        let (id, watcher) = try proposeBroken(medic, token: token)
        seen += try watcher.untilStatus("unfixable")
        seen += try lobby.until { $0["data"]?["status"]?.stringValue == "unfixable" }
        seen.append(try watcher.call(["type": "stats"]))
        // A late subscriber replays the stored events.
        let late = try medic.session(token)
        seen.append(try late.call(["type": "subscribe", "topic": .string("proposal:\(id)"), "since": 0], skipped: &seen))
        seen += try late.untilStatus("unfixable")
        let rest = try TestClient(port: medic.port, timeoutSeconds: 10)
        let detail = try rest.get("/api/v1/proposals/\(id)", headers: ["Authorization: Bearer \(token)"])
        #expect(detail.head.hasPrefix("HTTP/1.1 200"))

        // The key was really in play: sent to the API and echoed back.
        let requests = try fake.requests()
        #expect(requests.count == 5)
        #expect(requests.allSatisfy { $0["headers"]?["x-api-key"]?.stringValue == key })
        let reasons = events(seen, "fix_failed").compactMap { $0["data"]?["reason"]?.stringValue }
        #expect(reasons.contains { $0.contains("401") && $0.contains("[redacted]") }, "reasons: \(reasons)")
        #expect(reasons.contains { $0.contains("429") })

        for message in seen {
            #expect(!message.jsonString.contains(key), "the key leaked in \(message.jsonString)")
        }
        #expect(!String(decoding: detail.body, as: UTF8.self).contains(key))
    }
}
