// HTTPClientTests: the curl-multi client on a real EventLoop against a loopback fake Anthropic API, plus RetryPolicy.
import EventLoop
import Foundation
import HTTPClient
import Testing

/// Runs loop ticks until `done()` or a generous safety bound passes (a bound, not a speed assertion).
private func run(_ loop: EventLoop, seconds: Double = 20, until done: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !done(), monotonicNanoseconds() < deadline {
        loop.runOnce(maxWaitMilliseconds: 50)
    }
    return done()
}

/// Everything one transfer reported, in order.
private final class Recorder {
    var heads: [HTTPClientResponseHead] = []
    var chunks: [[UInt8]] = []
    var result: Result<HTTPClientResponseHead, HTTPClientError>?
    var events: [String] = []
    var attempts: [Int] = []
    var body: [UInt8] { chunks.flatMap { $0 } }
    var text: String { String(decoding: body, as: UTF8.self) }
    var error: HTTPClientError? {
        if case .failure(let error) = result { return error }
        return nil
    }

    func onHead(_ head: HTTPClientResponseHead) {
        heads.append(head)
        events.append("head")
    }
    func onBody(_ chunk: UnsafeRawBufferPointer) {
        chunks.append(Array(chunk))
        events.append("body")
    }
    func onComplete(_ result: Result<HTTPClientResponseHead, HTTPClientError>) {
        #expect(self.result == nil, "onComplete ran twice")
        self.result = result
        events.append("complete")
    }
    func onAttempt(_ n: Int) { attempts.append(n) }

    @discardableResult
    func execute(_ client: HTTPClient, _ request: HTTPClientRequest) -> TransferID {
        client.execute(request, onHead: onHead, onBody: onBody, onComplete: onComplete)
    }
}

/// Parses an SSE stream (WHATWG HTML §9.2.6) into (event, data) pairs; enough for the Messages API's framing.
private func parseSSE(_ text: String) -> [(String, String)] {
    text.components(separatedBy: "\n\n").compactMap { block -> (String, String)? in
        var event = "message"
        var data: [String] = []
        for line in block.split(separator: "\n") {
            if line.hasPrefix("event:") { event = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
            if line.hasPrefix("data:") { data.append(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
        }
        return data.isEmpty ? nil : (event, data.joined(separator: "\n"))
    }
}

private func json(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

private let anthropicHeaders = [
    ("content-type", "application/json"), ("x-api-key", "test-key"), ("anthropic-version", "2023-06-01"),
]

@Suite(.serialized)
struct HTTPClientTests {
    @Test func streamsServerSentEventsIncrementally() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let body = #"{"model":"claude-fake","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let recorder = Recorder()
        var bodyCallsBeforeComplete = 0
        var sawDeltaBeforeStop = false
        client.execute(
            HTTPClientRequest(method: "POST", url: server.url("/v1/messages"), headers: anthropicHeaders, body: Array(body.utf8)),
            onHead: recorder.onHead,
            onBody: { chunk in
                recorder.onBody(chunk)
                let soFar = recorder.text
                if soFar.contains("content_block_delta"), !soFar.contains("message_stop") { sawDeltaBeforeStop = true }
            },
            onComplete: { result in
                bodyCallsBeforeComplete = recorder.chunks.count
                recorder.onComplete(result)
            })
        #expect(client.activeTransfers == 1)
        #expect(run(loop) { recorder.result != nil })

        #expect(recorder.heads.count == 1)
        #expect(recorder.heads.first?.status == 200)
        #expect(recorder.heads.first?.header("Content-Type") == "text/event-stream")
        #expect(recorder.events.first == "head")
        #expect(bodyCallsBeforeComplete > 1, "the body should arrive in several chunks, not all at the end")
        #expect(sawDeltaBeforeStop, "a text delta should reach the caller before the stream ends")
        let events = parseSSE(recorder.text)
        #expect(events.map(\.0) == [
            "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
            "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta",
            "message_stop",
        ])
        let text = events.filter { $0.0 == "content_block_delta" }.compactMap { event -> String? in
            (json(event.1)?["delta"] as? [String: Any])?["text"] as? String
        }.joined()
        #expect(text == "Hello, world!")
        guard case .success(let head) = recorder.result else {
            Issue.record("expected success, got \(String(describing: recorder.result))")
            return
        }
        #expect(head.status == 200)
        #expect(client.activeTransfers == 0)
    }

    @Test func nonStreamingJSONReply() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        let body = #"{"model":"claude-fake","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#
        recorder.execute(client, HTTPClientRequest(method: "POST", url: server.url("/v1/messages"), headers: anthropicHeaders, body: Array(body.utf8)))
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.heads.first?.status == 200)
        #expect(recorder.heads.first?.header("content-length") == String(recorder.body.count))
        let message = json(recorder.text)
        #expect(message?["type"] as? String == "message")
        #expect(((message?["content"] as? [[String: Any]])?.first)?["text"] as? String == "Hello, world!")
    }

    @Test func postBodyAndHeadersReachTheServer() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        // Binary on purpose: a NUL and a high byte must survive (COPYPOSTFIELDS with an explicit size).
        let payload: [UInt8] = [0x00, 0x41, 0xFF, 0x0A, 0x42]
        let post = Recorder()
        post.execute(client, HTTPClientRequest(
            method: "POST", url: server.url("/echo?x=1"),
            headers: [("x-api-key", "secret"), ("anthropic-version", "2023-06-01"), ("x-empty", "")], body: payload))
        let put = Recorder()
        put.execute(client, HTTPClientRequest(method: "PUT", url: server.url("/echo"), body: Array("put-body".utf8)))
        let delete = Recorder()
        delete.execute(client, HTTPClientRequest(method: "DELETE", url: server.url("/echo")))
        #expect(run(loop) { post.result != nil && put.result != nil && delete.result != nil })

        let echoed = json(post.text)
        #expect(echoed?["method"] as? String == "POST")
        #expect(echoed?["path"] as? String == "/echo?x=1")
        let headers = (echoed?["headers"] as? [[String]] ?? []).map { ($0[0].lowercased(), $0[1]) }
        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        #expect(header("x-api-key") == "secret")
        #expect(header("anthropic-version") == "2023-06-01")
        #expect(header("x-empty") == "")
        #expect(header("content-length") == "5")
        #expect(header("expect") == nil)
        let body = (echoed?["body"] as? String).map { $0.unicodeScalars.map { UInt8($0.value) } }
        #expect(body == payload)

        #expect(json(put.text)?["method"] as? String == "PUT")
        #expect(json(put.text)?["body"] as? String == "put-body")
        #expect(json(delete.text)?["method"] as? String == "DELETE")
        #expect(json(delete.text)?["body"] as? String == "")
    }

    @Test func retryAfterOn429IsHonoured() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        let started = monotonicNanoseconds()
        executeWithRetry(
            client: client, loop: loop, request: HTTPClientRequest(url: server.url("/ratelimit?key=429")),
            policy: RetryPolicy(baseDelayMilliseconds: 1), onAttempt: recorder.onAttempt,
            onHead: recorder.onHead, onBody: recorder.onBody, onComplete: recorder.onComplete)
        #expect(run(loop) { recorder.result != nil })
        let waited = monotonicNanoseconds() - started
        #expect(recorder.attempts == [1, 2])
        // retry-after: 1 overrides the 1 ms backoff; loop timers never fire early, so this lower bound is exact.
        #expect(waited >= 1_000_000_000)
        #expect(recorder.heads.map(\.status) == [200], "the 429 must not be streamed to the caller")
        #expect(recorder.text.contains("after rate limit"))
        #expect(!recorder.text.contains("rate_limit_error"))
        guard case .success(let head) = recorder.result else {
            Issue.record("expected success, got \(String(describing: recorder.result))")
            return
        }
        #expect(head.status == 200)
    }

    @Test func overloaded529IsRetriedUntilSuccess() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        executeWithRetry(
            client: client, loop: loop, request: HTTPClientRequest(url: server.url("/overloaded?key=ok&n=2")),
            policy: RetryPolicy(maxAttempts: 4, baseDelayMilliseconds: 5), random: { 0.5 }, onAttempt: recorder.onAttempt,
            onHead: recorder.onHead, onBody: recorder.onBody, onComplete: recorder.onComplete)
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.attempts == [1, 2, 3])
        #expect(recorder.heads.map(\.status) == [200])
        #expect(recorder.text.contains("after overload 3"))
        #expect(recorder.error == nil)
    }

    @Test func overloaded529GivesUpAfterMaxAttempts() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        executeWithRetry(
            client: client, loop: loop, request: HTTPClientRequest(url: server.url("/overloaded?key=never&n=100")),
            policy: RetryPolicy(maxAttempts: 3, baseDelayMilliseconds: 5), onAttempt: recorder.onAttempt,
            onHead: recorder.onHead, onBody: recorder.onBody, onComplete: recorder.onComplete)
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.attempts == [1, 2, 3])
        #expect(recorder.heads.isEmpty)
        #expect(recorder.chunks.isEmpty)
        #expect(recorder.error?.code == .httpStatus)
        #expect(recorder.error?.status == 529)
        #expect(recorder.error?.message.contains("overloaded_error") == true)
    }

    @Test func connectErrorsAreRetriedThenReported() throws {
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        executeWithRetry(
            client: client, loop: loop, request: HTTPClientRequest(url: "http://127.0.0.1:1/"),
            policy: RetryPolicy(maxAttempts: 3, baseDelayMilliseconds: 1), onAttempt: recorder.onAttempt,
            onHead: recorder.onHead, onBody: recorder.onBody, onComplete: recorder.onComplete)
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.attempts == [1, 2, 3])
        #expect(recorder.error?.code == .connect)
    }

    @Test func cancellingARetryWhileItWaits() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        let retrying = executeWithRetry(
            client: client, loop: loop, request: HTTPClientRequest(url: server.url("/overloaded?key=cancel&n=100")),
            policy: RetryPolicy(baseDelayMilliseconds: 600_000, maxDelayMilliseconds: 600_000), onAttempt: recorder.onAttempt,
            onHead: recorder.onHead, onBody: recorder.onBody, onComplete: recorder.onComplete)
        #expect(run(loop) { retrying.isWaitingToRetry })
        #expect(recorder.result == nil)
        retrying.cancel()
        #expect(recorder.error?.code == .aborted)
        #expect(retrying.isDone && !retrying.isWaitingToRetry)
        #expect(recorder.attempts == [1])
        #expect(recorder.heads.isEmpty)
        retrying.cancel()  // harmless: onComplete must not run twice (Recorder checks)
    }

    @Test func headerInjectionIsRefused() throws {
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let bad: [(String, String)] = [("x-a", "b\r\nx-injected: 1"), ("x-a\nb", "c"), ("x a", "b"), ("", "b"), ("x-a", "b\0")]
        let recorders = bad.map { header in
            let recorder = Recorder()
            recorder.execute(client, HTTPClientRequest(url: "http://127.0.0.1:1/", headers: [header]))
            return recorder
        }
        #expect(client.activeTransfers == 0)
        #expect(run(loop) { recorders.allSatisfy { $0.result != nil } })
        for recorder in recorders {
            #expect(recorder.error?.code == .other)
            #expect(recorder.error?.message.contains("invalid request header") == true)
        }
    }

    @Test func hangingServerTimesOut() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        recorder.execute(client, HTTPClientRequest(url: server.url("/hang"), timeoutMilliseconds: 300))
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.error?.code == .timeout)
        #expect(recorder.error?.message.isEmpty == false)
        #expect(recorder.heads.isEmpty)
        #expect(client.activeTransfers == 0)
    }

    @Test func connectionClosedMidBodyIsAnError() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        recorder.execute(client, HTTPClientRequest(url: server.url("/truncate")))
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.heads.map(\.status) == [200])
        #expect(recorder.text == "0123456789")
        #expect(recorder.error?.code == .other)
        #expect(recorder.error?.curlCode == 18)  // CURLE_PARTIAL_FILE: fewer bytes than Content-Length
        #expect(recorder.events.last == "complete")
    }

    @Test func refusedConnectionIsAConnectError() throws {
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        // Port 1 on loopback: nothing listens there, so the kernel refuses at once.
        recorder.execute(client, HTTPClientRequest(url: "http://127.0.0.1:1/"))
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.error?.code == .connect)
    }

    @Test func responseBodyLimitAborts() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let recorder = Recorder()
        let body = #"{"messages":[]}"#
        recorder.execute(client, HTTPClientRequest(
            method: "POST", url: server.url("/v1/messages"), body: Array(body.utf8), maxResponseBodyBytes: 20))
        #expect(run(loop) { recorder.result != nil })
        #expect(recorder.error?.code == .responseTooLarge)
        #expect(recorder.body.count <= 20)
    }

    @Test func cancelAndCloseAbortTransfers() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        let first = Recorder()
        let second = Recorder()
        let id = first.execute(client, HTTPClientRequest(url: server.url("/hang")))
        second.execute(client, HTTPClientRequest(url: server.url("/hang")))
        for _ in 0..<5 { loop.runOnce(maxWaitMilliseconds: 10) }
        #expect(first.result == nil)
        client.cancel(id)
        #expect(first.error?.code == .aborted)  // synchronously, inside cancel
        #expect(client.activeTransfers == 1)
        client.cancel(id)  // again: harmless
        client.close()
        #expect(second.error?.code == .aborted)
        #expect(client.activeTransfers == 0)
        client.close()  // idempotent
        let late = Recorder()
        late.execute(client, HTTPClientRequest(url: server.url("/small")))
        #expect(late.result == nil, "a refused start still reports on a later tick, not inside execute")
        #expect(run(loop) { late.result != nil })
        #expect(late.error?.code == .aborted)
    }

    @Test func twoHundredConcurrentTransfersOnOneLoop() throws {
        let server = try FakeAnthropic()
        defer { server.stop() }
        let loop = try EventLoop()
        let client = try HTTPClient(loop: loop)
        defer { client.close() }
        let count = 200
        let recorders = (0..<count).map { _ in Recorder() }
        for (i, recorder) in recorders.enumerated() {
            recorder.execute(client, HTTPClientRequest(url: server.url("/small?i=\(i)")))
        }
        #expect(client.activeTransfers == count)
        #expect(run(loop, seconds: 60) { recorders.allSatisfy { $0.result != nil } })
        for (i, recorder) in recorders.enumerated() {
            #expect(recorder.heads.map(\.status) == [200])
            #expect(recorder.text == "small \(i)")
            #expect(recorder.error == nil)
        }
        #expect(client.activeTransfers == 0)
    }
}

/// RetryPolicy is a pure function: no loop, no server. Nested so `--filter HTTPClientTests` runs it too.
extension HTTPClientTests {
    struct RetryPolicyTests {
        let policy = RetryPolicy()
        /// Sun, 06 Nov 1994 08:49:37 GMT — RFC 9110 §5.6.7's example — in ms since 1970.
        let exampleNow: Int64 = 784_111_777_000

        @Test func retryableStatuses() {
            for status in [429, 500, 502, 503, 529, 599] { #expect(policy.isRetryable(status: status), "\(status)") }
            for status in [200, 400, 401, 404, 413, 600] { #expect(!policy.isRetryable(status: status), "\(status)") }
            #expect(policy.delay(afterAttempt: 1, status: 400, retryAfter: "1", retryAfterMs: nil, random: 0) == nil)
        }

        @Test func retryAfterSecondsAndMilliseconds() {
            #expect(policy.delay(afterAttempt: 1, status: 429, retryAfter: "1", retryAfterMs: nil, random: 0.9) == 1_000)
            #expect(policy.delay(afterAttempt: 1, status: 429, retryAfter: " 7 ", retryAfterMs: nil, random: 0) == 7_000)
            #expect(policy.delay(afterAttempt: 1, status: 529, retryAfter: "0", retryAfterMs: nil, random: 0) == 0)
            // retry-after-ms is more precise and wins.
            #expect(policy.delay(afterAttempt: 1, status: 429, retryAfter: "5", retryAfterMs: "250", random: 0) == 250)
            // Unparseable values fall back to backoff.
            #expect(policy.delay(afterAttempt: 1, status: 429, retryAfter: "soon", retryAfterMs: "x", random: 0) == 1_000)
        }

        @Test func retryAfterHTTPDateInAllThreeForms() {
            #expect(parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
            #expect(parseHTTPDate("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
            #expect(parseHTTPDate("Sun Nov  6 08:49:37 1994") == 784_111_777)
            #expect(parseHTTPDate("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
            #expect(parseHTTPDate("Tue, 29 Feb 2000 12:00:00 GMT") == 951_825_600)
            #expect(parseHTTPDate("yesterday") == nil)
            #expect(parseHTTPDate("Sun, 06 Foo 1994 08:49:37 GMT") == nil)
            for form in ["Sun, 06 Nov 1994 08:49:47 GMT", "Sunday, 06-Nov-94 08:49:47 GMT", "Sun Nov  6 08:49:47 1994"] {
                #expect(policy.delay(afterAttempt: 1, status: 503, retryAfter: form, retryAfterMs: nil, random: 0,
                                     nowMilliseconds: exampleNow) == 10_000, "\(form)")
            }
            // A date already past means "retry now".
            #expect(policy.delay(afterAttempt: 1, status: 503, retryAfter: "Sun, 06 Nov 1994 08:00:00 GMT", retryAfterMs: nil,
                                 random: 0, nowMilliseconds: exampleNow) == 0)
        }

        @Test func exponentialBackoffWithJitterAndCap() {
            let policy = RetryPolicy(maxAttempts: 20)
            #expect(policy.delay(afterAttempt: 1, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) == 1_000)
            #expect(policy.delay(afterAttempt: 2, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) == 2_000)
            #expect(policy.delay(afterAttempt: 3, status: nil, retryAfter: nil, retryAfterMs: nil, random: 0) == 4_000)
            #expect(policy.delay(afterAttempt: 5, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) == 16_000)
            #expect(policy.delay(afterAttempt: 6, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) == 30_000)
            #expect(policy.delay(afterAttempt: 19, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) == 30_000)
            // Jitter shortens by up to a quarter.
            #expect(policy.delay(afterAttempt: 1, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0.5) == 875)
            #expect(policy.delay(afterAttempt: 6, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0.999_9) == 22_500)
        }

        @Test func givesUp() {
            #expect(policy.delay(afterAttempt: 3, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) != nil)
            #expect(policy.delay(afterAttempt: 4, status: 529, retryAfter: nil, retryAfterMs: nil, random: 0) == nil)
            #expect(policy.delay(afterAttempt: 4, status: nil, retryAfter: "1", retryAfterMs: nil, random: 0) == nil)
            // A server asking for longer than we are willing to wait (default 60 s): give up now.
            #expect(policy.delay(afterAttempt: 1, status: 429, retryAfter: "60", retryAfterMs: nil, random: 0) == 60_000)
            #expect(policy.delay(afterAttempt: 1, status: 429, retryAfter: "61", retryAfterMs: nil, random: 0) == nil)
            #expect(RetryPolicy(maxAttempts: 1).delay(afterAttempt: 1, status: 429, retryAfter: nil, retryAfterMs: nil, random: 0) == nil)
        }
    }
}
